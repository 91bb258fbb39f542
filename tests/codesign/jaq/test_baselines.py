"""The random-search baseline: its designs draw from the searched choices, meet the budgets, and are seeded."""

import pytest
import torch

from codesign.jaq.baselines import random_bits, random_search
from codesign.jaq.hwspace import HardwareSpace
from codesign.jaq.search import SearchRun, SearchSettings
from codesign.quant.supernet import sample_arch

SPACE = HardwareSpace(rows=(8,), cols=(8,), digit_bits=(2, 8), act_buf_bytes=(16384,), wgt_buf_bytes=(16384,))
TINY = dict(warmup_epochs=0, search_epochs=1, retrain_fp_epochs=0, retrain_qat_epochs=1, batch=2, batch_size=256,
            space=SPACE)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    torch.set_num_threads(1)
    return SearchRun(SearchSettings(**TINY), tmp_path_factory.mktemp("baselines"), progress=False)


def test_random_bits_take_one_searched_width_per_layer(run):
    arch = sample_arch(run.spec, torch.Generator().manual_seed(3))
    bits = random_bits(run, arch, torch.Generator().manual_seed(4))
    assert set(bits) == set(run.net.subnet_layers(arch))
    for name, layer in bits.items():
        if name.endswith(".add"):
            assert layer.w == () and layer.a == bits[name.replace(".add", ".project")].a
        elif name != "classifier":
            assert len(set(layer.w)) == 1 and layer.w[0] in run.spec.w_bits and layer.a in run.spec.a_bits
    assert bits == random_bits(run, arch, torch.Generator().manual_seed(4))      # seeded


def test_random_search_scores_as_many_designs_as_the_search_has_epochs(run):
    result = random_search(run)
    assert len(result["explored"]) == run.settings.search_epochs
    best = result["best"]
    assert best["how"] == "random" and best in result["explored"]
    assert 0 <= best["proxy_acc_val"] <= 1 and best["objective"] > 0
    assert bool(run.allowed[best["hardware_index"]])

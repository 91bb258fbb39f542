"""`make search` then `make verify` in miniature: the searched network runs bit-exact on the RTL, and the cycles
measured for one batch agree with what the search predicted for it."""

import numpy as np
import pytest
import torch

from codesign.hw.config import HardwareConfig
from codesign.ir.executor import predict
from codesign.jaq.hwspace import HardwareSpace
from codesign.jaq.pipeline import run_search
from codesign.jaq.search import SearchSettings
from codesign.quant.datasets import load_digits
from codesign.quant.export import IntegerModel
from codesign.quant.quantizers import input_integers
from sim.runs.network import run_network

SPACE = HardwareSpace(rows=(8,), cols=(8,), digit_bits=(2, 8), act_buf_bytes=(16384,), wgt_buf_bytes=(16384,))
BATCH = 2


def test_the_searched_network_runs_bit_exact_on_the_rtl(tmp_path):
    torch.set_num_threads(1)
    settings = SearchSettings(warmup_epochs=1, search_epochs=1, retrain_fp_epochs=0, retrain_qat_epochs=1,
                              batch=BATCH, space=SPACE, baselines=False)
    design = run_search(settings, tmp_path, progress=False)
    model = IntegerModel.load(tmp_path / "integer_model.json")
    cfg = HardwareConfig.load(tmp_path / "hardware.json")
    test = load_digits().test
    result = run_network(cfg, model, input_integers(test.images[:BATCH]).numpy().astype(np.int64))
    assert result["bit_exact"], result["first_mismatch"]
    assert np.array_equal(result["predictions"], predict(model, test.images[:BATCH], cfg))
    assert result["cycles_predicted"] == pytest.approx(design["cycles"], rel=1e-6)
    assert abs(result["cycles_error"]) < 10.0

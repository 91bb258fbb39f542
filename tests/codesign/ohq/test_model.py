"""OHQ's model side: load_model tells a QuantNet from a pickled module and refuses the rest; quantize, cache, save."""

import json

import pytest
import torch
from torch import nn

from codesign.errors import InputError
from codesign.hw.config import HardwareConfig
from codesign.ir.layers import Conv2d, Linear
from codesign.ohq.model import ModuleModel, QuantNetModel, load_model
from codesign.quant.export import IntegerModel
from codesign.quant.qmodel import load_quantnet
from codesign.quant.supernet import DIGITS, ArchChoice, SuperNet

CFG = HardwareConfig()
TINY = ArchChoice((1, 1, 1), (0.5, 0.5, 0.5), ((3,), (3,), (3,)), ((1,), (1,), (1,)))


@pytest.fixture(scope="module")
def quantnet_path(tmp_path_factory):
    """An untrained w8a8 QuantNet of the digits supernet's smallest kind, its quantizers initialized."""
    torch.manual_seed(0)
    net = SuperNet(DIGITS)
    q = net.extract_subnet(TINY, net.uniform_bits(TINY, 8, 8)).set_quantized().train()
    with torch.no_grad():
        q(torch.rand(16, 1, 8, 8))
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    q.save(path)
    return path


def _module():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 3))


def test_a_missing_file_or_a_state_dict_is_refused(tmp_path):
    with pytest.raises(InputError, match="^--model: .*missing.pt.* expected an existing model file"):
        load_model(tmp_path / "missing.pt", CFG)
    path = tmp_path / "state.pt"
    torch.save(_module().state_dict(), path)
    with pytest.raises(InputError, match=r"\(OrderedDict\)'.*a state_dict has no architecture"):
        load_model(path, CFG, trust_pickle=True)


@pytest.mark.parametrize("content", ["truncated", "garbage", "empty", "zip"])
def test_a_file_that_is_no_readable_checkpoint_says_so_and_not_trust_pickle(quantnet_path, tmp_path, content):
    path = tmp_path / "bad.pt"
    whole = quantnet_path.read_bytes()
    path.write_bytes({"truncated": whole[:len(whole) // 2], "garbage": b"hello, not a model" * 20, "empty": b"",
                      "zip": b"PK\x03\x04 not a torch checkpoint"}[content])
    for trust in (False, True):
        with pytest.raises(InputError, match=r"^--model: '.*bad.pt' is not allowed; expected a readable model "
                                             r"checkpoint") as info:
            load_model(path, CFG, trust_pickle=trust)
        assert "--trust-pickle" not in str(info.value) and "\n" not in str(info.value)


def test_a_directory_is_no_model(tmp_path):
    with pytest.raises(InputError, match="^--model: .* expected an existing model file, not a directory"):
        load_model(tmp_path, CFG)


def test_a_pickled_module_needs_trust_and_an_input_shape(tmp_path):
    path = tmp_path / "module.pt"
    torch.save(_module(), path)
    with pytest.raises(InputError, match="--trust-pickle"):
        load_model(path, CFG)
    with pytest.raises(InputError, match="^--input-shape: None is not allowed"):
        load_model(path, CFG, trust_pickle=True)
    model = load_model(path, CFG, trust_pickle=True, input_shape=(1, 6, 6))
    assert isinstance(model, ModuleModel) and model.kind == "module" and model.input_shape == (1, 6, 6)
    layers = model.layers(batch=2)
    assert [type(layer) for layer in layers] == [Conv2d, Linear] and layers[0].batch == 2


def test_a_quantnet_checkpoint_is_read_without_trust(quantnet_path, tmp_path):
    model = load_model(quantnet_path, CFG, qat_cache=tmp_path / "cache")
    assert isinstance(model, QuantNetModel) and model.kind == "quantnet" and model.input_shape == (1, 8, 8)
    layers = model.layers(batch=3)
    assert layers[0].name == "stem" and layers[0].batch == 3 and layers[-1].name == "classifier"


def test_quantize_caches_its_result_by_the_widths(quantnet_path, tmp_path):
    cache = tmp_path / "cache"
    model = load_model(quantnet_path, CFG, qat_cache=cache)
    bits = {"stem": (2, 4, 8, 8) * 4}                                  # 16 stem channels
    first = model.quantize(bits, None, qat_epochs=0, qat_lr=1e-4)
    assert first.accuracy is None
    assert first.model.get_submodule("stem").wq.bits.tolist() == list(bits["stem"])
    records = sorted(cache.glob("*.json"))
    assert len(records) == 1 and records[0].with_suffix(".pt").is_file()
    assert json.loads(records[0].read_text())["key"]["bits"] == {"stem": [2, 4, 8, 8] * 4}
    again = model.quantize(bits, None, qat_epochs=0, qat_lr=1e-4)      # read back from the cache
    assert again.model is not first.model
    assert again.model.get_submodule("stem").wq.bits.tolist() == list(bits["stem"])
    model.quantize({"stem": (8,) * 16}, None, qat_epochs=0, qat_lr=1e-4)
    assert len(list(cache.glob("*.json"))) == 2                          # other widths: another entry
    records[0].write_text("{broken")                                     # a damaged record is recomputed
    assert model.quantize(bits, None, qat_epochs=0, qat_lr=1e-4).model.get_submodule("stem").wq.bits.tolist() == \
        list(bits["stem"])
    assert json.loads(records[0].read_text())["accuracy"] is None


def test_save_writes_the_model_and_its_integer_export(quantnet_path, tmp_path):
    model = load_model(quantnet_path, CFG, qat_cache=tmp_path / "cache")
    quantized = model.quantize({"stem": (4,) * 16}, None, qat_epochs=0, qat_lr=1e-4)
    files = model.save(quantized, tmp_path)
    assert files == {"model": str(tmp_path / "model.pt"), "integer_model": str(tmp_path / "integer_model.json")}
    assert load_quantnet(tmp_path / "model.pt").get_submodule("stem").wq.bits.tolist() == [4] * 16
    integer = IntegerModel.load(tmp_path / "integer_model.json")
    assert integer.layers[0].name == "stem" and integer.layers[0].w_bits.tolist() == [4] * 16


def test_a_module_is_fake_quantized_and_saved_as_a_state_dict(tmp_path):
    model = ModuleModel(_module(), (1, 6, 6))
    quantized = model.quantize({"0": (2, 2, 8, 8), "4": (3, 3, 3)}, None, qat_epochs=5, qat_lr=1e-3)
    assert quantized.accuracy is None
    files = model.save(quantized, tmp_path / "out")
    state = torch.load(files["model_state"], weights_only=True)
    for channel, width in enumerate((2, 2, 8, 8)):
        assert len(torch.unique(state["0.weight"][channel])) <= 2 ** width
    assert len(torch.unique(state["4.weight"][0])) <= 2 ** 3

"""A whole exported network on the RTL (`sim.runs.network`, `codesign verify`): chained layers bit-exact, cycles,
errors."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from codesign.cli.main import main
from codesign.hw.config import HardwareConfig
from codesign.hw.reference import Requant
from codesign.ir.executor import run_model
from codesign.quant.export import export_quantnet
from codesign.quant.qmodel import build_quantnet
from sim.runs.network import run_network

# The calibration's 4x4 configuration: calibrated cost model, and its Verilator model is usually already built.
CFG = HardwareConfig(rows=4, cols=4, digit_bits=2, axi_data_bits=128, act_buf_bytes=2048, wgt_buf_bytes=1024,
                     out_buf_bytes=256, param_buf_bytes=256)


def _conv(cin, cout, kernel, *, stride=1, depthwise=False, relu=True, act_bits=8):
    return {"in": cin, "out": cout, "kernel": kernel, "stride": stride, "depthwise": depthwise, "relu": relu,
            "w_bits": [2 + c % 7 for c in range(cout)], "act_bits": act_bits}


# stem -> block with expand / depthwise / project / add -> stride-2 block without expand or add (4- and 6-bit
# activations, a signed input to the head) -> head -> classifier; weight bits 2..8 per channel
SPEC = {"in_channels": 1, "image_size": 8, "classes": 10, "stem": _conv(1, 4, 3),
        "blocks": [{"expand": _conv(4, 8, 1), "depthwise": _conv(8, 8, 3, depthwise=True, act_bits=4),
                    "project": _conv(8, 4, 1, relu=False), "add_bits": 8},
                   {"expand": None, "depthwise": _conv(4, 4, 3, stride=2, depthwise=True),
                    "project": _conv(4, 6, 1, relu=False, act_bits=6), "add_bits": None}],
        "head": _conv(6, 8, 1), "classifier": {"in": 8, "out": 10, "w_bits": [8 - c % 7 for c in range(10)],
                                               "act_bits": 8}}


@pytest.fixture(scope="module")
def model():
    """The tiny network in QAT mode after two training-mode passes (which initialize the LSQ steps), exported."""
    torch.manual_seed(0)
    net = build_quantnet(SPEC).set_quantized().train()
    for _ in range(2):
        net(torch.rand(16, 1, 8, 8))
    return export_quantnet(net.eval(), CFG)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (3, 1, 8, 8))


def test_network_is_bit_exact_layer_by_layer(model, images):
    result = run_network(CFG, model, images)
    assert result["bit_exact"] and result["first_mismatch"] is None
    golden = run_model(model, images, CFG)
    assert np.array_equal(result["logits"], golden["classifier"].reshape(3, 10))
    assert len(set(result["logits"].ravel().tolist())) > 3              # not a degenerate all-equal output
    by_name = {r["name"]: r for r in result["layers"]}
    assert [r["name"] for r in result["layers"]] == [layer.name for layer in model.layers]
    assert by_name["blocks.0.add"]["placement"] == "host" and by_name["blocks.0.add"]["cycles_measured"] == 0
    assert by_name["blocks.0.depthwise"]["gemms"] == 1 and by_name["stem"]["gemms"] == 1    # one DW_COMPUTE program
    assert {r["kind"] for r in result["layers"] if r["placement"] == "accelerator"} == {"conv", "dwconv", "linear"}
    assert all(r["cycles_measured"] > 0 for r in result["layers"] if r["placement"] == "accelerator")
    # The cost model is calibrated to about 2 %; the bound only catches a broken comparison.
    assert abs(result["cycles_error"]) < 15
    assert result["cycles_measured"] == sum(r["cycles_measured"] for r in result["layers"])


def test_a_layer_that_differs_is_named(model, images):
    """Compared with a model whose expand layer has another bias, that layer is the first to differ."""
    wrong = list(model.layers)
    i = next(i for i, layer in enumerate(wrong) if layer.name == "blocks.0.expand")
    rq = wrong[i].requant
    wrong[i] = replace(wrong[i], requant=Requant(rq.bias + 1000, rq.mult, rq.shift, rq.relu, rq.out_bits))
    expected = run_model(replace(model, layers=tuple(wrong)), images, CFG)
    assert not np.array_equal(expected["blocks.0.expand"], run_model(model, images, CFG)["blocks.0.expand"])
    result = run_network(CFG, model, images, expected=expected)
    assert not result["bit_exact"] and result["first_mismatch"] == "blocks.0.expand"
    assert [r["bit_exact"] for r in result["layers"][:2]] == [True, False]


@pytest.fixture
def files(model, tmp_path):
    model_path, config_path = tmp_path / "model.json", tmp_path / "hw.json"
    model.save(model_path)
    config_path.write_text(CFG.to_json())
    return model_path, config_path


def test_verify_command_writes_the_report(files, tmp_path, capsys):
    model_path, config_path = files
    out = tmp_path / "verify" / "verify.json"
    assert main(["verify", "--model", str(model_path), "--config", str(config_path), "--images", "2",
                 "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    for key in ("images", "bit_exact", "acc_rtl", "acc_int_model", "cycles_measured", "cycles_predicted",
                "cycles_error", "layers", "config", "latency", "calibrated"):
        assert key in report, key
    assert report["images"] == 2 and report["bit_exact"] and report["acc_rtl"] == report["acc_int_model"]
    assert report["config"] == CFG.to_dict() and len(report["logits"]) == 2
    assert "total:" in capsys.readouterr().out


@pytest.mark.parametrize("change, message", [
    ("missing model", "integer model"),
    ("narrow weights", "stem w_bits: 5 is not allowed; expected at most weight_bits_max=4"),
    ("too many images", "--images: 100000 is not allowed"),
])
def test_verify_command_refuses_bad_input(files, tmp_path, capsys, change, message):
    model_path, config_path = files
    if change == "missing model":
        model_path = tmp_path / "missing.json"
    if change == "narrow weights":
        config_path.write_text(replace(CFG, weight_bits_max=4).to_json())
    images = "100000" if change == "too many images" else "2"
    out = tmp_path / "verify.json"
    assert main(["verify", "--model", str(model_path), "--config", str(config_path), "--images", images,
                 "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()

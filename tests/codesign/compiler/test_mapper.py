import json

import pytest

from codesign.cli.main import main
from codesign.compiler.batchtile import Constants
from codesign.compiler.mapper import map_layers
from codesign.compiler.mapping import Gemm, Mapping, fit_problem, plan
from codesign.errors import InputError
from codesign.hw.config import HardwareConfig
from codesign.ir.layers import Conv2d, HostOp, Linear, mobilenet_v2, save_layers

ROOMY = HardwareConfig(rows=4, cols=4, digit_bits=2, axi_data_bits=128, act_buf_bytes=2048, wgt_buf_bytes=1024,
                       out_buf_bytes=256, param_buf_bytes=256)


def test_every_chosen_mapping_fits_and_host_layers_stay_on_the_host():
    layers = mobilenet_v2(resolution=32, width=0.5, classes=10)
    result = map_layers(HardwareConfig(), layers, constants=Constants())
    assert len(result["host_layers"]) == sum(isinstance(layer, HostOp) for layer in layers)
    assert result["total_cycles"] == pytest.approx(sum(r["cycles"] for r in result["layers"]))
    for r in result["layers"]:
        gemm = Gemm(r["m"], r["k"], r["n"], (8,) * r["n"])
        assert fit_problem(plan(HardwareConfig(), gemm, Mapping(**r["mapping"]))) is None, r


def test_a_layer_with_more_bits_than_the_hardware_is_refused_first():
    wide = [Linear("fc", 16, 4, w_bits=8)]
    with pytest.raises(InputError, match=r"^fc w_bits: 8 is not allowed; expected at most weight_bits_max=4"):
        map_layers(HardwareConfig(weight_bits_max=4), wide, constants=Constants())


def test_a_layer_no_mapping_fits_names_itself_and_the_buffer():
    tiny = HardwareConfig(rows=4, cols=32, digit_bits=1, axi_data_bits=256, act_buf_bytes=256, wgt_buf_bytes=256,
                          out_buf_bytes=256, param_buf_bytes=256)
    with pytest.raises(InputError, match=r"fc \(M=1 K=9 N=64\).*param_buf_bytes=256"):
        map_layers(tiny, [Linear("fc", 9, 64)], constants=Constants())


def test_cli_map_prints_and_writes_the_mapping_of_each_layer(tmp_path, capsys):
    layers = tmp_path / "layers.json"
    save_layers(layers, [Conv2d("c1", 3, 8, 3, padding=1, in_h=8, in_w=8, w_bits=[2, 4, 8, 8, 2, 4, 8, 8]),
                         HostOp("relu", "relu", (8, 8, 8)), Linear("fc", 512, 10, w_bits=4)])
    out = tmp_path / "map.json"
    assert main(["map", "--layers", str(layers), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [r["name"] for r in result["layers"]] == ["c1", "fc"] and result["host_layers"] == ["relu"]
    assert "total:" in capsys.readouterr().out
    assert main(["map", "--layers", str(tmp_path / "missing.json")]) == 2


def test_cli_sim_layer_runs_a_conv_bit_exact_and_predicts_its_cycles(tmp_path, capsys):
    hw = tmp_path / "hw.json"
    hw.write_text(ROOMY.to_json())
    layer = tmp_path / "layer.json"
    save_layers(layer, [Conv2d("conv", 3, 6, 3, stride=2, padding=1, in_h=9, in_w=9, w_bits=[2, 3, 4, 8, 8, 2])])
    out = tmp_path / "r.json"
    assert main(["sim", "layer", "--config", str(hw), "--layer", str(layer), "--seed", "3", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["bit_exact"] is True and result["cycles_measured"] > 0
    assert result["cycles_predicted"] == pytest.approx(result["cycles_measured"], rel=0.5)
    assert set(json.loads(capsys.readouterr().out)) == {"bit_exact", "cycles_measured", "cycles_predicted", "mapping"}

"""`codesign sim gemm | sim layer | verify`: cases on the RTL, outputs, exit codes and clear errors."""

import json

import pytest

from codesign.cli.main import main
from codesign.ir.layers import Conv2d, save_layers


@pytest.mark.parametrize("argv, message", [
    (["--m", "4", "--k", "8", "--n", "3", "--bits", "2,4"],
     "--bits: '2,4' is not allowed; expected one bit width, or one per output channel (N=3)"),
    (["--m", "4", "--k", "8", "--n", "3", "--bits", "9"],
     "--bits: 9 is not allowed; expected integers from 1 to weight_bits_max=8"),
    (["--m", "4", "--k", "8", "--n", "3", "--bits", "x"],
     "--bits: 'x' is not allowed; expected comma-separated integers"),
    (["--m", "0", "--k", "8", "--n", "3", "--bits", "4"], "--m: 0 is not allowed"),
    (["--m", "4", "--k", "5000", "--n", "3", "--bits", "4"],
     "--k: 5000 is not allowed; expected an integer from 1 to 4096"),
])
def test_sim_gemm_bad_input_exits_2(tmp_path, capsys, argv, message):
    out = tmp_path / "r.json"
    assert main(["sim", "gemm", *argv, "--json", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_unknown_simulator_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["sim", "gemm", "--m", "1", "--k", "1", "--n", "1", "--bits", "4", "--simulator", "xsim"])
    assert info.value.code == 2


def test_sim_gemm_system_latency_is_validated(capsys):
    argv = ["sim", "gemm", "--system", "--m", "4", "--k", "8", "--n", "3", "--bits", "4", "--latency", "-1"]
    assert main(argv) == 2
    assert "--latency: -1 is not allowed" in capsys.readouterr().err


def test_sim_layer_validates_its_latency_before_simulating(tmp_path, capsys):
    layer = tmp_path / "layer.json"
    save_layers(layer, [Conv2d("conv", 3, 6, 3, in_h=5, in_w=5)])
    out = tmp_path / "r.json"
    assert main(["sim", "layer", "--layer", str(layer), "--latency", "20000", "--json", str(out)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "codesign sim layer: error: --latency: 20000 is not allowed; expected an integer from 0 to 10000 cycles"]
    assert not out.exists()


def test_sim_layer_refuses_a_file_of_two_layers(tmp_path, capsys):
    layers = tmp_path / "layers.json"
    save_layers(layers, [Conv2d("a", 3, 6, 3, in_h=5, in_w=5), Conv2d("b", 6, 6, 3, in_h=3, in_w=3)])
    assert main(["sim", "layer", "--layer", str(layers)]) == 2
    assert "--layer: '2 layers' is not allowed; expected a file with exactly one layer" in capsys.readouterr().err


def test_verify_needs_a_design_or_a_model_with_its_config(tmp_path, capsys):
    out = tmp_path / "verify.json"
    assert main(["verify", "--model", "m.json", "--out", str(out)]) == 2
    assert "--model/--config" in capsys.readouterr().err
    assert not out.exists()


def test_sim_gemm_runs_a_multi_tile_case_on_verilator(tmp_path):
    hw = tmp_path / "hw.json"
    hw.write_text(json.dumps({"rows": 2, "cols": 3, "digit_bits": 2}))
    out = tmp_path / "r.json"
    argv = ["sim", "gemm", "--config", str(hw), "--m", "5", "--k", "40", "--n", "7", "--bits", "2,3,4,5,6,7,8",
            "--seed", "4", "--json", str(out)]
    assert main(argv) == 0
    result = json.loads(out.read_text())
    assert result["bit_exact"] is True and result["tiles"] == 3 * 3
    assert result["cycles"] == result["formula_cycles"] > 0


SYSTEM_HW = {"rows": 4, "cols": 4, "digit_bits": 2, "axi_data_bits": 128, "act_buf_bytes": 256,
             "wgt_buf_bytes": 256, "out_buf_bytes": 256, "param_buf_bytes": 256}     # tests/sim/test_system's build


def test_sim_gemm_system_runs_the_whole_accelerator(tmp_path, capsys):
    hw = tmp_path / "hw.json"
    hw.write_text(json.dumps(SYSTEM_HW))
    out = tmp_path / "r.json"
    argv = ["sim", "gemm", "--system", "--config", str(hw), "--m", "6", "--k", "50", "--n", "9", "--bits", "3",
            "--latency", "30", "--stall", "--json", str(out)]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == {"bit_exact", "cycles", "compute_cycles", "stall_cycles", "bytes_read", "bytes_written"}
    result = json.loads(out.read_text())
    assert result["bit_exact"] is True and result["latency"] == 30
    assert 0 < result["compute_cycles"] < result["cycles"] and result["bytes_written"] > 0

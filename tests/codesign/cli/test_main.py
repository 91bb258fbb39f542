"""The `codesign` entry point: outputs, exit codes, and clear errors with no partial files."""

import json

import pytest

from codesign.cli.main import main


def test_config_round_trip(tmp_path, capsys):
    out = tmp_path / "hw.json"
    assert main(["config", "--out", str(out)]) == 0
    assert main(["config", "--config", str(out)]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(out.read_text())


def test_rtl_writes_verilog_and_manifest(tmp_path):
    hw = tmp_path / "hw.json"
    hw.write_text(json.dumps({"rows": 2, "cols": 2, "digit_bits": 1}))
    assert main(["rtl", "--config", str(hw), "--out", str(tmp_path / "rtl")]) == 0
    manifest = json.loads((tmp_path / "rtl" / "manifest.json").read_text())
    assert manifest["config"]["digit_bits"] == 1 and (tmp_path / "rtl" / "accelerator.v").exists()
    assert (tmp_path / "rtl" / "accelerator.h").exists()


@pytest.mark.parametrize("config, message", [
    ({"rows": 0}, "rows: 0 is not allowed; expected an integer from 1 to 64"),
    ({"digit_bits": 3}, "digit_bits: 3 is not allowed; expected one of [1, 2, 4, 8]"),
    ({"acc_bits": 16}, "acc_bits: 16 is not allowed; expected >= 28"),
    ({"colls": 4}, "config: 'colls' is not allowed"),
])
def test_bad_config_exits_2_and_writes_nothing(tmp_path, capsys, config, message):
    hw = tmp_path / "hw.json"
    hw.write_text(json.dumps(config))
    assert main(["rtl", "--config", str(hw), "--out", str(tmp_path / "rtl")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "rtl").exists()


@pytest.mark.parametrize("argv, message", [
    (["--m", "4", "--k", "8", "--n", "3", "--bits", "2,4"], "--bits: '2,4' is not allowed; expected one bit width, or one per output channel (N=3)"),
    (["--m", "4", "--k", "8", "--n", "3", "--bits", "9"], "--bits: 9 is not allowed; expected integers from 1 to weight_bits_max=8"),
    (["--m", "4", "--k", "8", "--n", "3", "--bits", "x"], "--bits: 'x' is not allowed; expected comma-separated integers"),
    (["--m", "0", "--k", "8", "--n", "3", "--bits", "4"], "--m: 0 is not allowed"),
    (["--m", "4", "--k", "5000", "--n", "3", "--bits", "4"], "--k: 5000 is not allowed; expected an integer from 1 to 4096"),
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


def test_synth_seed_count_is_validated(capsys):
    assert main(["synth", "--seeds", "0", "--out", "unused"]) == 2
    assert "--seeds: 0 is not allowed; expected an integer from 1 to 16" in capsys.readouterr().err


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


def test_sim_gemm_system_latency_is_validated(capsys):
    argv = ["sim", "gemm", "--system", "--m", "4", "--k", "8", "--n", "3", "--bits", "4", "--latency", "-1"]
    assert main(argv) == 2
    assert "--latency: -1 is not allowed" in capsys.readouterr().err


def test_disasm_prints_a_program_and_refuses_a_missing_file(tmp_path, capsys):
    from codesign.hw import isa

    program = tmp_path / "prog.bin"
    program.write_bytes(isa.assemble([isa.Dma(opcode=isa.Opcode.LOAD_ACT, dram_addr=0x40, rows=1, row_bytes=64,
                                              push_next=True), isa.Compute(k=3, pop_prev=True), isa.End()]))
    assert main(["disasm", str(program)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("    0: LOAD_ACT") and "k=3" in lines[1] and lines[2].endswith("END")
    assert main(["disasm", str(tmp_path / "missing.bin")]) == 2
    assert "PROGRAM:" in capsys.readouterr().err

"""`codesign config | rtl | synth | disasm`: outputs, exit codes, and clear errors with no partial files."""

import json

import pytest

from codesign.cli.main import main


def test_config_round_trip(tmp_path, capsys):
    out = tmp_path / "hw.json"
    assert main(["config", "--out", str(out)]) == 0
    assert main(["config", "--config", str(out)]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(out.read_text())


def test_a_missing_config_file_exits_2(tmp_path, capsys):
    assert main(["config", "--config", str(tmp_path / "missing.json")]) == 2
    assert capsys.readouterr().err.startswith("codesign config: error: --config: ")


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


def test_rtl_refuses_both_design_and_config(tmp_path, capsys):
    assert main(["rtl", "--design", "d.json", "--config", "hw.json", "--out", str(tmp_path / "rtl")]) == 2
    assert "--design: 'd.json' is not allowed; expected either --design or --config" in capsys.readouterr().err


@pytest.mark.parametrize("seeds", ["0", "17"])
def test_synth_seed_count_is_validated(capsys, seeds):
    assert main(["synth", "--seeds", seeds, "--out", "unused"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"codesign synth: error: --seeds: {seeds} is not allowed; expected an integer from 1 to 16"]


def test_synth_sweep_refuses_a_config(capsys):
    assert main(["synth", "--sweep", "--config", "hw.json", "--out", "unused"]) == 2
    assert "no --config with --sweep" in capsys.readouterr().err


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


def test_rtl_writes_verilog_and_manifest(tmp_path):
    hw = tmp_path / "hw.json"
    hw.write_text(json.dumps({"rows": 2, "cols": 2, "digit_bits": 1}))
    assert main(["rtl", "--config", str(hw), "--out", str(tmp_path / "rtl")]) == 0
    manifest = json.loads((tmp_path / "rtl" / "manifest.json").read_text())
    assert manifest["config"]["digit_bits"] == 1 and (tmp_path / "rtl" / "accelerator.v").exists()
    assert (tmp_path / "rtl" / "accelerator.h").exists()


def test_config_out_dash_is_stdout(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["config", "--out", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 8
    assert list(tmp_path.iterdir()) == []

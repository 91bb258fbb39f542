"""Issue 13: every bad input gets one clear line.

The README's promise, row by row over every subcommand: bad input exits 2 with one line on stderr, ``codesign <sub
command>: error: ...``, naming the field, the value and what is allowed; no traceback; and no new file anywhere (the
output checks of `codesign.cli.options` run first and leave nothing behind). Each row runs `main` in-process in a
fresh directory of input files, and fails while validating, before any training or simulation, so the table is fast.
A few rows go through a real ``python -m codesign.cli`` to show that no traceback reaches a terminal.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from codesign.cli.main import main

ROOT = Path(__file__).resolve().parents[3]

LINEAR = {"type": "linear", "name": "fc", "in_features": 16, "out_features": 4, "batch": 1, "w_bits": [8] * 4,
          "act_bits": 8, "relu": False}
HARDWARE = {"rows": 2, "cols": 2}
# One linear layer with 8-bit weights, as IntegerModel.save writes it.
INTEGER_FC = {"name": "fc", "kind": "linear", "inputs": ["input"], "out_shape": [2, 1, 1],
              "requant": {"bias": [0, 0], "mult": [1, 1], "shift": [0, 0], "relu": False, "out_bits": 8},
              "in_bits": [8], "in_signed": [False], "in_scales": [1.0], "out_scale": 1.0, "weight": [[0] * 4] * 2,
              "w_bits": [8, 8], "w_scales": [1.0, 1.0], "stride": 1, "padding": 0, "pool": 1, "input_mults": []}
DESIGN = {"version": 1, "hardware": HARDWARE, "bits": {}, "network": {}, "cycles": 100.0, "acc": 0.9, "batch": 8}

# The inputs every row may name, written into the row's directory before the snapshot.
FILES: dict[str, bytes | str | object] = {
    "hw.json": HARDWARE,
    "hw_w4.json": {**HARDWARE, "weight_bits_max": 4},
    "hw_rows0.json": {"rows": 0},
    "layer.json": [LINEAR],
    "layers2.json": [LINEAR, {**LINEAR, "name": "fc2"}],
    "empty.json": [],
    "list.json": [1, 2],
    "unsafe_name.json": [{**LINEAR, "name": "../../escape"}],
    "wide_bits.json": [LINEAR],                  # 8-bit weights: wider than hw_w4.json's weight_bits_max
    "nonutf8.json": b'{"rows": 2, "\xff\xfe": 1}',
    "malformed.json": "{",
    "truncated.json": '[{"type": "linear", "name": "fc", "in_fea',
    "design_nofiles.json": DESIGN,
    "design_dotdot.json": {**DESIGN, "files": {"integer_model": "../../integer_model.json"}},
    "design_nobatch.json": {**{k: v for k, v in DESIGN.items() if k != "batch"},
                            "files": {"integer_model": "integer_wide.json"}},
    "design_wide.json": {**DESIGN, "hardware": {**HARDWARE, "weight_bits_max": 4},
                         "files": {"integer_model": "integer_wide.json"}},
    "integer_malformed.json": '{"input_shape": [1, 8, 8], "layers": [',
    "integer_wide.json": {"input_shape": [4, 1, 1], "input_bits": 8, "input_scale": 1.0, "layers": [INTEGER_FC]},
    "corrupt.pt": b"PK\x03\x04 not a torch checkpoint",
    "badword.bin": b"\xff" * 16,             # opcode 15: no such command
    "short.bin": b"abc",
    "afile": "a regular file, where a folder is needed",
}
DIRS = ("adir",)

GEMM = ["sim", "gemm", "--m", "4", "--k", "8", "--n", "3", "--bits", "4"]
LAYER = ["sim", "layer", "--layer", "layer.json"]
MAP = ["map", "--layers", "layer.json"]
VERIFY = ["verify", "--model", "integer_malformed.json", "--config", "hw.json"]
OHQ = ["ohq", "--model", "corrupt.pt", "--data", "none", "--fast", "--out", "out"]

# (command prefix, argv, what the line must contain: the field, and the value where it is a flag's)
ROWS = [
    # config
    ("codesign config", ["config", "--config", "missing.json"], "--config"),
    ("codesign config", ["config", "--config", "nonutf8.json"], "nonutf8.json"),
    ("codesign config", ["config", "--config", "malformed.json"], "config"),
    ("codesign config", ["config", "--config", "truncated.json"], "config"),
    ("codesign config", ["config", "--config", "list.json"], "config"),
    ("codesign config", ["config", "--config", "hw_rows0.json"], "rows: 0"),
    ("codesign config", ["config", "--out", "afile/hw.json"], "--out: 'afile/hw.json'"),
    ("codesign config", ["config", "--out", "adir"], "--out: 'adir'"),
    ("codesign config", ["config", "--out", "/proc/hw.json"], "--out: '/proc/hw.json'"),
    # rtl
    ("codesign rtl", ["rtl", "--out", "afile"], "--out: 'afile'"),
    ("codesign rtl", ["rtl", "--out", "afile/sub"], "--out: 'afile/sub'"),
    ("codesign rtl", ["rtl", "--out", "/sys/rtl"], "--out: '/sys/rtl'"),
    ("codesign rtl", ["rtl", "--design", "missing.json", "--out", "rtl"], "missing.json"),
    ("codesign rtl", ["rtl", "--design", "malformed.json", "--out", "rtl"], "malformed.json"),
    ("codesign rtl", ["rtl", "--design", "design_nofiles.json", "--config", "hw.json", "--out", "rtl"], "--design"),
    ("codesign rtl", ["rtl", "--config", "hw_rows0.json", "--out", "rtl"], "rows: 0"),
    ("codesign rtl", ["rtl"], "--out"),
    # synth
    ("codesign synth", ["synth", "--seeds", "0"], "--seeds: 0"),
    ("codesign synth", ["synth", "--out", "afile"], "--out: 'afile'"),
    ("codesign synth", ["synth", "--pe-table", "adir"], "--pe-table: 'adir'"),
    ("codesign synth", ["synth", "--sweep", "--config", "hw.json", "--out", "sweep"], "--config"),
    ("codesign synth", ["synth", "--config", "malformed.json", "--out", "synth"], "config"),
    # disasm
    ("codesign disasm", ["disasm", "missing.bin"], "PROGRAM: 'missing.bin'"),
    ("codesign disasm", ["disasm", "badword.bin"], "opcode: 15"),
    ("codesign disasm", ["disasm", "short.bin"], "3 bytes"),
    ("codesign disasm", ["disasm", "adir"], "PROGRAM: 'adir'"),
    # map
    ("codesign map", ["map", "--layers", "missing.json"], "missing.json"),
    ("codesign map", ["map", "--layers", "nonutf8.json"], "nonutf8.json"),
    ("codesign map", ["map", "--layers", "malformed.json"], "malformed.json"),
    ("codesign map", ["map", "--layers", "truncated.json"], "truncated.json"),
    ("codesign map", ["map", "--layers", "list.json"], "layers[0]"),
    ("codesign map", ["map", "--layers", "empty.json"], "empty.json"),
    ("codesign map", ["map", "--layers", "unsafe_name.json"], "../../escape"),
    ("codesign map", ["map", "--layers", "wide_bits.json", "--config", "hw_w4.json"], "w_bits"),
    ("codesign map", [*MAP, "--latency", "nan"], "--latency"),
    ("codesign map", [*MAP, "--latency", "-1"], "--latency: -1"),
    ("codesign map", [*MAP, "--json", "afile/map.json"], "--json: 'afile/map.json'"),
    ("codesign map", [*MAP, "--json", "adir"], "--json: 'adir'"),
    ("codesign map", [*MAP, "--config", "truncated.json"], "config"),
    ("codesign map", ["map"], "--layers"),
    # search: every row fails before anything trains
    ("codesign search", ["search", "--seed", "-1"], "--seed: -1"),
    ("codesign search", ["search", "--threads", "-2"], "--threads: -2"),
    ("codesign search", ["search", "--max-luts", "nan"], "--max-luts: nan"),
    ("codesign search", ["search", "--max-cycles", "inf"], "--max-cycles: inf"),
    ("codesign search", ["search", "--latency-weight", "-1"], "--latency-weight: -1"),
    ("codesign search", ["search", "--batch", "0"], "--batch: 0"),
    ("codesign search", ["search", "--search-epochs", "0"], "--search-epochs: 0"),
    ("codesign search", ["search", "--warmup-epochs", "-1"], "--warmup-epochs: -1"),
    ("codesign search", ["search", "--out", "afile"], "--out: 'afile'"),
    ("codesign search", ["search", "--out", "s", "--space", "missing.json"], "--space: 'missing.json'"),
    ("codesign search", ["search", "--out", "s", "--space", "nonutf8.json"], "--space: 'nonutf8.json'"),
    ("codesign search", ["search", "--out", "s", "--space", "malformed.json"], "--space: 'malformed.json'"),
    ("codesign search", ["search", "--out", "s", "--space", "list.json"], "--space: 'list.json'"),
    ("codesign search", ["search", "--out", "s", "--act-bits", "8,x"], "--act-bits: '8,x'"),
    # ohq: --data none and --fast, so that nothing trains or simulates should a check be missing
    ("codesign ohq", [*OHQ], "--model"),
    ("codesign ohq", [*OHQ, "--model", "missing.pt"], "--model: 'missing.pt'"),
    ("codesign ohq", [*OHQ, "--latency-budget", "nan"], "--latency-budget: nan"),
    ("codesign ohq", [*OHQ, "--latency-budget", "0"], "--latency-budget: 0"),
    ("codesign ohq", [*OHQ, "--size-budget", "1.5"], "--size-budget: 1.5"),
    ("codesign ohq", [*OHQ, "--qat-lr", "inf"], "--qat-lr: inf"),
    ("codesign ohq", [*OHQ, "--budgets", "0.5,nan"], "--budgets: '0.5,nan'"),
    ("codesign ohq", [*OHQ, "--batch", "0"], "--batch: 0"),
    ("codesign ohq", [*OHQ, "--group-size", "0"], "--group-size: 0"),
    ("codesign ohq", [*OHQ, "--qat-epochs", "-1"], "--qat-epochs: -1"),
    ("codesign ohq", [*OHQ, "--out", "afile"], "--out: 'afile'"),
    ("codesign ohq", [*OHQ, "--cache-dir", "afile"], "--cache-dir: 'afile'"),
    ("codesign ohq", [*OHQ, "--hw", "nonutf8.json"], "nonutf8.json"),
    ("codesign ohq", [*OHQ, "--data", "cifar10", "--data-path", "missing"], "--data-path: 'missing'"),
    # sim gemm / sim layer
    ("codesign sim gemm", [*GEMM, "--m", "0"], "--m: 0"),
    ("codesign sim gemm", [*GEMM, "--seed", "-1"], "--seed: -1"),
    ("codesign sim gemm", [*GEMM, "--bits", "9"], "--bits: 9"),
    ("codesign sim gemm", [*GEMM, "--system", "--latency", "10001"], "--latency: 10001"),
    ("codesign sim gemm", [*GEMM, "--json", "afile/r.json"], "--json: 'afile/r.json'"),
    ("codesign sim gemm", [*GEMM, "--config", "nonutf8.json"], "nonutf8.json"),
    ("codesign sim layer", [*LAYER, "--seed", "-1"], "--seed: -1"),
    ("codesign sim layer", [*LAYER, "--latency", "nan"], "--latency"),
    ("codesign sim layer", [*LAYER, "--json", "adir"], "--json: 'adir'"),
    ("codesign sim layer", ["sim", "layer", "--layer", "layers2.json"], "--layer: '2 layers'"),
    ("codesign sim layer", ["sim", "layer", "--layer", "empty.json"], "empty.json"),
    ("codesign sim layer", ["sim", "layer", "--layer", "missing.json"], "missing.json"),
    ("codesign sim layer", ["sim", "layer", "--layer", "wide_bits.json", "--config", "hw_w4.json"], "w_bits"),
    ("codesign sim layer", ["sim", "layer"], "--layer"),
    # verify
    ("codesign verify", [*VERIFY, "--images", "0"], "--images: 0"),
    ("codesign verify", [*VERIFY, "--seed", "-1"], "--seed: -1"),
    ("codesign verify", [*VERIFY, "--out", "adir"], "--out: 'adir'"),
    ("codesign verify", ["verify", "--model", "integer_malformed.json"], "--model/--config"),
    ("codesign verify", [*VERIFY], "integer_malformed.json"),
    ("codesign verify", ["verify", "--model", "missing.json", "--config", "hw.json"], "missing.json"),
    ("codesign verify", ["verify", "--model", "integer_wide.json", "--config", "hw_w4.json"], "w_bits"),
    ("codesign verify", ["verify", "--design", "malformed.json"], "malformed.json"),
    ("codesign verify", ["verify", "--design", "design_nofiles.json"], "files"),
    ("codesign verify", ["verify", "--design", "design_dotdot.json"], "../../integer_model.json"),
    ("codesign verify", ["verify", "--design", "design_nobatch.json"], "design_nobatch.json batch: 'missing'"),
    ("codesign verify", ["verify", "--design", "design_wide.json"], "fc w_bits: 8"),
    ("codesign verify", ["verify", "--design", "design_wide.json", "--config", "hw.json"], "--design"),
    # calibrate
    ("codesign calibrate", ["calibrate", "--out", "adir"], "--out: 'adir'"),
    ("codesign calibrate", ["calibrate", "--report", "afile/r.json"], "--report: 'afile/r.json'"),
    # bench
    ("codesign bench batchtile", ["bench", "batchtile", "--threads", "-2"], "--threads: -2"),
    ("codesign bench batchtile", ["bench", "batchtile", "--out", "adir"], "--out: 'adir'"),
    ("codesign bench depthwise", ["bench", "depthwise", "--out", "afile/depthwise.json"],
     "--out: 'afile/depthwise.json'"),
    ("codesign bench quant", ["bench", "quant", "--fp-epochs", "-1"], "--fp-epochs: -1"),
    ("codesign bench quant", ["bench", "quant", "--out", "/proc/quant.json"], "--out: '/proc/quant.json'"),
    ("codesign bench rtl", ["bench", "rtl", "--out", "afile/rtl.json"], "--out: 'afile/rtl.json'"),
    ("codesign bench rtl", ["bench", "rtl", "--out", "rtl.json", "--build-dir", "afile"], "--build-dir: 'afile'"),
    ("codesign bench search", ["bench", "search", "--dir", "afile"], "--dir: 'afile'"),
    ("codesign bench ohq", ["bench", "ohq", "--report-dir", "afile"], "--report-dir: 'afile'"),
]


def _row_id(row) -> str:
    prefix, argv, _ = row
    return " ".join(argv[len(prefix.split()) - 1:])[:60] or prefix


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A directory of the rows' input files, made the working directory."""
    for name, content in FILES.items():
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content)
        else:
            path.write_text(json.dumps(content))
    for name in DIRS:
        (tmp_path / name).mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def snapshot(root: Path) -> dict[str, float]:
    """Every file and folder under ``root``, with its modification time."""
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")}


def run(argv: list[str]) -> int:
    """`main`'s exit code; argparse's own errors leave it by SystemExit."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def test_the_table_covers_every_command_and_sixty_rows():
    from codesign.cli.main import build_parser

    leaves = set()
    for action in build_parser()._subparsers._group_actions:
        for name, parser in action.choices.items():
            nested = [a for a in parser._actions if isinstance(a, type(action))]
            leaves |= {f"codesign {name} {sub}" for a in nested for sub in a.choices} or {f"codesign {name}"}
    assert leaves <= {prefix for prefix, _, _ in ROWS}
    assert len(ROWS) >= 60


@pytest.mark.parametrize("prefix, argv, expected", ROWS, ids=[_row_id(row) for row in ROWS])
def test_bad_input_exits_2_with_one_line_and_no_file(workspace, capsys, prefix, argv, expected):
    before = snapshot(workspace)
    code = run(argv)
    out, err = capsys.readouterr()
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{prefix}: error: "), err
    assert expected in lines[0]
    assert "Traceback" not in err and out == ""
    assert snapshot(workspace) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_an_unwritable_folder_is_refused_before_any_work(workspace, capsys):
    locked = workspace / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert run([*MAP, "--json", "locked/map.json"]) == 2
    finally:
        locked.chmod(0o700)
    assert capsys.readouterr().err.startswith("codesign map: error: --json: 'locked/map.json' is not allowed")
    assert list(locked.iterdir()) == []


@pytest.mark.parametrize("argv, prefix", [
    (["map", "--layers", "layer.json", "--latency", "nan"], "codesign map"),
    (["disasm", "badword.bin"], "codesign disasm"),
    (["config", "--config", "truncated.json"], "codesign config"),
    (["sim", "layer", "--layer", "layer.json", "--seed", "-1"], "codesign sim layer"),
])
def test_a_real_terminal_sees_one_line_and_no_traceback(workspace, argv, prefix):
    done = subprocess.run([sys.executable, "-m", "codesign.cli", *argv], cwd=workspace, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{prefix}: error: "), done.stderr

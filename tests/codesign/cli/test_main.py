"""The `codesign` entry point as a whole: its command tree, `python -m codesign.cli`, and the Makefile that only
calls it (`make help` lists the targets)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from codesign.cli.main import main

ROOT = Path(__file__).resolve().parents[3]


def test_help_lists_every_command_family(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    listed = capsys.readouterr().out
    for command in ("config", "rtl", "synth", "disasm", "map", "search", "ohq", "sim", "verify", "calibrate", "bench"):
        assert re.search(rf"^\s+{command}\s", listed, re.MULTILINE), command


def test_a_command_is_required(capsys):
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2


def test_python_dash_m_codesign_cli_runs_the_same_command(tmp_path):
    out = tmp_path / "hw.json"
    done = subprocess.run([sys.executable, "-m", "codesign.cli", "config", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert '"rows"' in out.read_text()


def test_make_help_prints_every_target_and_its_comment():
    done = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    targets = {line.split()[0]: line for line in lines if line.strip()}
    for target in ("setup", "search", "rtl", "synth", "pe-table", "calibrate", "verify", "test", "test-slow", "lint",
                   "bench", "bench-rtl", "bench-quant", "bench-search", "bench-batchtile", "bench-ohq", "clean",
                   "help"):
        assert target in targets, target
        assert len(targets[target].split()) > 1, f"{target} has no ## comment"


def test_the_makefile_runs_only_codesign_subcommands():
    """Every Python entry point the Makefile uses is `codesign ...` (or the dev tools), never `python -m`."""
    recipes = [line.strip() for line in (ROOT / "Makefile").read_text().splitlines() if line.startswith("\t")]
    assert not [line for line in recipes if "python -m" in line or "$(BIN)/python" in line]
    for target in ("calibrate", "bench-rtl", "bench-quant", "bench-search", "bench-batchtile", "bench-ohq"):
        name = target.removeprefix("bench-")
        expected = "$(CODESIGN) calibrate" if target == "calibrate" else f"$(CODESIGN) bench {name}"
        assert any(line.startswith(expected) for line in recipes), target

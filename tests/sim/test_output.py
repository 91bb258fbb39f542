"""stdout is the CLI's: the build's and the simulator's output go to the logs beside the model (`sim.build`).

Real Verilator throughout. The failure tests build a tiny counter in a temporary build root; the command tests run
`codesign sim gemm` from the repository root, so they share the cached builds of the other simulation tests.
"""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from codesign.hw.config import HardwareConfig
from sim.build import Model, build, shown
from sim.runs.gemm import random_gemm, split_tiles
from sim.system.runner import model_for as system_model
from sim.tile.runner import model_for as tile_model


class Counter(wiring.Component):
    en: In(1)
    count: Out(4)

    def elaborate(self, platform):
        m = Module()
        with m.If(self.en):
            m.d.sync += self.count.eq(self.count + 1)
        return m

REPO = Path(__file__).resolve().parents[2]
GEMM = ["--m", "8", "--k", "16", "--n", "8", "--bits", "4"]


def test_a_failed_build_names_its_log_and_prints_nothing(tmp_path, monkeypatch, capfd):
    monkeypatch.setattr("sim.build.to_verilog", lambda design, top, icarus=False: f"module {top}(input a\nendmodule")
    with pytest.raises(RuntimeError, match=r"verilator build of broken failed .*; log: .*broken-\w+/build\.log") \
            as info:
        build(Counter, "broken", "verilator", tmp_path)
    assert "%Error" in str(info.value)                       # the log's last lines: Verilator's complaint
    out, err = capfd.readouterr()
    assert out == ""
    assert err.startswith("sim: building broken for verilator (log: ") and "%Error" not in err


def test_a_failed_run_names_its_log_and_prints_nothing(tmp_path, capfd):
    model = build(Counter, "counter", "verilator", tmp_path)
    assert "Verilator" in model.build_log.read_text()
    assert capfd.readouterr().out == ""
    # The tile testbench on a counter, without its jobs file: the cocotb test fails on its first line.
    with pytest.raises(RuntimeError, match=r"1 of 1 cocotb tests failed\); log: .*/run_\w+/run\.log") as info:
        model.run("sim.tile.testbench", {})
    assert "CODESIGN_TILE_JOBS" in str(info.value)           # the KeyError, from the log's last lines
    assert capfd.readouterr().out == ""
    assert not model.run_log.exists()                        # only a passed run's log takes that place


def sim_gemm(*flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "codesign.cli", "sim", "gemm", *GEMM, *flags], cwd=REPO,
                          capture_output=True, text=True, timeout=1200)


def assert_only_json(done: subprocess.CompletedProcess, model: Model) -> dict:
    """One JSON line on stdout; on stderr at most the build's progress line; the model's logs in place."""
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1, done.stdout[:2000]
    assert all(line.startswith("sim: building ") for line in done.stderr.splitlines()), done.stderr[:2000]
    if done.stderr:                                          # built by this command (else by an earlier one)
        assert f"sim: building {model.top} for verilator (log: {shown(model.build_log)})" in done.stderr
        assert "Verilator" in model.build_log.read_text()
    return json.loads(lines[0])


def test_sim_gemm_prints_only_its_json_line():
    started = time.time()
    done = sim_gemm()
    cfg = HardwareConfig()                                   # the command's model: found, not built, by its key
    a, w, requant = random_gemm(cfg, 8, 16, 8, np.full(8, 4), np.random.default_rng(0))
    model = tile_model(cfg, [tile for _, _, tile in split_tiles(cfg, a, w, np.full(8, 4), requant, 0)])
    result = assert_only_json(done, model)
    assert result["bit_exact"] and result["tiles"] == 1
    log = model.run_log.read_text()                          # this run's, or a later one's of the same model
    assert model.run_log.stat().st_mtime >= started - 1 and re.search(r"run_tiles\s+PASS", log)


def test_sim_gemm_system_prints_only_its_json_line():
    started = time.time()
    done = sim_gemm("--system")
    model = system_model(HardwareConfig())
    assert assert_only_json(done, model)["bit_exact"]
    log = model.run_log.read_text()
    assert model.run_log.stat().st_mtime >= started - 1 and re.search(r"run_session\s+PASS", log)
    assert "cocotbext-axi version" in log and "DeprecationWarning" not in log

"""The tile cocotb testbench on Verilator, driven through its JSON files: rows and cycles per job, and a timeout."""

import json

import numpy as np
import pytest

from codesign.hw.config import HardwareConfig
from sim.tile.runner import model_for
from sim.tile.tiles import decode_rows, encode, expected, expected_cycles, random_tile

# The 2x3 model of tests/sim/tile/test_runner.py (memories for K <= 16 and K * D <= 32), usually already built.
CFG = HardwareConfig(rows=2, cols=3, digit_bits=2)


def run_jobs(tmp_path, tiles, *, stall=False, timeout_cycles=None):
    model = model_for(CFG, [random_tile(CFG, np.random.default_rng(1), k=8)])
    jobs = []
    for tile in tiles:
        enc = encode(CFG, tile)
        jobs.append({"command": enc.command, "act_words": enc.act_words, "wgt_words": enc.wgt_words,
                     "emit": tile.emit, "stall": stall,
                     "timeout_cycles": timeout_cycles or 8 * expected_cycles(CFG, tile) + 100})
    jobs_path, results_path = tmp_path / "jobs.json", tmp_path / "results.json"
    jobs_path.write_text(json.dumps({"rows": CFG.rows, "jobs": jobs}))
    model.run("sim.tile.testbench", {"CODESIGN_TILE_JOBS": str(jobs_path), "CODESIGN_TILE_RESULTS": str(results_path)})
    return json.loads(results_path.read_text())


def test_each_job_reports_its_rows_and_cycles(tmp_path):
    rng = np.random.default_rng(8)
    tiles = [random_tile(CFG, rng, k=5, w_bits=[8, 1, 4]), random_tile(CFG, rng, k=16, w_bits=2, emit=False),
             random_tile(CFG, rng, k=3, w_bits=[5, 6, 7], accumulate=True),
             random_tile(CFG, rng, k=8, w_bits=8, edge=True)]
    results = run_jobs(tmp_path, tiles)
    assert len(results) == len(tiles)
    for tile, result, want in zip(tiles, results, expected(CFG, tiles), strict=True):
        assert result["cycles"] == expected_cycles(CFG, tile)
        if tile.emit:
            assert len(result["rows"]) == CFG.rows
            np.testing.assert_array_equal(decode_rows(CFG, result["rows"], tile.requant.relu), want)
        else:
            assert result["rows"] == []


def test_a_tile_past_its_timeout_fails_the_run(tmp_path, monkeypatch):
    """As outside pytest (the CLI): cocotb's runner then leaves the verdict to the results file, and `Model.run`
    raises. (Under pytest the runner itself exits with SystemExit, which `Model.run` does not turn into its error.)"""
    monkeypatch.delenv("PYTEST_CURRENT_TEST")
    tile = random_tile(CFG, np.random.default_rng(2), k=8, w_bits=8)
    with pytest.raises(RuntimeError, match="1 of 1 cocotb tests failed"):
        run_jobs(tmp_path, [tile], timeout_cycles=10)
    assert not (tmp_path / "results.json").exists()

"""Run `Tile`s on the RTL (`TileHarness` under cocotb) and return their outputs and measured cycles."""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import rtl_gen
from codesign.hw.config import HardwareConfig
from codesign.sources import HARDWARE_CONTRACT
from sim.build import DEFAULT_BUILD_ROOT, Model, build, source_fingerprint
from sim.tile import harness
from sim.tile.harness import TileHarness
from sim.tile.tiles import DepthwiseTile, Tile, decode_rows, encode, expected_cycles

TOP = "tile_harness"


@dataclass(frozen=True)
class TileResult:
    out: np.ndarray | None     # rows x cols requantized outputs, or None for a tile that does not emit
    cycles: int                # the core's own cycle count


def _capacity(n: int) -> int:
    """Memory depth for ``n`` words, rounded up to a power of two so nearby sizes share one Verilator build."""
    return max(16, 1 << (n - 1).bit_length())


def model_for(cfg: HardwareConfig, tiles: list[Tile | DepthwiseTile], simulator: str = "verilator",
              build_root: Path = DEFAULT_BUILD_ROOT) -> Model:
    """The compiled `TileHarness` that can hold ``tiles``: built once, then found without elaborating it."""
    encoded = [encode(cfg, t) for t in tiles]
    act_depth = _capacity(max(len(e.act_words) for e in encoded))
    wgt_depth = _capacity(max(len(e.wgt_words) for e in encoded))
    key = hashlib.sha256(json.dumps({
        "config": cfg.to_dict(), "act_depth": act_depth, "wgt_depth": wgt_depth,
        "sources": source_fingerprint(rtl_gen, *HARDWARE_CONTRACT, harness),
    }, sort_keys=True).encode()).hexdigest()
    return build(lambda: TileHarness(cfg, act_depth=act_depth, wgt_depth=wgt_depth), TOP, simulator, build_root,
                 key=key)


def run_tiles(cfg: HardwareConfig, tiles: list[Tile | DepthwiseTile], *, simulator: str = "verilator",
              stall: bool = False,
              build_root: Path = DEFAULT_BUILD_ROOT) -> list[TileResult]:
    """Run ``tiles`` in order on one simulation (accumulating tiles see the previous tiles' sums)."""
    model = model_for(cfg, tiles, simulator, build_root)
    jobs = []
    for tile in tiles:
        encoded = encode(cfg, tile)
        jobs.append({
            "command": encoded.command,
            "act_words": encoded.act_words,
            "wgt_words": encoded.wgt_words,
            "emit": tile.emit,
            "stall": stall,
            "timeout_cycles": 8 * expected_cycles(cfg, tile) + 100,
        })
    with tempfile.TemporaryDirectory(dir=model.build_dir, prefix="jobs_") as tmp:
        jobs_path, results_path = Path(tmp) / "jobs.json", Path(tmp) / "results.json"
        jobs_path.write_text(json.dumps({"rows": cfg.rows, "jobs": jobs}))
        model.run("sim.tile.testbench", {"CODESIGN_TILE_JOBS": str(jobs_path),
                                         "CODESIGN_TILE_RESULTS": str(results_path)})
        raw = json.loads(results_path.read_text())
    return [
        TileResult(out=decode_rows(cfg, r["rows"], tile.requant.relu) if tile.emit else None, cycles=r["cycles"])
        for tile, r in zip(tiles, raw, strict=True)
    ]

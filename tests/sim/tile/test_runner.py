"""ArrayCore on Verilator (and Icarus when installed): every output bit-exact, every cycle count exactly the formula.

Each configuration is one simulation running a batch of tiles: every weight width from 1 to 8 (uniform and mixed
per column), K from 1 to 256, edge operands (most negative weight, largest activation, zeros), signed and unsigned
activations, and a K split over two tiles (partial sums kept in the array). Depthwise tiles run in the same batch:
kernels 1, 3, 5 and 7, strides 1 and 2, padded borders, every weight width, signed and unsigned activations.
"""

import numpy as np
import pytest

from codesign.hw.config import HardwareConfig
from sim.build import simulator_available
from sim.tile.runner import TileResult, run_tiles
from sim.tile.tiles import expected, expected_cycles, random_depthwise_tile, random_tile

# (rows, cols, g): every shape of the issue and every digit width, each g on a non-square array too.
CONFIGS = [(1, 1, 1), (2, 3, 2), (2, 3, 4), (4, 4, 1), (4, 4, 8), (8, 8, 2), (8, 8, 8)]
# Icarus needs tens of milliseconds per cycle for an 8x8 array; it runs the same tests on the smaller shapes.
ICARUS_MAX_PES = 16


def tile_batch(cfg: HardwareConfig, rng: np.random.Generator) -> list:
    tiles = [random_tile(cfg, rng, k=int(rng.integers(1, 48)), w_bits=b) for b in range(1, cfg.weight_bits_max + 1)]
    tiles += [random_tile(cfg, rng, k=k) for k in (1, 2, 256)]
    tiles += [random_tile(cfg, rng, k=int(rng.integers(1, 64)), edge=True, act_signed=s) for s in (False, True)]
    tiles += [random_tile(cfg, rng, k=200, edge=True, w_bits=cfg.weight_bits_max, act_signed=False)]
    tiles += [random_tile(cfg, rng, k=37, emit=False, act_signed=False),
              random_tile(cfg, rng, k=29, accumulate=True, act_signed=False)]
    tiles += depthwise_batch(cfg, rng)
    return tiles


def depthwise_batch(cfg: HardwareConfig, rng: np.random.Generator) -> list:
    kernels = [(k, k, s) for k in (3, 5, 7) for s in (1, 2)] + [(1, 1, 1), (1, 1, 2), (3, 1, 2), (1, 3, 1)]
    return [random_depthwise_tile(cfg, rng, kh=kh, kw=kw, stride=s, w_bits=1 + i % cfg.weight_bits_max,
                                  act_signed=bool(i % 2), pad=kw // 2)
            for i, (kh, kw, s) in enumerate(kernels)] + \
        [random_depthwise_tile(cfg, rng, kh=3, kw=3, stride=1, pad=1)]      # mixed bits per channel


def check(cfg, tiles, results, *, exact_cycles=True):
    for i, (tile, result, want) in enumerate(zip(tiles, results, expected(cfg, tiles), strict=True)):
        label = f"tile {i} ({type(tile).__name__}): K={tile.k} bits={tile.w_bits.tolist()} signed={tile.act_signed}"
        if tile.emit:
            np.testing.assert_array_equal(result.out, want, err_msg=label)
        if exact_cycles:
            assert result.cycles == expected_cycles(cfg, tile), label
        else:
            assert result.cycles >= expected_cycles(cfg, tile), label


def params():
    for simulator in ("verilator", "icarus"):
        for rows, cols, g in CONFIGS:
            marks = []
            if simulator == "icarus":
                if rows * cols > ICARUS_MAX_PES:
                    continue
                marks.append(pytest.mark.skipif(not simulator_available("icarus"), reason="iverilog not installed"))
            yield pytest.param(simulator, rows, cols, g, marks=marks, id=f"{simulator}-{rows}x{cols}-g{g}")


@pytest.mark.parametrize("simulator, rows, cols, g", list(params()))
def test_tiles_bit_exact_and_cycle_exact(simulator, rows, cols, g):
    cfg = HardwareConfig(rows=rows, cols=cols, digit_bits=g, act_bits=8, weight_bits_max=8)
    tiles = tile_batch(cfg, np.random.default_rng(rows * 100 + cols * 10 + g))
    check(cfg, tiles, run_tiles(cfg, tiles, simulator=simulator))


@pytest.mark.parametrize("simulator", ["verilator", pytest.param("icarus", marks=pytest.mark.skipif(
    not simulator_available("icarus"), reason="iverilog not installed"))])
def test_random_backpressure_changes_timing_not_results(simulator):
    cfg = HardwareConfig(rows=2, cols=3, digit_bits=2)
    rng = np.random.default_rng(7)
    tiles = [random_tile(cfg, rng, k=int(rng.integers(1, 40))) for _ in range(6)]
    tiles += [random_tile(cfg, rng, k=9, emit=False), random_tile(cfg, rng, k=4, accumulate=True)]
    tiles += [random_depthwise_tile(cfg, rng, kh=3, kw=3, stride=s, pad=1) for s in (1, 2)]
    results = run_tiles(cfg, tiles, simulator=simulator, stall=True)
    check(cfg, tiles, results, exact_cycles=False)
    assert sum(r.cycles for r in results) > sum(expected_cycles(cfg, t) for t in tiles)


def test_a_wrong_result_or_count_is_caught():
    """The checker itself: one flipped output bit, or one cycle more, must fail it."""
    cfg = HardwareConfig(rows=2, cols=3, digit_bits=2)
    tiles = [random_tile(cfg, np.random.default_rng(1), k=8)]
    result = run_tiles(cfg, tiles)[0]
    check(cfg, tiles, [result])
    flipped = result.out.copy()
    flipped[1, 2] ^= 1
    with pytest.raises(AssertionError):
        check(cfg, tiles, [TileResult(out=flipped, cycles=result.cycles)])
    with pytest.raises(AssertionError):
        check(cfg, tiles, [TileResult(out=result.out, cycles=result.cycles + 1)])

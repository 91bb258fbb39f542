"""SystolicArray in Amaranth's simulator: aligned inputs, skew inside, and after the flush every PE holds A @ W."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from codesign.hw.config import HardwareConfig
from rtl_gen.systolic_array import SystolicArray


def column_digits(w_column_step: np.ndarray, d: int, g: int) -> list[list[int]]:
    """Digit j (0 .. d - 1) of each weight in one reduction step, two's complement over d * g bits."""
    raw = [int(w) & ((1 << (d * g)) - 1) for w in w_column_step]
    return [[(r >> (j * g)) & ((1 << g) - 1) for r in raw] for j in range(d)]


def simulate(cfg, tiles, *, stall_rng=None):
    """Run each (A, W, d) tile: K * d aligned input cycles (``clr`` with the first), then the flush of
    rows + cols - 2 zero-digit cycles; returns the sums after each flush."""
    dut = SystolicArray(cfg)
    results = []

    async def cycle(ctx, **values):
        while stall_rng is not None and stall_rng.random() < 0.25:
            ctx.set(dut.en, 0)
            ctx.set(dut.clr, 1)                    # ignored while stalled
            await ctx.tick()
        ctx.set(dut.en, 1)
        for name, value in values.items():
            ctx.set(getattr(dut, name), value)
        await ctx.tick()
        ctx.set(dut.clr, 0)

    async def bench(ctx):
        for a, w, d in tiles:
            k = a.shape[1]
            for step in range(k):
                for j, digits in enumerate(column_digits(w[step], d, cfg.digit_bits)):
                    await cycle(ctx, act=[int(v) for v in a[:, step]], digits=digits, first=j == 0,
                                msb=j == d - 1, clr=step == 0 and j == 0)
            for _ in range(cfg.rows + cfg.cols - 2):
                await cycle(ctx, act=[0] * cfg.rows, digits=[0] * cfg.cols, first=0, msb=0, clr=0)
            acc = ctx.get(dut.acc)
            results.append(np.array([[acc[r][c] for c in range(cfg.cols)] for r in range(cfg.rows)]))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return results


def random_tile(cfg, rng, k, bits):
    a = rng.integers(-(1 << (cfg.act_bits - 1)), 1 << cfg.act_bits, size=(cfg.rows, k))
    w = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=(k, cfg.cols))
    return a, w, cfg.digits(bits)


@pytest.mark.parametrize("rows, cols, g", [(2, 3, 2), (3, 2, 1), (1, 4, 4), (2, 2, 8)])
def test_small_arrays_compute_the_matrix_product(rows, cols, g):
    cfg = HardwareConfig(rows=rows, cols=cols, digit_bits=g, act_bits=8, weight_bits_max=8)
    rng = np.random.default_rng(rows * 100 + cols * 10 + g)
    tiles = [random_tile(cfg, rng, 5, 8), random_tile(cfg, rng, 3, 3), random_tile(cfg, rng, 1, 8)]
    # edge operands: the largest activation times the most negative 8-bit weight everywhere
    tiles.append((np.full((rows, 4), 255), np.full((4, cols), -128), cfg.digits(8)))
    for (a, w, _), got in zip(tiles, simulate(cfg, tiles), strict=True):
        np.testing.assert_array_equal(got, a @ w)


def test_stalls_do_not_change_the_sums():
    cfg = HardwareConfig(rows=3, cols=2, digit_bits=2, act_bits=8, weight_bits_max=8)
    rng = np.random.default_rng(7)
    tiles = [random_tile(cfg, rng, 4, 6), random_tile(cfg, rng, 2, 8)]
    for (a, w, _), got in zip(tiles, simulate(cfg, tiles, stall_rng=np.random.default_rng(3)), strict=True):
        np.testing.assert_array_equal(got, a @ w)

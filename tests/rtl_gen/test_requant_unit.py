"""RequantUnit in Amaranth's simulator: bit-exact with `codesign.hw.reference.requantize`, REQUANT_LATENCY deep."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from codesign.hw.config import HardwareConfig
from codesign.hw.reference import Requant, requantize
from codesign.hw.timing import REQUANT_LATENCY
from rtl_gen.requant_unit import RequantUnit

CFG = HardwareConfig(rows=1, cols=1, act_bits=8, acc_bits=32, mult_bits=16)


def to_signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value >> (bits - 1) else value


def simulate(cfg, cases, *, stall_rng=None):
    """Each case ``(params, accs)``: hold the per-tile parameters, then stream the accumulator values with
    ``in_valid``; returns the outputs of each case (as the next layer's activations) in order."""
    dut = RequantUnit(cfg)
    results = []

    async def bench(ctx):
        for (bias, mult, shift, relu, out_bits), accs in cases:
            ctx.set(dut.en, 1)
            ctx.set(dut.in_valid, 0)
            ctx.set(dut.bias, bias)
            ctx.set(dut.mult, mult)
            ctx.set(dut.shift, shift)
            ctx.set(dut.relu, relu)
            ctx.set(dut.out_bits, out_bits)
            await ctx.tick()                  # the parameters settle with the tile's first row, one cycle ahead
            pending, outputs = list(accs), []
            while len(outputs) < len(accs):
                enable = stall_rng is None or stall_rng.random() < 0.7
                ctx.set(dut.en, enable)
                ctx.set(dut.in_valid, bool(pending))
                ctx.set(dut.acc, pending[0] if pending else 0)
                await ctx.tick()
                if enable and pending:
                    pending.pop(0)
                if ctx.get(dut.out_valid) and enable:
                    value = ctx.get(dut.value)
                    outputs.append(value if relu else to_signed(value, cfg.act_bits))
            ctx.set(dut.in_valid, 0)
            for _ in range(REQUANT_LATENCY):  # empty the pipeline before the parameters change
                await ctx.tick()
            results.append(outputs)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return results


def random_case(cfg, rng, n=12):
    acc_lo, acc_hi = -(1 << (cfg.acc_bits - 1)), 1 << (cfg.acc_bits - 1)
    relu = bool(rng.integers(0, 2))
    params = (int(rng.integers(-(1 << 20), 1 << 20)), int(rng.integers(0, 1 << cfg.mult_bits)),
              int(rng.integers(0, cfg.shift_max + 1)), relu, int(rng.integers(1, cfg.act_bits + 1)))
    spread = int(rng.integers(4, cfg.acc_bits - 1))
    accs = [int(v) for v in rng.integers(-(1 << spread), 1 << spread, n)] + [int(rng.integers(acc_lo, acc_hi))]
    return params, accs


def expected(cfg, cases):
    out = []
    for (bias, mult, shift, relu, out_bits), accs in cases:
        rq = Requant(bias=[bias], mult=[mult], shift=[shift], relu=relu, out_bits=out_bits)
        out.append(requantize(cfg, np.array(accs)[:, None], rq)[:, 0].tolist())
    return out


def edge_cases(cfg):
    acc_lo, acc_hi = -(1 << (cfg.acc_bits - 1)), (1 << (cfg.acc_bits - 1)) - 1
    mult_max = (1 << cfg.mult_bits) - 1
    extremes = [acc_lo, acc_hi, 0, -1, 1]
    return [
        ((0, 1, 0, False, 8), [-200, -129, -128, 127, 128, 300, 5]),         # no shift, no rounding: just the clamp
        ((0, 1, 1, False, 8), [5, -5, 3, -3, 1, -1]),                         # halves round up: 2.5 -> 3, -2.5 -> -2
        ((0, 1, 2, True, 8), [2, 6, -2, 1021, 1022]),                         # relu clamp at 0 and 255
        ((0, 1, 0, True, 1), [-1, 0, 1, 2]),                                  # one unsigned bit
        ((0, 1, 0, False, 1), [-2, -1, 0, 1]),                                # one signed bit: -1 .. 0
        ((acc_lo, mult_max, cfg.shift_max, False, 8), extremes),              # the widest product, the largest shift
        ((acc_hi, mult_max, cfg.shift_max - 1, True, 8), extremes),
        ((acc_hi, mult_max, 40, False, 8), extremes),
        ((-7, 0, 3, False, 8), extremes),                                     # mult 0: only the rounding is left
        ((123, 1 << 15, 16, False, 5), [-1000, -17, 33, 4000, 100_000]),
    ]


def test_edge_cases_are_bit_exact():
    cases = edge_cases(CFG)
    assert simulate(CFG, cases) == expected(CFG, cases)


@pytest.mark.parametrize("cfg", [CFG, HardwareConfig(rows=1, cols=1, act_bits=4, weight_bits_max=4, acc_bits=24,
                                                     mult_bits=10, max_k=256)], ids=["a8", "a4"])
def test_random_values_are_bit_exact_with_stalls(cfg):
    rng = np.random.default_rng(cfg.act_bits)
    cases = [random_case(cfg, rng) for _ in range(12)]
    assert simulate(cfg, cases, stall_rng=np.random.default_rng(1)) == expected(cfg, cases)


def test_latency_is_the_timing_constant_in_enabled_cycles():
    assert RequantUnit.LATENCY == REQUANT_LATENCY
    dut = RequantUnit(CFG)
    seen = {}

    async def bench(ctx):
        ctx.set(dut.en, 1)
        ctx.set(dut.in_valid, 1)
        await ctx.tick()
        ctx.set(dut.in_valid, 0)
        enabled = 1
        for cycle in range(20):
            enable = cycle % 3 != 1            # every third cycle stalled
            ctx.set(dut.en, enable)
            if ctx.get(dut.out_valid):
                seen.setdefault("at", enabled)
            await ctx.tick()
            enabled += enable

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen["at"] == REQUANT_LATENCY

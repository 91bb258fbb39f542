"""PE in Amaranth's simulator: the digit-serial MAC equals integer arithmetic for every digit width g."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from codesign.hw.config import HardwareConfig
from rtl_gen.pe import PE


def weight_digits(w: int, bits: int, g: int) -> list[int]:
    """The D = ceil(bits / g) digits of a signed ``bits``-bit weight, least significant first; the top digit holds
    the sign-extended rest (read back by the PE as a signed g-bit number)."""
    d = -(-bits // g)
    raw = w & ((1 << (d * g)) - 1)                 # two's complement over D * g bits
    return [(raw >> (j * g)) & ((1 << g) - 1) for j in range(d)]


def run_pe(cfg, steps, *, stall_rng=None):
    """Feed reduction steps ``[(a, w, bits), ...]`` into one PE (fresh sum at the first one); returns the
    accumulator after each step and the (a_out, digit_out, first_out, msb_out) seen one enabled cycle after each
    input."""
    dut = PE(cfg)
    sums, forwarded = [], []

    async def bench(ctx):
        first_step = True
        for a, w, bits in steps:
            digits = weight_digits(w, bits, cfg.digit_bits)
            for j, digit in enumerate(digits):
                while stall_rng is not None and stall_rng.random() < 0.3:
                    # A stalled cycle with garbage on the inputs must change nothing.
                    ctx.set(dut.en, 0)
                    ctx.set(dut.a_in, int(stall_rng.integers(-100, 100)))
                    ctx.set(dut.digit_in, int(stall_rng.integers(0, 1 << cfg.digit_bits)))
                    ctx.set(dut.first_in, 1)
                    ctx.set(dut.clr_in, 1)
                    await ctx.tick()
                ctx.set(dut.en, 1)
                ctx.set(dut.a_in, a if j == 0 else -77)     # the activation is only read on the first digit
                ctx.set(dut.digit_in, digit)
                ctx.set(dut.first_in, j == 0)
                ctx.set(dut.msb_in, j == len(digits) - 1)
                ctx.set(dut.clr_in, first_step and j == 0)
                await ctx.tick()
                forwarded.append((ctx.get(dut.a_out), ctx.get(dut.digit_out), ctx.get(dut.first_out),
                                  ctx.get(dut.msb_out)))
            first_step = False
            sums.append(ctx.get(dut.acc))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return sums, forwarded


def random_steps(cfg, rng, k, *, signed):
    lo, hi = (-(1 << (cfg.act_bits - 1)), 1 << (cfg.act_bits - 1)) if signed else (0, 1 << cfg.act_bits)
    steps = []
    for _ in range(k):
        bits = int(rng.integers(1, cfg.weight_bits_max + 1))
        steps.append((int(rng.integers(lo, hi)), int(rng.integers(-(1 << (bits - 1)), 1 << (bits - 1))), bits))
    return steps


@pytest.mark.parametrize("g", [1, 2, 4, 8])
@pytest.mark.parametrize("signed", [False, True])
def test_digit_serial_mac_equals_integer_arithmetic(g, signed):
    cfg = HardwareConfig(rows=1, cols=1, digit_bits=g, act_bits=8, weight_bits_max=8)
    rng = np.random.default_rng(10 * g + signed)
    steps = random_steps(cfg, rng, 12, signed=signed)
    # the extremes: largest activation times the most negative weight, and -1 at every width
    top = -(1 << (cfg.act_bits - 1)) if signed else (1 << cfg.act_bits) - 1
    steps += [(top, -128, 8), (top, 127, 8), (top, -1, 1), (top, -1, 3), (0, -128, 8), (top, 0, 8)]
    sums, _ = run_pe(cfg, steps)
    assert sums == list(np.cumsum([a * w for a, w, _ in steps]))


@pytest.mark.parametrize("g", [1, 2, 4, 8])
def test_a_stalled_pe_holds_its_state(g):
    cfg = HardwareConfig(rows=1, cols=1, digit_bits=g, act_bits=8, weight_bits_max=8)
    rng = np.random.default_rng(g)
    steps = random_steps(cfg, rng, 8, signed=False)
    sums, _ = run_pe(cfg, steps, stall_rng=np.random.default_rng(100 + g))
    assert sums == list(np.cumsum([a * w for a, w, _ in steps]))


def test_operands_move_on_one_register_later():
    cfg = HardwareConfig(rows=1, cols=1, digit_bits=2, act_bits=8, weight_bits_max=8)
    steps = [(200, -93, 8), (5, 1, 2)]
    _, forwarded = run_pe(cfg, steps)
    digits = weight_digits(-93, 8, 2) + weight_digits(1, 2, 2)
    firsts = [1, 0, 0, 0, 1]
    msbs = [0, 0, 0, 1, 1]
    a_values = [200, -77, -77, -77, 5]
    assert forwarded == list(zip(a_values, digits, firsts, msbs))


def test_clr_starts_a_fresh_sum():
    cfg = HardwareConfig(rows=1, cols=1, digit_bits=8, act_bits=8, weight_bits_max=8)
    dut = PE(cfg)
    seen = []

    async def bench(ctx):
        ctx.set(dut.en, 1)
        ctx.set(dut.first_in, 1)
        ctx.set(dut.msb_in, 1)
        for a, w, clr in ((3, 7, 1), (2, 5, 0), (4, -6, 1), (1, 1, 0)):
            ctx.set(dut.a_in, a)
            ctx.set(dut.digit_in, w & 0xFF)
            ctx.set(dut.clr_in, clr)
            await ctx.tick()
            seen.append(ctx.get(dut.acc))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen == [21, 31, -24, -23]

"""ArrayCore in Amaranth's own simulator: stream handshakes under random backpressure, on small arrays.

The exhaustive bit-exactness and cycle-count sweeps run on Verilator and Icarus (tests/sim); this file pins the
protocol: bubbles on any stream may only slow a tile down, never change its result.
"""

import numpy as np
import pytest
from amaranth.sim import Simulator

from codesign.config import HardwareConfig
from rtl_gen.array_core import ArrayCore
from sim.tiles import decode_rows, encode, expected, expected_cycles, random_tile


def simulate(cfg, tiles, rng, stall):
    """Drive the core's streams directly, a beat at a time; return (output rows, cycles) per tile."""
    dut = ArrayCore(cfg)
    results = []

    def chance():
        return not stall or rng.random() < 0.6

    async def testbench(ctx):
        for tile in tiles:
            enc = encode(cfg, tile)
            ctx.set(dut.cmd.payload.as_value(), enc.command)
            ctx.set(dut.cmd.valid, 1)
            await ctx.tick()
            ctx.set(dut.cmd.valid, 0)
            acts, wgts, rows = list(enc.act_words), list(enc.wgt_words), []
            while True:
                ctx.set(dut.act.valid, bool(acts) and chance())
                ctx.set(dut.act.payload.as_value(), acts[0] if acts else 0)
                ctx.set(dut.wgt.valid, bool(wgts) and chance())
                ctx.set(dut.wgt.payload.as_value(), wgts[0] if wgts else 0)
                ctx.set(dut.out.ready, chance())
                _, _, act_ok, wgt_ok, out_ok, out_word = await ctx.tick().sample(
                    dut.act.valid & dut.act.ready, dut.wgt.valid & dut.wgt.ready,
                    dut.out.valid & dut.out.ready, dut.out.payload.as_value())
                if act_ok:
                    acts.pop(0)
                if wgt_ok:
                    wgts.pop(0)
                if out_ok:
                    rows.append(out_word)
                if not ctx.get(dut.busy):
                    break
            results.append((decode_rows(cfg, rows, tile.requant.relu) if tile.emit else None, ctx.get(dut.cycles)))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    return results


@pytest.mark.parametrize("shape, g", [((2, 3), 2), ((3, 2), 1), ((1, 1), 8)])
@pytest.mark.parametrize("stall", [False, True])
def test_tiles_are_exact_with_and_without_backpressure(shape, g, stall):
    cfg = HardwareConfig(rows=shape[0], cols=shape[1], digit_bits=g, weight_bits_max=8)
    rng = np.random.default_rng(sum(shape) * 10 + g)
    tiles = [random_tile(cfg, rng, k=int(rng.integers(1, 12))) for _ in range(4)]
    tiles += [random_tile(cfg, rng, k=5, emit=False), random_tile(cfg, rng, k=3, accumulate=True)]
    for tile, (out, cycles), want in zip(tiles, simulate(cfg, tiles, rng, stall), expected(cfg, tiles)):
        if tile.emit:
            np.testing.assert_array_equal(out, want)
        if stall:
            assert cycles >= expected_cycles(cfg, tile)
        else:
            assert cycles == expected_cycles(cfg, tile)

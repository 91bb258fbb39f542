"""TileHarness in Amaranth's simulator: words written into its memories run as a tile, rows and cycles come back."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from codesign.hw.config import HardwareConfig
from sim.tile.harness import TileHarness
from sim.tile.tiles import decode_rows, digits_of, encode, expected, expected_cycles, random_tile


class OpenHarness(TileHarness):
    """The harness with its documented memories (``act_mem``, ``wgt_mem``, ``out_mem``) in reach of a testbench,
    as VPI reaches them in Verilator."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        self.memories = {name: m.submodules[name].data for name in ("act_mem", "wgt_mem", "out_mem")}
        return m


def simulate(cfg, tiles, *, stall):
    dut = OpenHarness(cfg, act_depth=16, wgt_depth=64)
    results = []

    async def bench(ctx):
        memories = dut.memories
        for tile in tiles:
            enc = encode(cfg, tile)
            for address, word in enumerate(enc.act_words):
                ctx.set(memories["act_mem"][address], word)
            for address, word in enumerate(enc.wgt_words):
                ctx.set(memories["wgt_mem"][address], word)
            ctx.set(dut.command.as_value(), enc.command)
            ctx.set(dut.act_beats, len(enc.act_words))
            ctx.set(dut.wgt_beats, len(enc.wgt_words))
            ctx.set(dut.stall, stall)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            assert not ctx.get(dut.done)
            for _ in range(8 * expected_cycles(cfg, tile) + 100):
                if ctx.get(dut.done):
                    break
                await ctx.tick()
            assert ctx.get(dut.done), "the tile never finished"
            rows = [ctx.get(memories["out_mem"][r]) for r in range(cfg.rows)]
            results.append((decode_rows(cfg, rows, tile.requant.relu) if tile.emit else None, ctx.get(dut.cycles)))
            await ctx.tick()
            assert ctx.get(dut.done)                    # done holds until the next start

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return results


@pytest.mark.parametrize("stall", [False, True])
def test_tiles_from_memory_are_exact_and_counted(stall):
    cfg = HardwareConfig(rows=2, cols=3, digit_bits=2)
    rng = np.random.default_rng(4)
    tiles = [random_tile(cfg, rng, k=k) for k in (1, 7, 16)]
    tiles += [random_tile(cfg, rng, k=5, emit=False), random_tile(cfg, rng, k=3, accumulate=True)]
    assert max(t.k * digits_of(cfg, t) for t in tiles) <= 64
    results = simulate(cfg, tiles, stall=stall)
    for tile, (out, cycles), want in zip(tiles, results, expected(cfg, tiles), strict=True):
        if tile.emit:
            np.testing.assert_array_equal(out, want)
        if stall:
            assert cycles >= expected_cycles(cfg, tile)
        else:
            assert cycles == expected_cycles(cfg, tile)
    if stall:                                           # the LFSR's bubbles did slow the tiles down
        assert sum(c for _, c in results) > sum(expected_cycles(cfg, t) for t in tiles)

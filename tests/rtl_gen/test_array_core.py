"""ArrayCore in Amaranth's own simulator: stream handshakes under random backpressure, on small arrays.

The exhaustive bit-exactness and cycle-count sweeps run on Verilator and Icarus (tests/sim); this file pins the
protocol: bubbles on any stream may only slow a tile down, never change its result.
"""

import numpy as np
import pytest
from amaranth.sim import Simulator

from codesign.hw.config import HardwareConfig
from codesign.hw.timing import bank_cycles, drain_cycles, fill_cycles
from rtl_gen.array_core import ArrayCore
from sim.tile.tiles import decode_rows, encode, expected, expected_cycles, random_depthwise_tile, random_tile


def simulate(cfg, tiles, rng, stall, *, overlap=False):
    """Drive the core's streams directly, a beat at a time. One tile at a time (the next command once the core is
    idle, drain included): (output rows, cycles) per tile. With ``overlap``, the next command is offered as soon as
    the previous one is taken, so drains overlap the next tiles: (output rows per tile, handshake and last-output
    cycles per tile)."""
    dut = ArrayCore(cfg)
    results = []

    def chance():
        return not stall or rng.random() < 0.6

    async def one_at_a_time(ctx):
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
                if not ctx.get(dut.busy) and not ctx.get(dut.draining):
                    break
            results.append((decode_rows(cfg, rows, tile.requant.relu) if tile.emit else None, ctx.get(dut.cycles)))

    async def back_to_back(ctx):
        encoded = [encode(cfg, tile) for tile in tiles]
        commands = [e.command for e in encoded]
        acts = [w for e in encoded for w in e.act_words]
        wgts = [w for e in encoded for w in e.wgt_words]
        words, handshakes, outputs = [], [], []
        cycle = 0
        while len(handshakes) < len(tiles) or ctx.get(dut.busy) or ctx.get(dut.draining):
            ctx.set(dut.cmd.valid, bool(commands))
            ctx.set(dut.cmd.payload.as_value(), commands[0] if commands else 0)
            ctx.set(dut.act.valid, bool(acts) and chance())
            ctx.set(dut.act.payload.as_value(), acts[0] if acts else 0)
            ctx.set(dut.wgt.valid, bool(wgts) and chance())
            ctx.set(dut.wgt.payload.as_value(), wgts[0] if wgts else 0)
            ctx.set(dut.out.ready, chance())
            _, _, cmd_ok, act_ok, wgt_ok, out_ok, out_word = await ctx.tick().sample(
                dut.cmd.valid & dut.cmd.ready, dut.act.valid & dut.act.ready, dut.wgt.valid & dut.wgt.ready,
                dut.out.valid & dut.out.ready, dut.out.payload.as_value())
            if cmd_ok:
                commands.pop(0)
                handshakes.append(cycle)
            if act_ok:
                acts.pop(0)
            if wgt_ok:
                wgts.pop(0)
            if out_ok:
                words.append(out_word)
                outputs.append(cycle)
            cycle += 1
        for tile in tiles:
            rows, words[:] = (words[:cfg.rows], words[cfg.rows:]) if tile.emit else ([], words)
            results.append(decode_rows(cfg, rows, tile.requant.relu) if tile.emit else None)
        results.append((handshakes, outputs))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(back_to_back if overlap else one_at_a_time)
    sim.run()
    return results


def schedule(cfg, tiles):
    """When each tile's command is taken and when each emitting tile's last row leaves, by `codesign.hw.timing`, for
    back-to-back tiles without stalls: the next handshake comes the cycle after a tile's last beat; an emitting
    tile's last step starts no sooner than `bank_cycles` after the previous emitting tile's last beat, and its last
    row leaves `fill_cycles` + `drain_cycles` after its own."""
    handshakes, last_outputs, handshake, bank_free = [], [], 0, 0
    for tile in tiles:
        handshakes.append(handshake)
        d = cfg.digits(int(np.max(tile.w_bits)))
        last_step = handshake + 1 + expected_cycles(cfg, tile) - d
        if tile.emit:
            last_step = max(last_step, bank_free)
        last_beat = last_step + d - 1
        if tile.emit:
            bank_free = last_beat + bank_cycles(cfg)
            last_outputs.append(last_beat + fill_cycles(cfg) + drain_cycles(cfg))
        handshake = last_beat + 1
    return handshakes, last_outputs


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


@pytest.mark.parametrize("shape, g", [((2, 3), 2), ((4, 2), 1), ((1, 1), 8)])
@pytest.mark.parametrize("stall", [False, True])
def test_drains_overlap_the_next_tiles(shape, g, stall):
    """Back-to-back tiles: each tile's last digits cross the array, and its sums drain, under the next tile's feed;
    emitting tiles shorter than the bank's turn wait for the held bank; an accumulating tile after an emitting one
    still sees the array's sums. Exact results either way, and
    without stalls, every handshake and last output on the cycle `schedule` gives."""
    cfg = HardwareConfig(rows=shape[0], cols=shape[1], digit_bits=g, weight_bits_max=8)
    rng = np.random.default_rng(sum(shape) * 7 + g)
    tiles = [random_tile(cfg, rng, k=k) for k in (1, 1, 2, 9, 1)]
    tiles += [random_tile(cfg, rng, k=4, accumulate=True), random_tile(cfg, rng, k=6, emit=False),
              random_tile(cfg, rng, k=1, accumulate=True), random_tile(cfg, rng, k=1, w_bits=1)]
    *outs, (handshakes, outputs) = simulate(cfg, tiles, rng, stall, overlap=True)
    for tile, out, want in zip(tiles, outs, expected(cfg, tiles), strict=True):
        if tile.emit:
            np.testing.assert_array_equal(out, want)
    if not stall:
        want_handshakes, want_last = schedule(cfg, tiles)
        assert handshakes == want_handshakes
        assert outputs[cfg.rows - 1::cfg.rows] == want_last


@pytest.mark.parametrize("shape, g", [((3, 2), 2), ((2, 3), 1), ((1, 2), 8)])
@pytest.mark.parametrize("stall", [False, True])
def test_depthwise_tiles_are_exact_with_and_without_backpressure(shape, g, stall):
    """Depthwise tiles (each column its own channel, each row its own output pixel) between GEMM tiles: kernels 1,
    3 and 5, strides 1 and 2, padding; exact, and without stalls exactly `depthwise_tile_cycles`."""
    cfg = HardwareConfig(rows=shape[0], cols=shape[1], digit_bits=g, weight_bits_max=8)
    rng = np.random.default_rng(sum(shape) * 13 + g)
    tiles = [random_depthwise_tile(cfg, rng, kh=3, kw=3, stride=1, pad=1), random_tile(cfg, rng, k=4),
             random_depthwise_tile(cfg, rng, kh=3, kw=3, stride=2), random_depthwise_tile(cfg, rng, kh=1, kw=1,
                                                                                          stride=2),
             random_depthwise_tile(cfg, rng, kh=5, kw=5, stride=2, pad=2), random_tile(cfg, rng, k=2)]
    for tile, (out, cycles), want in zip(tiles, simulate(cfg, tiles, rng, stall), expected(cfg, tiles)):
        np.testing.assert_array_equal(out, want)
        if stall:
            assert cycles >= expected_cycles(cfg, tile)
        else:
            assert cycles == expected_cycles(cfg, tile)

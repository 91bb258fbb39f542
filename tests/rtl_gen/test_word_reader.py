"""WordReader on a real Buffer in Amaranth's simulator: consecutive words, none lost to backpressure, one a cycle."""

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module
from amaranth.sim import Simulator

from rtl_gen.buffer import Buffer
from rtl_gen.word_reader import WordReader

SIZE = 512


class Bench(Elaboratable):
    """A `Buffer` whose read port is the reader's; the testbench fills it through the write port."""

    def __init__(self, word_bytes):
        self.buffer = Buffer(SIZE, word_bytes, word_bytes)
        self.reader = WordReader((SIZE - 1).bit_length(), word_bytes)

    def elaborate(self, platform):
        m = Module()
        m.submodules.buffer, m.submodules.reader = self.buffer, self.reader
        m.d.comb += [self.buffer.r_addr.eq(self.reader.r_addr), self.buffer.r_en.eq(self.reader.r_en),
                     self.reader.r_data.eq(self.buffer.r_data)]
        return m


def stream(word_bytes, data, reads, ready_rng=None):
    """Fill the buffer with ``data``, then for each (addr, count) start the reader and take its words (``ready``
    random with ``ready_rng``); returns per read the words, the cycle (after start) each was taken in, and whether
    ``busy`` fell right after the last."""
    top = Bench(word_bytes)
    buffer, reader = top.buffer, top.reader
    results = []

    async def bench(ctx):
        ctx.set(buffer.w_en, 1)
        for addr in range(0, SIZE, word_bytes):
            ctx.set(buffer.w_addr, addr)
            ctx.set(buffer.w_data, int.from_bytes(data[addr:addr + word_bytes], "little"))
            await ctx.tick()
        ctx.set(buffer.w_en, 0)
        for addr, count in reads:
            assert not ctx.get(reader.busy)
            ctx.set(reader.addr, addr)
            ctx.set(reader.count, count)
            ctx.set(reader.start, 1)
            await ctx.tick()
            ctx.set(reader.start, 0)
            words, taken, cycle = [], [], 0
            while len(words) < count:
                ctx.set(reader.out.ready, ready_rng is None or ready_rng.random() < 0.5)
                _, _, took, word = await ctx.tick().sample(reader.out.valid & reader.out.ready,
                                                           reader.out.payload)
                cycle += 1
                if took:
                    words.append(word)
                    taken.append(cycle)
                assert cycle < 20 * count + 20, "the reader stopped"
            ctx.set(reader.out.ready, 0)
            results.append((words, taken, ctx.get(reader.busy)))
            for _ in range(3):                       # nothing more comes out
                assert not ctx.get(reader.out.valid)
                await ctx.tick()

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return results


def expected_words(data, word_bytes, addr, count):
    return [int.from_bytes(data[a:a + word_bytes], "little") for a in range(addr, addr + count * word_bytes,
                                                                            word_bytes)]


@pytest.mark.parametrize("word_bytes", [1, 4, 16])
def test_consecutive_words_at_one_per_cycle(word_bytes):
    data = np.random.default_rng(word_bytes).integers(0, 256, SIZE, dtype=np.uint8).tobytes()
    reads = [(0, 1), (3 * word_bytes, 9), (SIZE - 20 * word_bytes, 20)]
    for (addr, count), (words, taken, busy) in zip(reads, stream(word_bytes, data, reads), strict=True):
        assert words == expected_words(data, word_bytes, addr, count)
        # the buffer's read cycle and the FIFO's, then one word every cycle
        assert taken[0] <= 3 and taken == list(range(taken[0], taken[0] + count))
        assert not busy


def test_backpressure_loses_no_word():
    data = np.random.default_rng(5).integers(0, 256, SIZE, dtype=np.uint8).tobytes()
    reads = [(8, 40), (0, 7)]
    for (addr, count), (words, _, busy) in zip(reads, stream(4, data, reads, np.random.default_rng(2)), strict=True):
        assert words == expected_words(data, 4, addr, count)
        assert not busy

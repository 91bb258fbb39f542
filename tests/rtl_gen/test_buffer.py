"""Buffer in Amaranth's simulator: bytes written through one port width read back identically through the other."""

import numpy as np
import pytest
from amaranth.back import rtlil
from amaranth.sim import Simulator

from rtl_gen.buffer import Buffer


def round_trip(size, write_bytes, read_bytes, data: bytes, read_order):
    """Write ``data`` (``size`` bytes) a word at a time, then read the words at ``read_order`` (byte addresses);
    returns the words read, one cycle after each ``r_en``."""
    dut = Buffer(size, write_bytes, read_bytes)
    words = []

    async def bench(ctx):
        ctx.set(dut.w_en, 1)
        for addr in range(0, size, write_bytes):
            ctx.set(dut.w_addr, addr)
            ctx.set(dut.w_data, int.from_bytes(data[addr:addr + write_bytes], "little"))
            await ctx.tick()
        ctx.set(dut.w_en, 0)
        for addr in read_order:
            ctx.set(dut.r_addr, addr)
            ctx.set(dut.r_en, 1)
            await ctx.tick()
            words.append(ctx.get(dut.r_data))
        ctx.set(dut.r_en, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return words


@pytest.mark.parametrize("write_bytes, read_bytes", [(8, 2), (16, 1), (2, 8), (1, 4), (4, 4)])
def test_bytes_round_trip_between_port_widths(write_bytes, read_bytes):
    size = 256
    rng = np.random.default_rng(write_bytes * 10 + read_bytes)
    data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    order = [int(a) for a in rng.permutation(np.arange(0, size, read_bytes))]
    words = round_trip(size, write_bytes, read_bytes, data, order)
    assert words == [int.from_bytes(data[a:a + read_bytes], "little") for a in order]


def test_a_narrow_write_changes_only_its_own_lane():
    """Fill the buffer 2 bytes at a time, then overwrite one 2-byte lane: the other lanes of its 8-byte memory word
    keep their bytes (byte-lane write enables, no read-modify-write)."""
    dut = Buffer(64, 2, 8)
    seen = []

    async def bench(ctx):
        ctx.set(dut.w_en, 1)
        for addr in range(0, 64, 2):
            ctx.set(dut.w_addr, addr)
            ctx.set(dut.w_data, 0x1111 * (addr // 2 % 15 + 1))
            await ctx.tick()
        ctx.set(dut.w_addr, 8 + 4)                     # the third lane of the second wide word
        ctx.set(dut.w_data, 0xBEEF)
        await ctx.tick()
        ctx.set(dut.w_en, 0)
        for addr in (0, 8, 16):
            ctx.set(dut.r_addr, addr)
            ctx.set(dut.r_en, 1)
            await ctx.tick()
            seen.append(ctx.get(dut.r_data))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    lanes = [0x1111 * (i % 15 + 1) for i in range(32)]

    def word(index, lane_values):
        return sum(v << (16 * i) for i, v in enumerate(lane_values[4 * index:4 * index + 4]))

    changed = list(lanes)
    changed[6] = 0xBEEF
    assert seen == [word(0, lanes), word(1, changed), word(2, lanes)]


def test_ports_have_the_documented_widths():
    dut = Buffer(4096, 16, 2)
    assert (len(dut.w_data), len(dut.r_data)) == (128, 16)
    assert len(dut.w_addr) == len(dut.r_addr) == 12
    assert "memory" in rtlil.convert(dut, name="buffer")       # one memory, elaborated without error

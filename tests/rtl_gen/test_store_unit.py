"""StoreUnit on a real output Buffer: a STORE's row requests and beats under backpressure, then its token."""

import numpy as np
from amaranth.hdl import Elaboratable, Module
from amaranth.sim import Simulator

from codesign.hw import isa
from codesign.hw.isa import Dma, Opcode
from rtl_gen.buffer import Buffer
from rtl_gen.store_unit import StoreUnit

BUS = 8
SIZE = 256


class Bench(Elaboratable):
    def __init__(self):
        self.buffer = Buffer(SIZE, 2, BUS)            # written by rows of the array, read a bus beat at a time
        self.store = StoreUnit(BUS, (SIZE - 1).bit_length())

    def elaborate(self, platform):
        m = Module()
        m.submodules.buffer, m.submodules.store = self.buffer, self.store
        m.d.comb += [self.buffer.r_addr.eq(self.store.r_addr), self.buffer.r_en.eq(self.store.r_en),
                     self.store.r_data.eq(self.buffer.r_data)]
        return m


def test_one_store_command():
    data = np.random.default_rng(0).integers(0, 256, SIZE, dtype=np.uint8).tobytes()
    command = Dma(opcode=Opcode.STORE, dram_addr=0x9000, buf_addr=0x20, rows=3, row_bytes=2 * BUS,
                  dram_stride=0x100, pop_prev=True, push_prev=True)
    top = Bench()
    buffer, dut = top.buffer, top.store
    rng = np.random.default_rng(1)
    out = {"requests": [], "beats": [], "pops": 0, "pushes": 0}

    async def bench(ctx):
        ctx.set(buffer.w_en, 1)
        for addr in range(0, SIZE, 2):
            ctx.set(buffer.w_addr, addr)
            ctx.set(buffer.w_data, int.from_bytes(data[addr:addr + 2], "little"))
            await ctx.tick()
        ctx.set(buffer.w_en, 0)
        ctx.set(dut.cmd.payload, isa.encode(command))
        ctx.set(dut.cmd.valid, 1)
        await ctx.tick()
        ctx.set(dut.cmd.valid, 0)
        ctx.set(dut.prev_available, 1)
        for _ in range(80):
            ctx.set(dut.wr_req.ready, rng.random() < 0.5)
            ctx.set(dut.wr_data.ready, rng.random() < 0.5)
            _, _, req, addr, beats, beat, word, pop, push = await ctx.tick().sample(
                dut.wr_req.valid & dut.wr_req.ready, dut.wr_req.payload.addr, dut.wr_req.payload.beats,
                dut.wr_data.valid & dut.wr_data.ready, dut.wr_data.payload, dut.pop_prev, dut.push_prev)
            if pop:
                out["pops"] += 1
                ctx.set(dut.prev_available, 0)
            out["pushes"] += push
            if req:
                out["requests"].append((addr, beats))
            if beat:
                out["beats"].append(word)
        out["idle"] = ctx.get(dut.idle)

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert out["requests"] == [(0x9000 + i * 0x100, 2) for i in range(3)]
    assert out["beats"] == [int.from_bytes(data[a:a + BUS], "little") for a in range(0x20, 0x20 + 6 * BUS, BUS)]
    assert (out["pops"], out["pushes"], out["idle"]) == (1, 1, 1)

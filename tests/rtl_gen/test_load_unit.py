"""LoadUnit in Amaranth's simulator: a LOAD waits for its token, requests its rows, fills its buffer, sends a token."""

import pytest
from amaranth.sim import Simulator

from codesign.hw import isa
from codesign.hw.isa import Dma, Opcode
from rtl_gen.load_unit import LoadUnit

BUS = 16


@pytest.mark.parametrize("opcode", [Opcode.LOAD_ACT, Opcode.LOAD_WGT, Opcode.LOAD_PARAM])
def test_one_load_command(opcode):
    command = Dma(opcode=opcode, dram_addr=0x8000, buf_addr=0x40, rows=3, row_bytes=2 * BUS, dram_stride=5 * BUS,
                  pop_next=True, push_next=True)
    dut = LoadUnit(BUS, 12)
    out = {"requests": [], "writes": [], "pops": 0, "pushes": 0}

    async def bench(ctx):
        ctx.set(dut.cmd.payload, isa.encode(command))
        ctx.set(dut.cmd.valid, 1)
        _, _, taken = await ctx.tick().sample(dut.cmd.ready)
        assert taken and not ctx.get(dut.idle)
        ctx.set(dut.cmd.valid, 0)
        ctx.set(dut.rd_req.ready, 1)
        for _ in range(5):                       # no token from the compute unit yet: nothing happens
            _, _, req = await ctx.tick().sample(dut.rd_req.valid)
            assert not req
        ctx.set(dut.next_available, 1)
        beats, sent = [], 0
        for _ in range(60):
            ctx.set(dut.rd_data.valid, bool(beats))
            ctx.set(dut.rd_data.payload, beats[0] if beats else 0)
            _, _, req, addr, count, tag, w_addr, w_data, w_act, w_wgt, w_param, pop, push = await ctx.tick().sample(
                dut.rd_req.valid & dut.rd_req.ready, dut.rd_req.payload.addr, dut.rd_req.payload.beats,
                dut.rd_req.payload.tag, dut.w_addr, dut.w_data, dut.w_act, dut.w_wgt, dut.w_param,
                dut.pop_next, dut.push_next)
            if pop:
                out["pops"] += 1
                ctx.set(dut.next_available, 0)
            out["pushes"] += push
            if w_act or w_wgt or w_param:
                out["writes"].append((w_addr, w_data, (w_act, w_wgt, w_param)))
                beats.pop(0)
            if req:
                out["requests"].append((addr, count, tag))
                beats += [0x1000 + sent + i for i in range(count)]
                sent += count
        out["idle"] = ctx.get(dut.idle)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert out["requests"] == [(0x8000 + i * 5 * BUS, 2, 0) for i in range(3)]
    enables = tuple(int(opcode == o) for o in isa.LOADS)
    assert out["writes"] == [(0x40 + i * BUS, 0x1000 + i, enables) for i in range(6)]
    assert (out["pops"], out["pushes"], out["idle"]) == (1, 1, 1)

"""Controller in Amaranth's simulator: fetch, in-order dispatch, each bad command stopped with its error and index."""

import pytest
from amaranth.sim import Simulator

from codesign.hw import isa
from codesign.hw.config import HardwareConfig
from codesign.hw.csr import Error
from codesign.hw.isa import Compute, Dma, End, Opcode
from rtl_gen.controller import Controller

SMALL = dict(act_buf_bytes=1024, wgt_buf_bytes=1024, out_buf_bytes=512, param_buf_bytes=256)
PROG_ADDR = 0x2000


def run(cfg, blob: bytes, prog_len: int, *, prog_addr: int = PROG_ADDR, max_cycles: int = 600):
    """Start the controller on ``blob`` at ``prog_addr`` (memory is zero elsewhere), answer its fetches, take every
    dispatched command (all units ready and quiet), until DONE."""
    dut = Controller(cfg)
    bus = cfg.axi_data_bits // 8
    memory = {prog_addr + i: b for i, b in enumerate(blob)}
    out = {"requests": [], "load": [], "compute": [], "store": []}

    async def bench(ctx):
        ctx.set(dut.prog_addr, prog_addr)
        ctx.set(dut.prog_len, prog_len)
        ctx.set(dut.units_quiet, 1)
        ctx.set(dut.rd_req.ready, 1)
        for name in ("load", "compute", "store"):
            ctx.set(getattr(dut, f"{name}_cmd").ready, 1)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        beats = []
        for _ in range(max_cycles):
            ctx.set(dut.fetch_data.valid, bool(beats))
            if beats:
                addr = beats[0]
                ctx.set(dut.fetch_data.payload,
                        int.from_bytes(bytes(memory.get(addr + i, 0) for i in range(bus)), "little"))
            _, _, req, req_addr, req_beats, req_tag, beat, *dispatched = await ctx.tick().sample(
                dut.rd_req.valid & dut.rd_req.ready, dut.rd_req.payload.addr, dut.rd_req.payload.beats,
                dut.rd_req.payload.tag, dut.fetch_data.valid & dut.fetch_data.ready,
                *(x for name in ("load", "compute", "store") for x in
                  (getattr(dut, f"{name}_cmd").valid, getattr(dut, f"{name}_cmd").payload)))
            if beat:
                beats.pop(0)
            if req:
                out["requests"].append((req_addr, req_beats, req_tag))
                beats += [req_addr + i * bus for i in range(req_beats)]
            for name, (valid, payload) in zip(("load", "compute", "store"), zip(dispatched[::2], dispatched[1::2])):
                if valid:
                    out[name].append(isa.decode(payload))
            if ctx.get(dut.done):
                break
        out.update(done=ctx.get(dut.done), busy=ctx.get(dut.busy), error=Error(ctx.get(dut.error)),
                   error_pc=ctx.get(dut.error_pc), halt=ctx.get(dut.halt), cycles=ctx.get(dut.cycles))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return out


def good_program(cfg):
    bus = cfg.axi_data_bits // 8
    return [
        Dma(opcode=Opcode.LOAD_ACT, dram_addr=0x10000, rows=2, row_bytes=2 * bus, dram_stride=4 * bus),
        Dma(opcode=Opcode.LOAD_WGT, dram_addr=0x20000, rows=1, row_bytes=bus),
        Dma(opcode=Opcode.LOAD_PARAM, dram_addr=0x30000, rows=1, row_bytes=bus, push_next=True),
        Compute(k=3, pop_prev=True, push_next=True),
        Dma(opcode=Opcode.STORE, dram_addr=0x40000, rows=1, row_bytes=bus, pop_prev=True),
        End(),
    ]


@pytest.mark.parametrize("bus_bits", [64, 128, 256])
def test_a_program_is_fetched_and_dispatched_in_order(bus_bits):
    cfg = HardwareConfig(rows=2, cols=2, axi_data_bits=bus_bits, **SMALL)
    program = good_program(cfg)
    out = run(cfg, isa.assemble(program), len(program))
    assert out["done"] and not out["busy"] and out["error"] == Error.NONE and not out["halt"]
    assert out["load"] == program[:3] and out["compute"] == [program[3]] and out["store"] == [program[4]]
    # fetched from PROG_ADDR, tagged as the program's, PROG_LEN commands in all
    assert out["requests"][0][0] == PROG_ADDR and all(tag == 1 for _, _, tag in out["requests"])
    assert sum(beats for _, beats, _ in out["requests"]) * (bus_bits // 8) == len(program) * isa.COMMAND_BYTES
    assert out["cycles"] > 0


def test_an_illegal_opcode_stops_the_program_at_its_index():
    cfg = HardwareConfig(rows=2, cols=2, axi_data_bits=64, **SMALL)
    first = good_program(cfg)[0]
    blob = isa.assemble([first]) + bytes([0x0F]) + bytes(15) + isa.assemble([End()])
    out = run(cfg, blob, 3)
    assert out["done"] and not out["busy"] and out["halt"]
    assert (out["error"], out["error_pc"]) == (Error.ILLEGAL_OPCODE, 1)
    assert out["load"] == [first] and out["compute"] == out["store"] == []


def test_zeroed_memory_is_an_illegal_opcode():
    cfg = HardwareConfig(rows=2, cols=2, axi_data_bits=128, **SMALL)
    out = run(cfg, b"", 4)
    assert (out["error"], out["error_pc"]) == (Error.ILLEGAL_OPCODE, 0) and out["done"]


@pytest.mark.parametrize("command, error", [
    (Dma(opcode=Opcode.LOAD_ACT, rows=1, row_bytes=16, pop_prev=True), Error.BAD_FIELD),     # a LOAD has no prev
    (Dma(opcode=Opcode.STORE, rows=1, row_bytes=16, push_next=True), Error.BAD_FIELD),       # a STORE has no next
    (Dma(opcode=Opcode.LOAD_WGT, rows=0, row_bytes=16), Error.BAD_FIELD),
    (Compute(k=0), Error.BAD_FIELD),
    (Compute(k=1, out_bits=9), Error.BAD_FIELD),
    (Dma(opcode=Opcode.LOAD_WGT, dram_addr=8, rows=1, row_bytes=16), Error.ALIGNMENT),
    (Dma(opcode=Opcode.LOAD_WGT, rows=2, row_bytes=16, dram_stride=24), Error.ALIGNMENT),
    (Dma(opcode=Opcode.LOAD_PARAM, buf_addr=240, rows=1, row_bytes=32), Error.BUFFER_RANGE),
    (Compute(k=600), Error.BUFFER_RANGE),
])
def test_a_bad_command_is_refused_with_its_error(command, error):
    cfg = HardwareConfig(rows=2, cols=2, axi_data_bits=128, **SMALL)
    program = [good_program(cfg)[0], command, End()]
    out = run(cfg, isa.assemble(program), len(program))
    assert (out["error"], out["error_pc"]) == (error, 1) and out["done"]
    assert out["load"] == [program[0]] and out["compute"] == [] and out["store"] == []


def test_a_program_without_end_overruns():
    cfg = HardwareConfig(rows=2, cols=2, axi_data_bits=128, **SMALL)
    program = good_program(cfg)[:2]
    out = run(cfg, isa.assemble(program), len(program))
    assert (out["error"], out["error_pc"]) == (Error.PROGRAM_OVERRUN, 2) and out["done"]
    assert out["load"] == program


def test_a_misaligned_program_address_fetches_nothing():
    cfg = HardwareConfig(rows=2, cols=2, axi_data_bits=128, **SMALL)
    out = run(cfg, isa.assemble([End()]), 1, prog_addr=PROG_ADDR + 8)
    assert (out["error"], out["done"], out["requests"]) == (Error.ALIGNMENT, 1, [])

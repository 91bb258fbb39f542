"""The whole Accelerator in Amaranth's simulator: registers over s_axil, a program fetched over m_axi, irq, errors."""

from amaranth.sim import Simulator

from codesign.hw import csr, isa
from codesign.hw.config import HardwareConfig
from codesign.hw.csr import Control, Error, Status
from codesign.hw.isa import End
from rtl_gen.accelerator import Accelerator

CFG = HardwareConfig(rows=2, cols=2, digit_bits=2, axi_data_bits=128, act_buf_bytes=256, wgt_buf_bytes=256,
                     out_buf_bytes=256, param_buf_bytes=256)
PROGRAMS = {0x1000: isa.assemble([End()]), 0x2000: bytes([0x0F]) + bytes(15) + isa.assemble([End()])}


def test_registers_programs_and_interrupt():
    dut = Accelerator(CFG)
    bus = CFG.axi_data_bits // 8
    memory = {addr + i: b for addr, blob in PROGRAMS.items() for i, b in enumerate(blob)}
    seen = {}

    async def dram(ctx):
        """Reads only (these programs store nothing): one burst at a time, one beat per cycle."""
        axi = dut.m_axi
        ctx.set(axi.arready, 1)
        bursts, beat = [], 0
        while True:
            if bursts:
                addr = bursts[0][0] + beat * bus
                ctx.set(axi.rdata, int.from_bytes(bytes(memory.get(addr + i, 0) for i in range(bus)), "little"))
                ctx.set(axi.rlast, beat == bursts[0][1] - 1)
            ctx.set(axi.rvalid, bool(bursts))
            _, _, ar, araddr, arlen, r = await ctx.tick().sample(axi.arvalid & axi.arready, axi.araddr, axi.arlen,
                                                                 axi.rvalid & axi.rready)
            if r:
                beat += 1
                if beat == bursts[0][1]:
                    bursts.pop(0)
                    beat = 0
            if ar:
                bursts.append((araddr, arlen + 1))

    async def host(ctx):
        bus_l = dut.s_axil

        async def write(name, value):
            ctx.set(bus_l.awaddr, csr.OFFSETS[name])
            ctx.set(bus_l.wdata, int(value))
            ctx.set(bus_l.awvalid, 1)
            ctx.set(bus_l.wvalid, 1)
            ctx.set(bus_l.bready, 1)
            await ctx.tick().until(bus_l.awready)
            ctx.set(bus_l.awvalid, 0)
            ctx.set(bus_l.wvalid, 0)
            await ctx.tick().until(bus_l.bvalid)

        async def read(name):
            ctx.set(bus_l.araddr, csr.OFFSETS[name])
            ctx.set(bus_l.arvalid, 1)
            ctx.set(bus_l.rready, 1)
            await ctx.tick().until(bus_l.arready)
            ctx.set(bus_l.arvalid, 0)
            (data,) = await ctx.tick().sample(bus_l.rdata).until(bus_l.rvalid)
            return data

        async def run(addr, length):
            await write("PROG_ADDR", addr)
            await write("PROG_LEN", length)
            await write("CONTROL", Control.START)
            cycles = 0
            while not ctx.get(dut.irq) and cycles < 300:
                await ctx.tick()
                cycles += 1
            return cycles, await read("STATUS"), await read("ERROR_PC")

        seen["id"] = await read("ID")
        seen["rows"] = await read("CFG_ROWS")
        seen["irq_idle"] = ctx.get(dut.irq)
        seen["end"] = await run(0x1000, 1)
        seen["counters"] = (await read("CYCLES_LO"), await read("BYTES_READ_LO"))
        seen["illegal"] = await run(0x2000, 2)
        await write("CONTROL", Control.SOFT_RESET)
        await ctx.tick()
        seen["after_reset"] = (await read("STATUS"), ctx.get(dut.irq), await read("PROG_ADDR"))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(dram, background=True)
    sim.add_testbench(host)
    sim.run()

    assert (seen["id"], seen["rows"], seen["irq_idle"]) == (csr.ID_VALUE, CFG.rows, 0)
    cycles, status, _ = seen["end"]
    assert cycles < 300 and status == Status.DONE                # done, no error, not busy
    cycles_counted, bytes_read = seen["counters"]
    assert cycles_counted > 0 and bytes_read == isa.COMMAND_BYTES
    cycles, status, error_pc = seen["illegal"]
    assert cycles < 300 and status == Status.DONE | Error.ILLEGAL_OPCODE << csr.ERROR_SHIFT and error_pc == 0
    # SOFT_RESET clears the core's status and the interrupt; the registers (PROG_ADDR) keep their values
    assert seen["after_reset"] == (0, 0, 0x2000)

"""CsrBank in Amaranth's simulator: the register map of `codesign.hw.csr` read and written over AXI4-Lite."""

from amaranth.sim import Simulator

from codesign.hw import csr
from codesign.hw.config import HardwareConfig
from codesign.hw.csr import COUNTERS, Control, Error
from rtl_gen.csr_bank import CsrBank

CFG = HardwareConfig(rows=3, cols=5, digit_bits=4, axi_data_bits=128, act_buf_bytes=2048, param_buf_bytes=512)


class Master:
    """An AXI4-Lite manager for one testbench: one read or write at a time, with the pulses seen meanwhile."""

    def __init__(self, ctx, bus, dut):
        self.ctx, self.bus, self.dut = ctx, bus, dut
        self.pulses = []

    async def write(self, offset: int, value: int) -> int:
        ctx, bus = self.ctx, self.bus
        ctx.set(bus.awaddr, offset)
        ctx.set(bus.wdata, value)
        ctx.set(bus.wstrb, 0xF)
        ctx.set(bus.awvalid, 1)
        ctx.set(bus.wvalid, 1)
        ctx.set(bus.bready, 1)
        while True:
            _, _, accepted, start, reset = await ctx.tick().sample(bus.awready & bus.wready, self.dut.start,
                                                                    self.dut.soft_reset)
            self.pulses.append((start, reset))
            if accepted:
                break
        ctx.set(bus.awvalid, 0)
        ctx.set(bus.wvalid, 0)
        while True:
            _, _, done, resp, start, reset = await ctx.tick().sample(bus.bvalid, bus.bresp, self.dut.start,
                                                                      self.dut.soft_reset)
            self.pulses.append((start, reset))
            if done:
                return resp

    async def read(self, offset: int) -> int:
        ctx, bus = self.ctx, self.bus
        ctx.set(bus.araddr, offset)
        ctx.set(bus.arvalid, 1)
        ctx.set(bus.rready, 1)
        while True:
            _, _, accepted = await ctx.tick().sample(bus.arready)
            if accepted:
                break
        ctx.set(bus.arvalid, 0)
        while True:
            _, _, valid, data, resp = await ctx.tick().sample(bus.rvalid, bus.rdata, bus.rresp)
            if valid:
                assert resp == 0
                return data


def run(bench):
    dut = CsrBank(CFG)
    sim = Simulator(dut)
    sim.add_clock(1e-8)

    async def testbench(ctx):
        await bench(ctx, dut, Master(ctx, dut.s_axil, dut))

    sim.add_testbench(testbench)
    sim.run()


def test_identity_and_configuration_registers():
    seen = {}

    async def bench(ctx, dut, master):
        for name in ("ID", "VERSION", *csr.config_values(CFG)):
            seen[name] = await master.read(csr.OFFSETS[name])
        seen["unmapped"] = await master.read(0x3C)

    run(bench)
    assert seen.pop("ID") == csr.ID_VALUE and seen.pop("VERSION") == csr.VERSION
    assert seen.pop("unmapped") == 0
    assert seen == csr.config_values(CFG)
    assert seen["CFG_ROWS"] == 3 and seen["CFG_AXI_DATA_BITS"] == 128 and seen["CFG_PARAM_BUF_BYTES"] == 512


def test_read_write_registers_and_ignored_writes():
    seen = {}

    async def bench(ctx, dut, master):
        assert await master.write(csr.OFFSETS["PROG_ADDR"], 0x0040_1230) == 0
        assert await master.write(csr.OFFSETS["PROG_LEN"], 77) == 0
        assert await master.write(csr.OFFSETS["ID"], 0x1234) == 0             # read-only: ignored, still OKAY
        assert await master.write(0xF8, 5) == 0                                # unmapped: ignored
        seen["outputs"] = (ctx.get(dut.prog_addr), ctx.get(dut.prog_len))
        for name in ("PROG_ADDR", "PROG_LEN", "ID"):
            seen[name] = await master.read(csr.OFFSETS[name])
        seen["pulses"] = list(master.pulses)

    run(bench)
    assert seen["outputs"] == (0x0040_1230, 77)
    assert (seen["PROG_ADDR"], seen["PROG_LEN"], seen["ID"]) == (0x0040_1230, 77, csr.ID_VALUE)
    assert not any(start or reset for start, reset in seen["pulses"])


def test_control_bits_are_one_cycle_pulses():
    seen = {}

    async def bench(ctx, dut, master):
        await master.write(csr.OFFSETS["CONTROL"], Control.START)
        seen["start"] = list(master.pulses)
        master.pulses.clear()
        await master.write(csr.OFFSETS["CONTROL"], Control.SOFT_RESET)
        seen["reset"] = list(master.pulses)
        for _ in range(3):
            assert not ctx.get(dut.start) and not ctx.get(dut.soft_reset)
            await ctx.tick()

    run(bench)
    assert seen["start"].count((1, 0)) == 1 and set(seen["start"]) == {(1, 0), (0, 0)}
    assert seen["reset"].count((0, 1)) == 1 and set(seen["reset"]) == {(0, 1), (0, 0)}


def test_status_error_pc_and_counters():
    seen = {}
    first = (0xABCD << 32) | 0x1234_5678

    async def bench(ctx, dut, master):
        ctx.set(dut.busy, 1)
        ctx.set(dut.error, Error.BUFFER_RANGE)
        ctx.set(dut.error_pc, 41)
        seen["busy"] = await master.read(csr.OFFSETS["STATUS"])
        ctx.set(dut.busy, 0)
        ctx.set(dut.done, 1)
        seen["done"] = await master.read(csr.OFFSETS["STATUS"])
        seen["ERROR_PC"] = await master.read(csr.OFFSETS["ERROR_PC"])
        for i, name in enumerate(COUNTERS):
            ctx.set(getattr(dut, name), first + i)
        low = await master.read(csr.OFFSETS["CYCLES_LO"])
        ctx.set(dut.cycles, (0x7777 << 32) | 5)              # the counter runs on between the two reads
        seen["cycles"] = (low, await master.read(csr.OFFSETS["CYCLES_HI"]))
        for name in COUNTERS[1:]:
            low = await master.read(csr.OFFSETS[f"{name.upper()}_LO"])
            seen[name] = low | await master.read(csr.OFFSETS[f"{name.upper()}_HI"]) << 32
        seen["width"] = len(dut.cycles)

    run(bench)
    assert seen["busy"] == 1 | (Error.BUFFER_RANGE << csr.ERROR_SHIFT)
    assert seen["done"] == 2 | (Error.BUFFER_RANGE << csr.ERROR_SHIFT)
    assert seen["ERROR_PC"] == 41
    assert seen["cycles"] == (0x1234_5678, 0xABCD)          # _HI latched when _LO was read
    for i, name in enumerate(COUNTERS[1:], start=1):
        assert seen[name] == first + i
    assert seen["width"] > 32

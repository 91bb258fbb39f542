"""`CsrBank`: the AXI4-Lite register file of `codesign.hw.csr` (offsets, fields and meaning are defined there)."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from codesign.hw import csr
from codesign.hw.config import HardwareConfig
from codesign.hw.csr import COUNTER_BITS, COUNTERS
from rtl_gen.axi import RESP_OKAY, AxiLiteSignature


class CsrBank(wiring.Component):
    """An AXI4-Lite subordinate with one outstanding read and one outstanding write. Writes to read-only registers
    and unmapped offsets are ignored (OKAY); unmapped reads return 0.

    Ports
        s_axil       In   `AxiLiteSignature`
        start, soft_reset   Out  one-cycle pulses from CONTROL
        prog_addr, prog_len Out
        busy, done, error, error_pc   In   status
        cycles, compute_cycles, ...   In   the counters (`codesign.hw.csr.COUNTERS`)
    """

    def __init__(self, cfg: HardwareConfig):
        self.cfg = cfg
        super().__init__({
            "s_axil": In(AxiLiteSignature(csr.ADDR_BITS)),
            "start": Out(1), "soft_reset": Out(1), "prog_addr": Out(32), "prog_len": Out(32),
            "busy": In(1), "done": In(1), "error": In(8), "error_pc": In(32),
            **{name: In(COUNTER_BITS) for name in COUNTERS},
        })

    def elaborate(self, platform):
        m = Module()
        bus = self.s_axil
        offsets = csr.OFFSETS

        # ---- writes: address and data accepted together, then one response
        write = bus.awvalid & bus.wvalid & ~bus.bvalid
        m.d.comb += [bus.awready.eq(write), bus.wready.eq(write), bus.bresp.eq(RESP_OKAY)]
        with m.If(write):
            m.d.sync += bus.bvalid.eq(1)
            with m.Switch(bus.awaddr):
                with m.Case(offsets["CONTROL"]):
                    m.d.comb += [self.start.eq(bus.wdata[0]), self.soft_reset.eq(bus.wdata[1])]
                with m.Case(offsets["PROG_ADDR"]):
                    m.d.sync += self.prog_addr.eq(bus.wdata)
                with m.Case(offsets["PROG_LEN"]):
                    m.d.sync += self.prog_len.eq(bus.wdata)
        with m.If(bus.bvalid & bus.bready):
            m.d.sync += bus.bvalid.eq(0)

        # ---- reads: one register per request; reading a counter's _LO word latches its _HI word
        values = {
            "ID": csr.ID_VALUE, "VERSION": csr.VERSION,
            "STATUS": self.busy | (self.done << 1) | (self.error << csr.ERROR_SHIFT),
            "PROG_ADDR": self.prog_addr, "PROG_LEN": self.prog_len, "ERROR_PC": self.error_pc,
            **csr.config_values(self.cfg),
        }
        high_words = {}
        for name in COUNTERS:
            counter = getattr(self, name)
            high_words[name] = Signal(32, name=f"{name}_hi")
            values[f"{name.upper()}_LO"] = counter[:32]
            values[f"{name.upper()}_HI"] = high_words[name]
        read = bus.arvalid & ~bus.rvalid
        m.d.comb += [bus.arready.eq(read), bus.rresp.eq(RESP_OKAY)]
        with m.If(read):
            m.d.sync += bus.rvalid.eq(1)
            with m.Switch(bus.araddr):
                for name, value in values.items():
                    with m.Case(offsets[name]):
                        m.d.sync += bus.rdata.eq(value)
                        if name.endswith("_LO"):
                            counter = name[:-3].lower()
                            m.d.sync += high_words[counter].eq(getattr(self, counter)[32:])
                with m.Default():               # an unmapped offset reads 0
                    m.d.sync += bus.rdata.eq(0)
        with m.If(bus.rvalid & bus.rready):
            m.d.sync += bus.rvalid.eq(0)
        return m

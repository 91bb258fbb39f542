"""`Accelerator`: the complete IP. Registers on AXI4-Lite, memory on AXI4, everything else inside.

    s_axil --> CsrBank --start--> Controller --fetch--> Dma <--> m_axi
                                      | dispatch           ^
                          LoadUnit ---+--- ComputeUnit ---+--- StoreUnit
                             |  act/wgt/param     |   out     |
                             +----> Buffers ------+---> Buffer +
"""

from amaranth.hdl import Module, ResetInserter
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from codesign.hw import csr, isa
from codesign.hw.config import HardwareConfig
from codesign.hw.csr import COUNTER_BITS, COUNTERS
from rtl_gen.axi import AxiLiteSignature, AxiSignature
from rtl_gen.buffer import Buffer
from rtl_gen.compute_unit import ComputeUnit, act_port_bytes
from rtl_gen.controller import Controller
from rtl_gen.csr_bank import CsrBank
from rtl_gen.dependency import TokenQueue
from rtl_gen.dma import Dma
from rtl_gen.load_unit import LoadUnit
from rtl_gen.store_unit import StoreUnit


class Core(wiring.Component):
    """Everything below the registers: the part that SOFT_RESET resets."""

    def __init__(self, cfg: HardwareConfig):
        self.cfg = cfg
        super().__init__({
            "m_axi": Out(AxiSignature(cfg.axi_data_bits)),
            "start": In(1), "prog_addr": In(32), "prog_len": In(32),
            "busy": Out(1), "done": Out(1), "error": Out(8), "error_pc": Out(32),
            **{name: Out(COUNTER_BITS) for name in COUNTERS},
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        words = isa.word_bytes(cfg)
        bus = words.bus

        m.submodules.dma = dma = Dma(cfg.axi_data_bits)
        m.submodules.controller = ctrl = Controller(cfg)
        m.submodules.load = load = LoadUnit(bus, (max(cfg.act_buf_bytes, cfg.wgt_buf_bytes,
                                                      cfg.param_buf_bytes) - 1).bit_length())
        m.submodules.compute = compute = ComputeUnit(cfg)
        m.submodules.store = store = StoreUnit(bus, (cfg.out_buf_bytes - 1).bit_length())
        buffers = {
            "act": Buffer(cfg.act_buf_bytes, bus, act_port_bytes(cfg)),
            "wgt": Buffer(cfg.wgt_buf_bytes, bus, words.wgt),
            "param": Buffer(cfg.param_buf_bytes, bus, words.param),
            "out": Buffer(cfg.out_buf_bytes, words.out, bus),
        }
        for name, buffer in buffers.items():
            m.submodules[f"{name}_buf"] = buffer
        wiring.connect(m, wiring.flipped(self.m_axi), dma.axi)

        # ---- registers <-> controller
        for name in ("start", "prog_addr", "prog_len"):
            m.d.comb += getattr(ctrl, name).eq(getattr(self, name))
        for name in ("busy", "done", "error", "error_pc", *COUNTERS):
            m.d.comb += getattr(self, name).eq(getattr(ctrl, name))

        # ---- read channel: program fetch first (it never stalls the data), then loads; beats routed by tag
        fetch = ctrl.rd_req.valid
        m.d.comb += [
            dma.rd_req.valid.eq(ctrl.rd_req.valid | load.rd_req.valid),
        ]
        with m.If(fetch):
            m.d.comb += [dma.rd_req.payload.eq(ctrl.rd_req.payload), ctrl.rd_req.ready.eq(dma.rd_req.ready)]
        with m.Else():
            m.d.comb += [dma.rd_req.payload.eq(load.rd_req.payload), load.rd_req.ready.eq(dma.rd_req.ready)]
        to_fetch = dma.rd_data.payload.tag
        m.d.comb += [
            ctrl.fetch_data.payload.eq(dma.rd_data.payload.data), load.rd_data.payload.eq(dma.rd_data.payload.data),
            ctrl.fetch_data.valid.eq(dma.rd_data.valid & to_fetch),
            load.rd_data.valid.eq(dma.rd_data.valid & ~to_fetch),
        ]
        with m.If(to_fetch):
            m.d.comb += dma.rd_data.ready.eq(ctrl.fetch_data.ready)
        with m.Else():
            m.d.comb += dma.rd_data.ready.eq(load.rd_data.ready)
        wiring.connect(m, store.wr_req, dma.wr_req)
        wiring.connect(m, store.wr_data, dma.wr_data)

        # ---- command queues, dependency tokens, halt
        wiring.connect(m, ctrl.load_cmd, load.cmd)
        wiring.connect(m, ctrl.compute_cmd, compute.cmd)
        wiring.connect(m, ctrl.store_cmd, store.cmd)
        tokens = {name: TokenQueue() for name in ("load_to_compute", "compute_to_load", "compute_to_store",
                                                   "store_to_compute")}
        for name, queue in tokens.items():
            m.submodules[name] = queue

        def link(sender, push, receiver, pop, available, queue):
            m.d.comb += [queue.push.eq(getattr(sender, push)), queue.pop.eq(getattr(receiver, pop)),
                         getattr(receiver, available).eq(queue.available)]

        link(load, "push_next", compute, "pop_prev", "prev_available", tokens["load_to_compute"])
        link(compute, "push_prev", load, "pop_next", "next_available", tokens["compute_to_load"])
        link(compute, "push_next", store, "pop_prev", "prev_available", tokens["compute_to_store"])
        link(store, "push_prev", compute, "pop_next", "next_available", tokens["store_to_compute"])
        for unit in (load, compute, store):
            m.d.comb += unit.halt.eq(ctrl.halt)
        m.d.comb += [
            ctrl.unit_error.eq(compute.error),
            ctrl.read_error.eq(dma.rd_data.valid & dma.rd_data.ready & dma.rd_data.payload.error),
            ctrl.write_error.eq(dma.wr_error),
            ctrl.units_quiet.eq(load.idle & compute.idle & store.idle & dma.rd_idle & dma.wr_idle),
            ctrl.array_busy.eq(compute.array_busy),
            ctrl.stalled.eq(compute.stalled),
            ctrl.rd_beat.eq(self.m_axi.rvalid & self.m_axi.rready),
            ctrl.wr_beat.eq(self.m_axi.wvalid & self.m_axi.wready),
        ]

        # ---- buffers
        act, wgt, param, out = (buffers[n] for n in ("act", "wgt", "param", "out"))
        for buffer, enable in ((act, load.w_act), (wgt, load.w_wgt), (param, load.w_param)):
            m.d.comb += [buffer.w_addr.eq(load.w_addr), buffer.w_data.eq(load.w_data), buffer.w_en.eq(enable)]
        for buffer, prefix in ((act, "act"), (wgt, "wgt"), (param, "param")):
            m.d.comb += [buffer.r_addr.eq(getattr(compute, f"{prefix}_addr")),
                         buffer.r_en.eq(getattr(compute, f"{prefix}_en")),
                         getattr(compute, f"{prefix}_data").eq(buffer.r_data)]
        m.d.comb += [out.w_addr.eq(compute.out_addr), out.w_data.eq(compute.out_data), out.w_en.eq(compute.out_en),
                     out.r_addr.eq(store.r_addr), out.r_en.eq(store.r_en), store.r_data.eq(out.r_data)]
        return m


class Accelerator(wiring.Component):
    """The accelerator IP for one `HardwareConfig`.

    Ports (flattened with ``_``: ``m_axi_araddr``, ``s_axil_wdata``, ...)
        m_axi    Out  AXI4 manager, ``axi_data_bits`` wide, 32-bit addresses: program, operands, results
        s_axil   In   AXI4-Lite subordinate, 32-bit data, 8-bit addresses: the registers of `codesign.hw.csr`
        irq      Out  1   high while STATUS.DONE is set
    """

    port_separator = "_"

    def __init__(self, cfg: HardwareConfig):
        self.cfg = cfg
        super().__init__({
            "m_axi": Out(AxiSignature(cfg.axi_data_bits)),
            "s_axil": In(AxiLiteSignature(csr.ADDR_BITS)),
            "irq": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.csr = regs = CsrBank(self.cfg)
        m.submodules.core = core = ResetInserter(regs.soft_reset)(Core(self.cfg))
        wiring.connect(m, wiring.flipped(self.s_axil), regs.s_axil)
        wiring.connect(m, wiring.flipped(self.m_axi), core.m_axi)
        for name in ("start", "prog_addr", "prog_len"):
            m.d.comb += getattr(core, name).eq(getattr(regs, name))
        for name in ("busy", "done", "error", "error_pc", *COUNTERS):
            m.d.comb += getattr(regs, name).eq(getattr(core, name))
        m.d.comb += self.irq.eq(core.done)
        return m

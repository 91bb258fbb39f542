"""`Dma`: the accelerator's AXI4 manager. Row transfers in, INCR bursts out, on independent read and write sides."""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from rtl_gen.axi import BURST_INCR, RESP_OKAY, AxiSignature

MAX_BURST_BEATS = 256
PAGE_BYTES = 4096            # an AXI burst must not cross a 4 KiB boundary
OUTSTANDING_BURSTS = 4       # bursts issued ahead of their data, per side: hides the memory latency between bursts


def request_layout() -> data.StructLayout:
    return data.StructLayout({"addr": 32, "beats": 16, "tag": 1})


class Dma(wiring.Component):
    """Splits transfers of whole bus beats into bursts of up to 256 beats that stay inside a 4 KiB page.

    Reads: a request names a start address (bus-aligned), a beat count and a tag (whose data it is: the program
    fetch or a load); its beats come back on ``rd_data`` in order, with the tag and an error flag (SLVERR/DECERR).
    Up to ``OUTSTANDING_BURSTS`` read addresses are issued ahead of their data. Writes: a request names the address
    and beat count; the data comes on ``wr_data``; write responses are counted, and ``wr_idle`` says when every
    burst has been acknowledged. Every channel honours valid/ready in both directions, at any memory latency.

    Ports
        axi       Out  `AxiSignature`                      the memory bus
        rd_req    In   stream of {addr, beats, tag}
        rd_data   Out  stream of {data, tag, error}
        wr_req    In   stream of {addr, beats, tag}         (tag unused)
        wr_data   In   stream of data
        rd_idle   Out  1    no read request in progress and no read burst outstanding
        wr_idle   Out  1    no write request in progress and every write burst acknowledged
        wr_error  Out  1    a write response other than OKAY arrived this cycle
    """

    def __init__(self, data_bits: int):
        self.data_bits = data_bits
        super().__init__({
            "axi": Out(AxiSignature(data_bits)),
            "rd_req": In(stream.Signature(request_layout())),
            "rd_data": Out(stream.Signature(data.StructLayout({"data": data_bits, "tag": 1, "error": 1}))),
            "wr_req": In(stream.Signature(request_layout())),
            "wr_data": In(stream.Signature(data_bits)),
            "rd_idle": Out(1),
            "wr_idle": Out(1),
            "wr_error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        axi = self.axi
        beat_shift = (self.data_bits // 8 - 1).bit_length()

        def burst_beats(addr, left):
            """Beats of the next burst: what is left, at most 256, and no further than the end of the page."""
            to_page = Signal(range(PAGE_BYTES // (1 << beat_shift) + 1))
            beats = Signal(range(MAX_BURST_BEATS + 1))
            m.d.comb += to_page.eq((PAGE_BYTES - addr[:12]) >> beat_shift)
            limit = Signal.like(beats)
            m.d.comb += limit.eq(MAX_BURST_BEATS)
            with m.If(to_page < MAX_BURST_BEATS):
                m.d.comb += limit.eq(to_page)
            m.d.comb += beats.eq(limit)
            with m.If(left < limit):
                m.d.comb += beats.eq(left)
            return beats

        # ---- read side: address generator, then the data in order with the tag of its burst
        m.submodules.rd_tags = rd_tags = fifo.SyncFIFO(width=1, depth=OUTSTANDING_BURSTS)
        rd_active = Signal()
        rd_addr = Signal(32)
        rd_left = Signal(16)
        rd_tag = Signal()
        rd_beats = burst_beats(rd_addr, rd_left)
        m.d.comb += self.rd_req.ready.eq(~rd_active)
        with m.If(self.rd_req.valid & ~rd_active):
            m.d.sync += [rd_active.eq(1), rd_addr.eq(self.rd_req.payload.addr), rd_left.eq(self.rd_req.payload.beats),
                         rd_tag.eq(self.rd_req.payload.tag)]
        m.d.comb += [
            axi.arid.eq(0), axi.araddr.eq(rd_addr), axi.arlen.eq(rd_beats - 1), axi.arsize.eq(beat_shift),
            axi.arburst.eq(BURST_INCR),
            axi.arvalid.eq(rd_active & rd_tags.w_rdy),
            rd_tags.w_data.eq(rd_tag),
            rd_tags.w_en.eq(axi.arvalid & axi.arready),
        ]
        with m.If(axi.arvalid & axi.arready):
            m.d.sync += [rd_addr.eq(rd_addr + (rd_beats << beat_shift)), rd_left.eq(rd_left - rd_beats)]
            with m.If(rd_left == rd_beats):
                m.d.sync += rd_active.eq(0)
        m.d.comb += [
            self.rd_data.valid.eq(axi.rvalid),
            self.rd_data.payload.data.eq(axi.rdata),
            self.rd_data.payload.tag.eq(rd_tags.r_data),
            self.rd_data.payload.error.eq(axi.rresp != RESP_OKAY),
            axi.rready.eq(self.rd_data.ready),
            rd_tags.r_en.eq(axi.rvalid & axi.rready & axi.rlast),
            self.rd_idle.eq(~rd_active & ~rd_tags.r_rdy),
        ]

        # ---- write side: addresses run ahead of the data by up to OUTSTANDING_BURSTS bursts
        m.submodules.wr_bursts = wr_bursts = fifo.SyncFIFO(width=9, depth=OUTSTANDING_BURSTS)
        wr_active = Signal()
        wr_addr = Signal(32)
        wr_left = Signal(16)
        wr_beats = burst_beats(wr_addr, wr_left)
        unacknowledged = Signal(8)
        m.d.comb += self.wr_req.ready.eq(~wr_active)
        with m.If(self.wr_req.valid & ~wr_active):
            m.d.sync += [wr_active.eq(1), wr_addr.eq(self.wr_req.payload.addr), wr_left.eq(self.wr_req.payload.beats)]
        aw_done = axi.awvalid & axi.awready
        m.d.comb += [
            axi.awid.eq(0), axi.awaddr.eq(wr_addr), axi.awlen.eq(wr_beats - 1), axi.awsize.eq(beat_shift),
            axi.awburst.eq(BURST_INCR),
            axi.awvalid.eq(wr_active & wr_bursts.w_rdy & (unacknowledged != 255)),
            wr_bursts.w_data.eq(wr_beats),
            wr_bursts.w_en.eq(aw_done),
        ]
        with m.If(aw_done):
            m.d.sync += [wr_addr.eq(wr_addr + (wr_beats << beat_shift)), wr_left.eq(wr_left - wr_beats)]
            with m.If(wr_left == wr_beats):
                m.d.sync += wr_active.eq(0)

        w_beat = Signal(9)
        w_last = w_beat == wr_bursts.r_data - 1
        w_done = axi.wvalid & axi.wready
        m.d.comb += [
            axi.wdata.eq(self.wr_data.payload),
            axi.wstrb.eq(-1),
            axi.wlast.eq(w_last),
            axi.wvalid.eq(wr_bursts.r_rdy & self.wr_data.valid),
            self.wr_data.ready.eq(wr_bursts.r_rdy & axi.wready),
            wr_bursts.r_en.eq(w_done & w_last),
        ]
        with m.If(w_done):
            m.d.sync += w_beat.eq(w_beat + 1)
            with m.If(w_last):
                m.d.sync += w_beat.eq(0)

        b_done = axi.bvalid & axi.bready
        m.d.comb += [
            axi.bready.eq(1),
            self.wr_error.eq(b_done & (axi.bresp != RESP_OKAY)),
            self.wr_idle.eq(~wr_active & ~wr_bursts.r_rdy & (unacknowledged == 0)),
        ]
        with m.If(aw_done & ~b_done):
            m.d.sync += unacknowledged.eq(unacknowledged + 1)
        with m.Elif(b_done & ~aw_done):
            m.d.sync += unacknowledged.eq(unacknowledged - 1)
        return m

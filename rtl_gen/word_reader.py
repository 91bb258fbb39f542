"""`WordReader`: streams consecutive words out of a `Buffer`'s read port at one word per cycle."""

from amaranth.hdl import Module, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

PREFETCH = 4


class WordReader(wiring.Component):
    """Reads ``count`` words of ``word_bytes`` from ``addr`` and hands them on with valid/ready.

    The buffer answers one cycle after a read; a small FIFO takes the answers, and a read is issued only when the
    FIFO has room for it, so backpressure never loses a word and an unstalled consumer gets one word per cycle.

    Ports
        start   In   1        load ``addr`` and ``count`` (only while not ``busy``)
        addr    In   byte address
        count   In   32
        busy    Out  1        words left to read or not yet taken
        out     Out  stream of word_bytes * 8
        r_addr, r_en  Out, r_data In    to the buffer's read port
    """

    def __init__(self, addr_bits: int, word_bytes: int):
        self.word_bytes = word_bytes
        super().__init__({
            "start": In(1), "addr": In(addr_bits), "count": In(32), "busy": Out(1),
            "out": Out(stream.Signature(word_bytes * 8)),
            "r_addr": Out(addr_bits), "r_en": Out(1), "r_data": In(word_bytes * 8),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = words = fifo.SyncFIFO(width=self.word_bytes * 8, depth=PREFETCH)
        left = Signal(32)
        in_flight = Signal()
        issue = (left != 0) & (words.level + in_flight < PREFETCH)
        m.d.comb += [self.r_en.eq(issue), words.w_en.eq(in_flight), words.w_data.eq(self.r_data)]
        m.d.sync += in_flight.eq(issue)
        with m.If(self.start):
            m.d.sync += [self.r_addr.eq(self.addr), left.eq(self.count)]
        with m.Elif(issue):
            m.d.sync += [self.r_addr.eq(self.r_addr + self.word_bytes), left.eq(left - 1)]
        m.d.comb += [
            self.out.valid.eq(words.r_rdy), self.out.payload.eq(words.r_data), words.r_en.eq(self.out.ready),
            self.busy.eq((left != 0) | in_flight | words.r_rdy),
        ]
        return m

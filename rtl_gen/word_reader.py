"""`WordReader` and `WindowReader`: stream words out of a `Buffer`'s read port at one word per cycle."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from codesign.hw.timing import DW_KERNEL_MAX, DW_STRIDES

PREFETCH = 4


class WordReader(wiring.Component):
    """Reads ``count`` words of ``word_bytes`` from ``addr`` and hands them on with valid/ready.

    The buffer answers one cycle after a read; a small FIFO takes the answers, and a read is issued only when the
    FIFO has room for it, so backpressure never loses a word and an unstalled consumer gets one word per cycle. A
    read port wider than the word (``port_bytes``) is narrowed to the word at the read's address.

    Ports
        start   In   1        load ``addr`` and ``count`` (only while not ``busy``)
        addr    In   byte address
        count   In   32
        busy    Out  1        words left to read or not yet taken
        reading Out  1        reads left to issue: a ``start`` may come once it is low (the words still on their
                              way or waiting to be taken go first)
        out     Out  stream of word_bytes * 8
        r_addr, r_en  Out, r_data In (port_bytes * 8)    to the buffer's read port
    """

    def __init__(self, addr_bits: int, word_bytes: int, port_bytes: int | None = None, members: dict | None = None):
        self.addr_bits = addr_bits
        self.word_bytes = word_bytes
        self.port_bytes = port_bytes or word_bytes
        super().__init__({
            "start": In(1), "addr": In(addr_bits), "count": In(32), "busy": Out(1), "reading": Out(1),
            "out": Out(stream.Signature(word_bytes * 8)),
            "r_addr": Out(addr_bits), "r_en": Out(1), "r_data": In(self.port_bytes * 8),
            **(members or {}),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = words = fifo.SyncFIFO(width=self.word_bytes * 8, depth=PREFETCH)
        left = Signal(32)
        in_flight = Signal()
        issue = Signal()
        m.d.comb += issue.eq((left != 0) & (words.level + in_flight < PREFETCH))
        m.d.comb += [self.r_en.eq(issue), words.w_en.eq(in_flight)]
        m.d.sync += in_flight.eq(issue)
        lanes = self.port_bytes // self.word_bytes
        if lanes > 1:
            lane = Signal(range(lanes))
            with m.If(issue):
                m.d.sync += lane.eq(self.r_addr[(self.word_bytes - 1).bit_length():(self.port_bytes - 1).bit_length()])
            m.d.comb += words.w_data.eq(self.r_data.word_select(lane, self.word_bytes * 8))
        else:
            m.d.comb += words.w_data.eq(self.r_data)
        with m.If(self.start):
            m.d.sync += left.eq(self.count)
        with m.Elif(issue):
            m.d.sync += left.eq(left - 1)
        self.addresses(m, issue)
        m.d.comb += [
            self.out.valid.eq(words.r_rdy), self.out.payload.eq(words.r_data), words.r_en.eq(self.out.ready),
            self.reading.eq(left != 0),
            self.busy.eq(self.reading | in_flight | words.r_rdy),
        ]
        return m

    def addresses(self, m: Module, issue: Signal) -> None:
        """Drive ``r_addr``: consecutive words from ``addr``."""
        with m.If(self.start):
            m.d.sync += self.r_addr.eq(self.addr)
        with m.Elif(issue):
            m.d.sync += self.r_addr.eq(self.r_addr + self.word_bytes)


class WindowReader(WordReader):
    """A depthwise tile's input pixels in the array's window order (`codesign.hw.timing.depthwise_inputs`): per
    kernel row i and stride phase p, the pixels ``p + stride * n`` of window row i from the last one down. Window
    row i starts at ``addr + i * row_pitch``; ``count`` is the total (the caller's `depthwise_inputs`).

    Extra ports: ``row_pitch`` (bytes), ``kw`` and ``stride``, taken with ``start`` (the kernel height needs no
    port: ``count`` ends the tile).
    """

    def __init__(self, addr_bits: int, word_bytes: int, port_bytes: int, rows: int):
        self.rows = rows
        super().__init__(addr_bits, word_bytes, port_bytes, {
            "row_pitch": In(16), "kw": In(range(DW_KERNEL_MAX + 1)), "stride": In(range(max(DW_STRIDES) + 1)),
        })

    def addresses(self, m: Module, issue: Signal) -> None:
        shift = (self.word_bytes - 1).bit_length()
        # The shape is taken at ``start``: the caller may move on to its next command while the words are read.
        kw, stride, row_pitch = Signal.like(self.kw), Signal.like(self.stride), Signal.like(self.row_pitch)
        row_addr = Signal(self.addr_bits)        # window row i
        odd = Signal()                           # the stride phase p
        chain_left = Signal(range(self.rows + DW_KERNEL_MAX + 1))

        def chain(row, phase, kw, wide):
            """(first address, words) of the chain (row, phase): pixel p + s * (rows - 2 + taps) down to p."""
            taps = Mux(wide, Mux(phase, kw >> 1, (kw + 1) >> 1), kw)
            last = Mux(wide, (self.rows - 2 + taps) << 1, self.rows - 2 + taps) + phase
            return row + (last << shift), self.rows - 1 + taps

        wide = stride == 2
        with m.If(self.start):
            first, words = chain(self.addr, 0, self.kw, self.stride == 2)
            m.d.sync += [row_addr.eq(self.addr), odd.eq(0), self.r_addr.eq(first), chain_left.eq(words),
                         kw.eq(self.kw), stride.eq(self.stride), row_pitch.eq(self.row_pitch)]
        with m.Elif(issue):
            m.d.sync += [self.r_addr.eq(self.r_addr - Mux(wide, 2 << shift, 1 << shift)),
                         chain_left.eq(chain_left - 1)]
            with m.If(chain_left == 1):
                # the next chain: the odd taps of this row, or the next row's even ones
                to_odd = wide & ~odd & (kw > 1)
                next_row = Mux(to_odd, row_addr, row_addr + row_pitch)
                first, words = chain(next_row, to_odd, kw, wide)
                m.d.sync += [row_addr.eq(next_row), odd.eq(to_odd), self.r_addr.eq(first), chain_left.eq(words)]

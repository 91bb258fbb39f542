"""`Buffer`: an on-chip buffer whose write port and read port have different widths, both byte-addressed."""

from amaranth.hdl import Const, Module, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out


class Buffer(wiring.Component):
    """``size`` bytes; the DMA side moves bus beats, the datapath side operand words (both powers of two).

    The memory is as wide as the wider port; the narrower port selects a lane of it (a write lane through byte-lane
    granularity, a read lane through a multiplexer after the read), so one block RAM serves both widths.

    Ports
        w_addr  In   byte address, a multiple of ``write_bytes``
        w_data  In   write_bytes * 8
        w_en    In   1
        r_addr  In   byte address, a multiple of ``read_bytes``
        r_en    In   1
        r_data  Out  read_bytes * 8       the word at ``r_addr`` one cycle after ``r_en``
    """

    def __init__(self, size: int, write_bytes: int, read_bytes: int):
        self.size, self.write_bytes, self.read_bytes = size, write_bytes, read_bytes
        self.word_bytes = max(write_bytes, read_bytes)
        addr_bits = (size - 1).bit_length()
        super().__init__({
            "w_addr": In(addr_bits), "w_data": In(write_bytes * 8), "w_en": In(1),
            "r_addr": In(addr_bits), "r_en": In(1), "r_data": Out(read_bytes * 8),
        })

    def elaborate(self, platform):
        m = Module()
        word_bits = self.word_bytes * 8
        word_shift = (self.word_bytes - 1).bit_length()
        m.submodules.mem = mem = memory.Memory(shape=word_bits, depth=self.size // self.word_bytes, init=[])

        write_lanes = self.word_bytes // self.write_bytes
        wport = mem.write_port(granularity=self.write_bytes * 8 if write_lanes > 1 else None)
        m.d.comb += [wport.addr.eq(self.w_addr >> word_shift), wport.data.eq(self.w_data.replicate(write_lanes))]
        if write_lanes > 1:
            lane = self.w_addr[(self.write_bytes - 1).bit_length():word_shift]
            m.d.comb += wport.en.eq(self.w_en.replicate(write_lanes) & (Const(1, write_lanes) << lane))
        else:
            m.d.comb += wport.en.eq(self.w_en)

        rport = mem.read_port()
        m.d.comb += [rport.addr.eq(self.r_addr >> word_shift), rport.en.eq(self.r_en)]
        read_lanes = self.word_bytes // self.read_bytes
        if read_lanes > 1:
            lane = Signal(range(read_lanes))
            with m.If(self.r_en):
                m.d.sync += lane.eq(self.r_addr[(self.read_bytes - 1).bit_length():word_shift])
            m.d.comb += self.r_data.eq(rport.data.word_select(lane, self.read_bytes * 8))
        else:
            m.d.comb += self.r_data.eq(rport.data)
        return m

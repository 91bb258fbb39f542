"""`StoreUnit`: runs STORE commands, output-buffer words out to DRAM rows through the `Dma`."""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from codesign.hw import isa
from rtl_gen import commands
from rtl_gen.dependency import dependency_members, next_command, release
from rtl_gen.dma import request_layout
from rtl_gen.word_reader import WordReader


class StoreUnit(wiring.Component):
    """One command at a time, in program order: a write request per row, and the rows' beats read contiguously from
    the output buffer from ``buf_addr``. The command is finished (and its token sent: the buffer half is free) once
    its last beat has left; the write responses are the DMA's to wait for, and END waits for them.

    Ports
        cmd       In   stream of 128-bit commands
        wr_req    Out  stream of DMA write requests
        wr_data   Out  stream of bus beats
        r_addr, r_en Out, r_data In   the output buffer's read port (bus-wide)
        idle      Out  1
        + the dependency ports
    """

    def __init__(self, bus_bytes: int, addr_bits: int):
        self.bus_bytes, self.addr_bits = bus_bytes, addr_bits
        super().__init__({
            "cmd": In(stream.Signature(isa.COMMAND_BITS)),
            "wr_req": Out(stream.Signature(request_layout())),
            "wr_data": Out(stream.Signature(bus_bytes * 8)),
            "r_addr": Out(addr_bits), "r_en": Out(1), "r_data": In(bus_bytes * 8),
            "idle": Out(1),
            **dependency_members(),
        })

    def elaborate(self, platform):
        m = Module()
        beat_shift = (self.bus_bytes - 1).bit_length()
        m.submodules.reader = reader = WordReader(self.addr_bits, self.bus_bytes)
        m.d.comb += [self.r_addr.eq(reader.r_addr), self.r_en.eq(reader.r_en), reader.r_data.eq(self.r_data)]
        wiring.connect(m, reader.out, wiring.flipped(self.wr_data))

        cmd = Signal(commands.DMA)
        rows_left = Signal(16)
        row_addr = Signal(32)
        m.d.comb += [
            self.wr_req.payload.addr.eq(row_addr),
            self.wr_req.payload.beats.eq(cmd.row_bytes >> beat_shift),
            reader.addr.eq(cmd.buf_addr),
            reader.count.eq(cmd.rows * (cmd.row_bytes >> beat_shift)),
        ]

        with m.FSM():
            with next_command(m, self, cmd):
                m.d.comb += reader.start.eq(1)
                m.d.sync += [rows_left.eq(cmd.rows), row_addr.eq(cmd.dram_addr)]
                m.next = "RUN"
            with m.State("RUN"):
                # Every row requested must get its data, halt or not: a write burst once issued must complete.
                m.d.comb += self.wr_req.valid.eq(rows_left != 0)
                with m.If(self.wr_req.valid & self.wr_req.ready):
                    m.d.sync += [rows_left.eq(rows_left - 1), row_addr.eq(row_addr + cmd.dram_stride)]
                with m.If((rows_left == 0) & ~reader.busy):
                    with m.If(~self.halt):
                        release(m, self, cmd)
                    m.next = "IDLE"
        return m

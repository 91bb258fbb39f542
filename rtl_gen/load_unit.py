"""`LoadUnit`: runs LOAD_ACT / LOAD_WGT / LOAD_PARAM commands, DRAM rows into a buffer through the `Dma`."""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from codesign.hw import isa
from rtl_gen import commands
from rtl_gen.dependency import dependency_members, next_command, release
from rtl_gen.dma import request_layout


class LoadUnit(wiring.Component):
    """One command at a time, in program order: it asks the DMA for each row and writes the beats that come back
    contiguously into the buffer the opcode names. The read requests run ahead of the data (the DMA keeps several
    bursts outstanding); the command is finished when its last beat is written.

    Ports
        cmd       In   stream of 128-bit commands (checked by the controller)
        rd_req    Out  stream of DMA read requests
        rd_data   In   stream of bus beats for this unit
        w_addr, w_data  Out   byte address and beat, to the buffers' write ports
        w_act, w_wgt, w_param  Out 1   write enable of each buffer
        idle      Out  1
        + the dependency ports (`dependency_members`)
    """

    def __init__(self, bus_bytes: int, addr_bits: int):
        self.bus_bytes = bus_bytes
        super().__init__({
            "cmd": In(stream.Signature(isa.COMMAND_BITS)),
            "rd_req": Out(stream.Signature(request_layout())),
            "rd_data": In(stream.Signature(bus_bytes * 8)),
            "w_addr": Out(addr_bits), "w_data": Out(bus_bytes * 8),
            "w_act": Out(1), "w_wgt": Out(1), "w_param": Out(1),
            "idle": Out(1),
            **dependency_members(),
        })

    def elaborate(self, platform):
        m = Module()
        beat_shift = (self.bus_bytes - 1).bit_length()
        cmd = Signal(commands.DMA)
        rows_left = Signal(16)
        row_addr = Signal(32)
        expected = Signal(32)        # beats requested so far
        received = Signal(32)
        cutoff = Signal()            # halted: request no more rows, finish the ones in flight

        m.d.comb += [
            self.rd_req.payload.addr.eq(row_addr),
            self.rd_req.payload.beats.eq(cmd.row_bytes >> beat_shift),
            self.rd_req.payload.tag.eq(0),
            self.w_data.eq(self.rd_data.payload),
        ]

        with m.FSM():
            with next_command(m, self, cmd):
                m.d.sync += [rows_left.eq(cmd.rows), row_addr.eq(cmd.dram_addr), self.w_addr.eq(cmd.buf_addr),
                             expected.eq(0), received.eq(0), cutoff.eq(0)]
                m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += [self.rd_req.valid.eq((rows_left != 0) & ~cutoff & ~self.halt), self.rd_data.ready.eq(1)]
                with m.If(self.halt):
                    m.d.sync += cutoff.eq(1)
                with m.If(self.rd_req.valid & self.rd_req.ready):
                    m.d.sync += [rows_left.eq(rows_left - 1), row_addr.eq(row_addr + cmd.dram_stride),
                                 expected.eq(expected + self.rd_req.payload.beats)]
                with m.If(self.rd_data.valid):
                    opcode = cmd.opcode
                    m.d.comb += [self.w_act.eq(opcode == isa.Opcode.LOAD_ACT),
                                 self.w_wgt.eq(opcode == isa.Opcode.LOAD_WGT),
                                 self.w_param.eq(opcode == isa.Opcode.LOAD_PARAM)]
                    m.d.sync += [received.eq(received + 1), self.w_addr.eq(self.w_addr + self.bus_bytes)]
                requested_all = (rows_left == 0) | cutoff | self.halt
                with m.If(requested_all & (received == expected) & ~(self.rd_req.valid & self.rd_req.ready)):
                    with m.If(~cutoff & ~self.halt):
                        release(m, self, cmd)
                    m.next = "IDLE"
        return m

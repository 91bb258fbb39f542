"""`Controller`: fetches the program by DMA, checks and dispatches each command to its unit, stops on errors, and
keeps the performance counters."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from codesign.hw import isa
from codesign.hw.config import HardwareConfig
from codesign.hw.csr import COUNTER_BITS, COUNTERS, Error
from codesign.hw.timing import DW_KERNEL_MAX, DW_STRIDES
from rtl_gen import commands
from rtl_gen.dma import request_layout

FETCH_DEPTH = 16          # commands held between fetch and decode
FETCH_BYTES = isa.FETCH_BYTES   # per fetch request: half the queue, so one request is in flight while one decodes
QUEUE_DEPTH = 8           # commands waiting per unit: how far loads may run ahead of computes


class Controller(wiring.Component):
    """The sequencer of the accelerator.

    START loads the program address and length; the fetcher then reads the program in 128-byte requests, at most
    as far ahead as the command queue has room (so a fetch beat never stalls the shared read channel). The decoder
    takes one command at a time, checks it against the configuration (opcode, dependency flags, field ranges,
    alignment, buffer bounds) and hands it to the queue of the LOAD, COMPUTE or STORE unit. The first error, from
    the decoder, a unit or an AXI response, halts the units: they drop their queued commands and finish only what
    is already on the bus. The program is done when END (or the error) has been reached, every unit is idle and
    every write is acknowledged.

    Ports
        start, prog_addr, prog_len      In    from the registers
        busy, done, error, error_pc     Out   to the registers (``done`` is sticky until the next START)
        rd_req      Out  program fetch requests to the DMA (tag 1)
        fetch_data  In   the beats that answer them
        load_cmd, compute_cmd, store_cmd   Out   the units' command queues
        unit_error  In   an `Error` code from the compute unit (one-cycle pulse)
        read_error, write_error   In   an AXI error response this cycle
        units_quiet In   every unit idle and the DMA idle
        halt        Out  1
        array_busy, stalled, rd_beat, wr_beat   In   events the counters count
        cycles, compute_cycles, stall_cycles, bytes_read, bytes_written   Out   the counters
    """

    def __init__(self, cfg: HardwareConfig):
        self.cfg = cfg
        self.words = isa.word_bytes(cfg)
        command_stream = stream.Signature(isa.COMMAND_BITS)
        super().__init__({
            "start": In(1), "prog_addr": In(32), "prog_len": In(32),
            "busy": Out(1), "done": Out(1), "error": Out(8), "error_pc": Out(32),
            "rd_req": Out(stream.Signature(request_layout())),
            "fetch_data": In(stream.Signature(self.words.bus * 8)),
            "load_cmd": Out(command_stream), "compute_cmd": Out(command_stream), "store_cmd": Out(command_stream),
            "unit_error": In(range(len(Error))), "read_error": In(1), "write_error": In(1),
            "units_quiet": In(1), "halt": Out(1),
            "array_busy": In(1), "stalled": In(1), "rd_beat": In(1), "wr_beat": In(1),
            **{name: Out(COUNTER_BITS) for name in COUNTERS},
        })

    def elaborate(self, platform):
        m = Module()
        cfg, words = self.cfg, self.words
        bus = words.bus
        beat_shift = (bus - 1).bit_length()

        m.submodules.instr = instr = fifo.SyncFIFOBuffered(width=isa.COMMAND_BITS, depth=FETCH_DEPTH)
        queues = {}
        for name in ("load", "compute", "store"):
            queues[name] = m.submodules[f"{name}_queue"] = fifo.SyncFIFOBuffered(width=isa.COMMAND_BITS,
                                                                                   depth=QUEUE_DEPTH)
            port = getattr(self, f"{name}_cmd")
            m.d.comb += [port.valid.eq(queues[name].r_rdy), port.payload.eq(queues[name].r_data),
                         queues[name].r_en.eq(port.ready)]

        running = Signal()        # between START and the end of the program
        decoding = Signal()       # the decoder has not reached END or an error yet
        m.d.comb += [self.busy.eq(running), self.halt.eq(self.error != 0)]

        def raise_error(code):
            with m.If(self.error == 0):
                m.d.sync += self.error.eq(code)

        # ---- fetch: requests of up to FETCH_BYTES, only when the command queue has room for their answers
        fetch_addr = Signal(32)
        fetch_left = Signal(37)                        # bytes not yet requested
        in_flight = Signal(range(FETCH_DEPTH * 2 + 1))  # commands requested, not yet in the queue
        chunk = Signal(range(FETCH_BYTES + 1))
        m.d.comb += chunk.eq(FETCH_BYTES)
        with m.If(fetch_left < FETCH_BYTES):
            m.d.comb += chunk.eq(fetch_left)
        beats = (chunk + bus - 1) >> beat_shift
        chunk_commands = (beats << beat_shift) >> 4
        room = instr.level + in_flight + FETCH_BYTES // isa.COMMAND_BYTES <= FETCH_DEPTH
        m.d.comb += [
            self.rd_req.valid.eq(decoding & (fetch_left != 0) & room & ~self.halt),
            self.rd_req.payload.addr.eq(fetch_addr),
            self.rd_req.payload.beats.eq(beats),
            self.rd_req.payload.tag.eq(1),
        ]
        requested = self.rd_req.valid & self.rd_req.ready
        with m.If(requested):
            m.d.sync += [fetch_addr.eq(fetch_addr + chunk), fetch_left.eq(fetch_left - chunk)]
        m.d.sync += in_flight.eq(in_flight + Mux(requested, chunk_commands, 0) - instr.w_en)
        self._beats_to_commands(m, instr)

        # ---- decode and dispatch
        cur = Signal(isa.COMMAND_BITS)
        cur_pc = Signal(32)
        pc = Signal(32)
        header = commands.HEADER(cur)
        dma = commands.DMA(cur)
        comp = commands.COMPUTE(cur)
        dw = commands.DW_COMPUTE(cur)
        op = header.opcode
        is_load = (op == isa.Opcode.LOAD_ACT) | (op == isa.Opcode.LOAD_WGT) | (op == isa.Opcode.LOAD_PARAM)
        is_store = op == isa.Opcode.STORE
        is_gemm = op == isa.Opcode.COMPUTE
        is_dw = op == isa.Opcode.DW_COMPUTE
        is_compute = is_gemm | is_dw
        is_end = op == isa.Opcode.END
        # A LOAD has no previous unit and a STORE no next one: a token from or to nobody would wait forever.
        bad_deps = ((is_load & (header.pop_prev | header.push_prev)) | (is_store & (header.pop_next | header.push_next))
                    | (is_end & (header.pop_prev | header.pop_next | header.push_prev | header.push_next)))
        buf_size = Signal(25)
        with m.Switch(op):
            for opcode, size in ((isa.Opcode.LOAD_ACT, cfg.act_buf_bytes), (isa.Opcode.LOAD_WGT, cfg.wgt_buf_bytes),
                                 (isa.Opcode.LOAD_PARAM, cfg.param_buf_bytes), (isa.Opcode.STORE, cfg.out_buf_bytes)):
                with m.Case(opcode):
                    m.d.comb += buf_size.eq(size)
            with m.Default():                   # COMPUTE and END address no DMA buffer
                m.d.comb += buf_size.eq(0)
        # A DMA's byte count, a window's row span and its taps are multiplies: registered as the command is taken,
        # so that none is one path with the checks after it (each was the accelerator's critical path in turn).
        dma_bytes = Signal(33)
        rows_span = Signal(range(7 * (1 << 16)))
        taps = Signal(range(DW_KERNEL_MAX ** 2 + 1))
        dma_bad = (dma.rows == 0) | (dma.row_bytes == 0)
        dma_misaligned = ((dma.dram_addr | dma.row_bytes | dma.dram_stride | dma.buf_addr) & (bus - 1)) != 0
        dma_out_of_range = dma.buf_addr + dma_bytes > buf_size
        # COMPUTE and DW_COMPUTE share the addresses' places; their own fields are checked each by its kind.
        comp_bad = Mux(is_dw,
                       (dw.kh == 0) | (dw.kw == 0) | (dw.stride == 0) | (dw.stride > max(DW_STRIDES))
                       | (taps > cfg.max_k) | (dw.out_bits == 0) | (dw.out_bits > cfg.act_bits),
                       (comp.k == 0) | (comp.k > cfg.max_k) | (comp.out_bits == 0) | (comp.out_bits > cfg.act_bits))
        act_word = Mux(is_dw, words.out, words.act)      # a pixel word in a DW_COMPUTE
        comp_misaligned = ((((comp.act_addr | Mux(is_dw, dw.row_pitch, 0)) & (act_word - 1))
                            | (comp.wgt_addr & (words.wgt - 1))
                            | (comp.param_addr & (words.param - 1)) | (comp.out_addr & (words.out - 1))) != 0)
        # (stride is 1 or 2 once the checks before the range pass: a multiplexer, not a multiplier)
        window_end = dw.act_addr + rows_span + (Mux(dw.stride == 2, 2 * (cfg.rows - 1), cfg.rows - 1) + dw.kw) * \
            words.out
        comp_out_of_range = ((Mux(is_dw, window_end, comp.act_addr + comp.k * words.act) > cfg.act_buf_bytes)
                             | (comp.param_addr + words.param > cfg.param_buf_bytes)
                             | ((is_dw | comp.emit) & (comp.out_addr + cfg.rows * words.out > cfg.out_buf_bytes)))

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [
                        running.eq(1), decoding.eq(1), self.done.eq(0), self.error.eq(0), self.error_pc.eq(0),
                        pc.eq(0), fetch_addr.eq(self.prog_addr), fetch_left.eq(self.prog_len << 4),
                    ]
                    for name in COUNTERS:
                        m.d.sync += getattr(self, name).eq(0)
                    with m.If(self.prog_addr & (max(bus, isa.COMMAND_BYTES) - 1)):
                        m.d.sync += [self.error.eq(Error.ALIGNMENT), decoding.eq(0)]
                        m.next = "DRAIN"
                    with m.Else():
                        m.next = "NEXT"
            with m.State("NEXT"):
                with m.If(self.halt):
                    m.next = "DRAIN"
                with m.Elif(pc == self.prog_len):
                    raise_error(Error.PROGRAM_OVERRUN)
                    m.d.sync += self.error_pc.eq(pc)
                    m.next = "DRAIN"
                with m.Elif(instr.r_rdy):
                    m.d.comb += instr.r_en.eq(1)
                    taken, taken_dma = commands.DW_COMPUTE(instr.r_data), commands.DMA(instr.r_data)
                    m.d.sync += [cur.eq(instr.r_data), cur_pc.eq(pc), pc.eq(pc + 1),
                                 rows_span.eq((taken.kh - 1) * taken.row_pitch), taps.eq(taken.kh * taken.kw),
                                 dma_bytes.eq(taken_dma.rows * taken_dma.row_bytes)]
                    m.next = "CHECK"
            with m.State("CHECK"):
                def fail(code):
                    raise_error(code)
                    m.d.sync += self.error_pc.eq(cur_pc)
                    m.next = "DRAIN"

                with m.If(self.halt):
                    m.next = "DRAIN"
                with m.Elif(~(is_load | is_store | is_compute | is_end)):
                    fail(Error.ILLEGAL_OPCODE)
                with m.Elif(bad_deps | ((is_load | is_store) & dma_bad) | (is_compute & comp_bad)):
                    fail(Error.BAD_FIELD)
                with m.Elif(((is_load | is_store) & dma_misaligned) | (is_compute & comp_misaligned)):
                    fail(Error.ALIGNMENT)
                with m.Elif(((is_load | is_store) & dma_out_of_range) | (is_compute & comp_out_of_range)):
                    fail(Error.BUFFER_RANGE)
                with m.Elif(is_end):
                    m.next = "DRAIN"
                with m.Else():
                    target = Signal()
                    for name, selected in (("load", is_load), ("compute", is_compute), ("store", is_store)):
                        queue = queues[name]
                        m.d.comb += queue.w_data.eq(cur)
                        with m.If(selected):
                            m.d.comb += [queue.w_en.eq(queue.w_rdy), target.eq(queue.w_rdy)]
                    with m.If(target):
                        m.d.sync += self.error_pc.eq(cur_pc)
                        m.next = "NEXT"
            with m.State("DRAIN"):
                # Past END or an error: discard what is still fetched, wait for the units and the bus to finish.
                m.d.sync += decoding.eq(0)
                m.d.comb += instr.r_en.eq(1)
                queues_empty = ~queues["load"].r_rdy & ~queues["compute"].r_rdy & ~queues["store"].r_rdy
                with m.If(~decoding & self.units_quiet & queues_empty & (in_flight == 0) & ~instr.r_rdy):
                    m.d.sync += [running.eq(0), self.done.eq(1)]
                    m.next = "IDLE"

        with m.If(self.unit_error != 0):
            raise_error(self.unit_error)
        with m.If(self.read_error):
            raise_error(Error.READ_RESPONSE)
        with m.If(self.write_error):
            raise_error(Error.WRITE_RESPONSE)

        # ---- performance counters, cleared by START
        with m.If(running):
            m.d.sync += [
                self.cycles.eq(self.cycles + 1),
                self.compute_cycles.eq(self.compute_cycles + self.array_busy),
                self.stall_cycles.eq(self.stall_cycles + self.stalled),
                self.bytes_read.eq(self.bytes_read + Mux(self.rd_beat, bus, 0)),
                self.bytes_written.eq(self.bytes_written + Mux(self.wr_beat, bus, 0)),
            ]
        return m

    def _beats_to_commands(self, m, instr):
        """Bus beats of the program into 128-bit commands, LSB first: two beats per command on a 64-bit bus, two
        commands per beat on a 256-bit one."""
        beat_bits = self.words.bus * 8
        data = self.fetch_data
        if beat_bits == isa.COMMAND_BITS:
            m.d.comb += [instr.w_data.eq(data.payload), instr.w_en.eq(data.valid), data.ready.eq(instr.w_rdy)]
        elif beat_bits < isa.COMMAND_BITS:
            parts = isa.COMMAND_BITS // beat_bits
            held = Signal(beat_bits * (parts - 1))
            count = Signal(range(parts))
            last = count == parts - 1
            m.d.comb += [instr.w_data.eq(Cat(held, data.payload)), data.ready.eq(~last | instr.w_rdy),
                         instr.w_en.eq(data.valid & last)]
            with m.If(data.valid & data.ready):
                m.d.sync += count.eq(count + 1)
                with m.If(last):
                    m.d.sync += count.eq(0)
                m.d.sync += held.eq(Cat(held, data.payload)[beat_bits:])
        else:
            parts = beat_bits // isa.COMMAND_BITS
            held = Signal(beat_bits)
            full = Signal()
            part = Signal(range(parts))
            last = part == parts - 1
            m.d.comb += [instr.w_data.eq(held.word_select(part, isa.COMMAND_BITS)), instr.w_en.eq(full),
                         data.ready.eq(~full | (last & instr.w_rdy))]
            with m.If(instr.w_en & instr.w_rdy):
                m.d.sync += part.eq(part + 1)
                with m.If(last):
                    m.d.sync += [part.eq(0), full.eq(0)]
            with m.If(data.valid & data.ready):
                m.d.sync += [held.eq(data.payload), full.eq(1)]

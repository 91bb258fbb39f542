"""`ComputeUnit`: runs COMPUTE and DW_COMPUTE commands on the `ArrayCore`, operands streamed from the buffers."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from codesign.hw import isa
from codesign.hw.config import HardwareConfig
from codesign.hw.csr import Error
from rtl_gen import commands
from rtl_gen.array_core import ArrayCore, maximum
from rtl_gen.dependency import acquire, dependency_members, next_command
from rtl_gen.word_reader import WindowReader, WordReader


def _addr_bits(size: int) -> int:
    return (size - 1).bit_length()


def act_port_bytes(cfg: HardwareConfig) -> int:
    """The activation buffer's read port: an act word or a depthwise pixel word, whichever is wider."""
    words = isa.word_bytes(cfg)
    return max(words.act, words.out)


def depthwise_inputs(rows: int, kh, kw, stride):
    """`codesign.hw.timing.depthwise_inputs` in hardware: chains * (rows - 1) + kh * kw."""
    chains = Mux((stride == 2) & (kw > 1), kh << 1, kh)
    return chains * (rows - 1) + kh * kw


class ComputeUnit(wiring.Component):
    """One tile per command: read the column tile's parameter word, check it, then run the `ArrayCore` with K
    activation words and K * D weight digit planes streamed from the buffers, and write the ``rows`` requantized
    output words (with ``emit``) to the output buffer.

    A DW_COMPUTE runs the same way, its input pixels read in window order (`WindowReader`) from the activation buffer,
    whose read port is as wide as the wider of an act word and a pixel word.

    Commands overlap: the next command is taken, its tokens and parameter word are read and checked, and its reads
    are started while the array still feeds the tile before it, so the array takes it the cycle after that tile's
    last beat. A command is done once the array has taken its tile (its operands are read: ``push_prev`` goes then);
    an emitting tile's rows are written while the next commands run, and its ``push_next`` waits until its last row
    is written, so a STORE never reads a row before it is there. A ``push_next`` without ``emit`` waits for any
    drain still running, for the same reason and so that two pushes never share a cycle.

    Ports
        cmd         In   stream of 128-bit commands
        act_*, wgt_*, param_*   the read ports of those buffers (``*_addr``, ``*_en`` out, ``*_data`` in)
        out_addr, out_data, out_en   Out   the output buffer's write port
        array_busy  Out  1   the array is running a tile (the compute-active counter counts these cycles)
        stalled     Out  1   a command waits for a token (its data is not loaded, or its output half not stored)
        error       Out  bits of `Error`   a parameter record or the weight range is bad (one-cycle pulse)
        idle        Out  1   no command, and no rows left to write
        + the dependency ports
    """

    def __init__(self, cfg: HardwareConfig):
        self.cfg = cfg
        self.words = words = isa.word_bytes(cfg)
        super().__init__({
            "cmd": In(stream.Signature(isa.COMMAND_BITS)),
            "act_addr": Out(_addr_bits(cfg.act_buf_bytes)), "act_en": Out(1),
            "act_data": In(act_port_bytes(cfg) * 8),
            "wgt_addr": Out(_addr_bits(cfg.wgt_buf_bytes)), "wgt_en": Out(1), "wgt_data": In(words.wgt * 8),
            "param_addr": Out(_addr_bits(cfg.param_buf_bytes)), "param_en": Out(1),
            "param_data": In(words.param * 8),
            "out_addr": Out(_addr_bits(cfg.out_buf_bytes)), "out_data": Out(words.out * 8), "out_en": Out(1),
            "array_busy": Out(1), "stalled": Out(1), "error": Out(range(len(Error))), "idle": Out(1),
            **dependency_members(),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, words = self.cfg, self.words
        g = cfg.digit_bits
        m.submodules.core = core = ArrayCore(cfg)
        act_bits = _addr_bits(cfg.act_buf_bytes)
        m.submodules.act_reader = act_reader = WordReader(act_bits, words.act, act_port_bytes(cfg))
        m.submodules.window = window = WindowReader(act_bits, words.out, act_port_bytes(cfg), cfg.rows)
        m.submodules.wgt_reader = wgt_reader = WordReader(_addr_bits(cfg.wgt_buf_bytes), words.wgt)
        m.d.comb += [self.wgt_addr.eq(wgt_reader.r_addr), self.wgt_en.eq(wgt_reader.r_en),
                     wgt_reader.r_data.eq(self.wgt_data),
                     act_reader.r_data.eq(self.act_data), window.r_data.eq(self.act_data)]

        cmd = Signal(commands.COMPUTE)
        dw = commands.DW_COMPUTE(cmd.as_value())       # the same bits read as a DW_COMPUTE
        is_dw = cmd.opcode == isa.Opcode.DW_COMPUTE

        # Commands overlap: the next command is taken, checked and its reads started while the array still feeds the
        # tile before it, so ``cmd`` moves on; what that tile's end needs is kept here.
        running = Signal()                             # the array has a tile whose operands are not all taken
        run_dw = Signal()
        run_emit = Signal()
        run_push_prev = Signal()
        run_push_next = Signal()
        run_out_addr = Signal.like(cmd.out_addr)
        reading_dw = Signal()                          # the kind of the tile whose reads the readers issue

        # One activation reader per command kind; they share the buffer's read port, each in its turn (a tile's
        # reads start once the previous tile's are all issued). The array takes the running tile's words, and
        # between tiles the next one's.
        feeding_dw = Mux(core.busy, run_dw, reading_dw)
        m.d.comb += [
            self.act_addr.eq(Mux(reading_dw, window.r_addr, act_reader.r_addr)),
            self.act_en.eq(Mux(reading_dw, window.r_en, act_reader.r_en)),
            core.act.valid.eq(Mux(feeding_dw, window.out.valid, act_reader.out.valid)),
            core.act.payload.eq(Mux(feeding_dw, window.out.payload, act_reader.out.payload)),
            act_reader.out.ready.eq(core.act.ready & ~feeding_dw),
            window.out.ready.eq(core.act.ready & feeding_dw),
            core.wgt.valid.eq(wgt_reader.out.valid), core.wgt.payload.eq(wgt_reader.out.payload),
            wgt_reader.out.ready.eq(core.wgt.ready),
            self.array_busy.eq(core.busy & ~core.waiting),
        ]
        m.d.comb += [window.row_pitch.eq(dw.row_pitch), window.kw.eq(dw.kw), window.stride.eq(dw.stride)]
        reads_issued = ~act_reader.reading & ~window.reading & ~wgt_reader.reading

        # ---- the parameter word: one 8-byte record per column (see codesign.hw.isa). Registered as it arrives
        # (PARAM), decoded a cycle later (DECODE): the block RAM's output has no register of its own, and its
        # clock-to-out and the maximum over the columns were the accelerator's critical path. The extra cycle is
        # hidden: the next command is decoded while the array feeds the tile before it.
        param_word = Signal.like(self.param_data)
        records = [param_word.word_select(c, 64) for c in range(cfg.cols)]
        bias = [r[0:32].as_signed() for r in records]
        mult = [r[32:48] for r in records]
        shift = [r[48:56] for r in records]
        bits = [r[56:64] for r in records]
        bad = []
        for c in range(cfg.cols):
            bad += [bits[c] == 0, bits[c] > cfg.weight_bits_max, shift[c] > cfg.shift_max]
            if cfg.mult_bits < 16:
                bad.append(mult[c] >> cfg.mult_bits != 0)
            if cfg.acc_bits < 32:
                limit = 1 << (cfg.acc_bits - 1)
                bad += [bias[c] < -limit, bias[c] >= limit]
        # Registered as the word is decoded (DECODE), used a cycle later (COUNT): the maximum over the columns and the
        # K x D multiply in one cycle were a critical path too.
        params_bad = Signal()
        window_words = Signal(16)
        digits = Signal(range(cfg.digits_max + 1))
        wgt_words = Signal(32)

        payload = core.cmd.payload
        # The draining tile's output address and token: the next command overwrites ``cmd`` while its rows come.
        drain_addr = Signal.like(cmd.out_addr)
        drain_push = Signal()
        out_row = Signal(range(cfg.rows))
        m.d.comb += [
            self.out_data.eq(core.out.payload),
            self.out_en.eq(core.out.valid),
            self.out_addr.eq(drain_addr + out_row * words.out),
            core.out.ready.eq(1),
        ]
        with m.If(core.out.valid):
            m.d.sync += out_row.eq(out_row + 1)
            with m.If(out_row == cfg.rows - 1):
                m.d.comb += self.push_next.eq(drain_push)

        # ---- the running tile's end: once the array has taken its last beat its operands are read (push_prev); an
        # emitting tile's last beat waited until the previous drain was over, so its own drain's address and token
        # are latched now. A push_next without emit waits for any drain still running.
        retire = Signal()
        m.d.comb += retire.eq(running & ~core.busy & (run_emit | ~run_push_next | ~core.draining))
        with m.If(retire):
            m.d.comb += self.push_prev.eq(run_push_prev)
            m.d.sync += running.eq(0)
            with m.If(run_emit):
                m.d.sync += [drain_addr.eq(run_out_addr), drain_push.eq(run_push_next), out_row.eq(0)]
            with m.Elif(run_push_next):
                # (only then: a tile without a push must not override a drain's push in the same cycle)
                m.d.comb += self.push_next.eq(1)

        m.d.comb += self.param_addr.eq(cmd.param_addr)
        with m.FSM() as fsm:
            with next_command(m, self, cmd):
                m.d.comb += self.param_en.eq(1)
                m.next = "PARAM"
            with m.State("PARAM"):
                m.d.sync += param_word.eq(self.param_data)
                m.next = "DECODE"
            with m.State("DECODE"):
                # The parameter word and the command into the array command.
                m.d.sync += [
                    payload.k.eq(Mux(is_dw, dw.kh * dw.kw, cmd.k)),
                    payload.act_signed.eq(Mux(is_dw, dw.act_signed, cmd.act_signed)),
                    payload.accumulate.eq(~is_dw & cmd.accumulate), payload.emit.eq(is_dw | cmd.emit),
                    payload.relu.eq(Mux(is_dw, dw.relu, cmd.relu)),
                    payload.out_bits.eq(Mux(is_dw, dw.out_bits, cmd.out_bits)),
                    payload.depthwise.eq(is_dw), payload.kw.eq(dw.kw), payload.stride.eq(dw.stride),
                    window_words.eq(depthwise_inputs(cfg.rows, dw.kh, dw.kw, dw.stride)),
                ]
                for c in range(cfg.cols):
                    m.d.sync += [payload.col_bits[c].eq(bits[c]), payload.bias[c].eq(bias[c]),
                                 payload.mult[c].eq(mult[c]), payload.shift[c].eq(shift[c])]
                m.d.sync += [params_bad.eq(Cat(*bad).any()),
                             digits.eq(maximum((b + (g - 1)) >> (g.bit_length() - 1) for b in bits))]
                m.next = "COUNT"
            with m.State("COUNT"):
                m.d.sync += wgt_words.eq(payload.k * digits)
                with m.If(params_bad):
                    m.d.comb += self.error.eq(Error.BAD_FIELD)
                    m.next = "IDLE"
                with m.Else():
                    m.next = "CHECK"
            with m.State("CHECK"):
                with m.If(cmd.wgt_addr + wgt_words * words.wgt > cfg.wgt_buf_bytes):
                    m.d.comb += self.error.eq(Error.BUFFER_RANGE)
                    m.next = "IDLE"
                with m.Elif(reads_issued):
                    m.d.comb += [
                        act_reader.start.eq(~is_dw), act_reader.addr.eq(cmd.act_addr), act_reader.count.eq(cmd.k),
                        window.start.eq(is_dw), window.addr.eq(dw.act_addr), window.count.eq(window_words),
                        wgt_reader.start.eq(1), wgt_reader.addr.eq(cmd.wgt_addr), wgt_reader.count.eq(wgt_words),
                    ]
                    m.d.sync += reading_dw.eq(is_dw)
                    m.next = "ISSUE"
            with m.State("ISSUE"):
                # Hand the tile over once its first operands are there, so the array never waits inside a tile:
                # then its feed cycles are exactly `codesign.hw.timing.tile_cycles`. The array takes it the cycle
                # after the previous tile's last beat, which retires that one in the same cycle.
                m.d.comb += core.cmd.valid.eq(core.act.valid & wgt_reader.out.valid & (~running | retire))
                with m.If(core.cmd.valid & core.cmd.ready):
                    m.d.sync += [running.eq(1), run_dw.eq(is_dw), run_emit.eq(payload.emit),
                                 run_push_prev.eq(cmd.push_prev), run_push_next.eq(cmd.push_next),
                                 run_out_addr.eq(cmd.out_addr)]
                    m.next = "IDLE"
        m.d.comb += self.stalled.eq(fsm.ongoing("WAIT") & ~acquire(m, self, cmd) & ~self.halt)
        with m.If(core.draining | running):
            m.d.comb += self.idle.eq(0)
        return m


"""`ArrayCore`: a tile in on valid/ready streams, the requantized C tile out, with its cycle count.

This is the datapath the controller drives: a tile command, then K activation vectors and K * D weight-digit
vectors, and (when the command asks for it) ``rows`` output vectors. Cycles from the command handshake to the last
output are exactly `codesign.timing.tile_cycles`; the cost model is built on that formula.
"""

from amaranth.hdl import Array, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from codesign.config import HardwareConfig
from codesign.timing import fill_cycles

from .requant_unit import RequantUnit
from .systolic_array import SystolicArray


def command_layout(cfg: HardwareConfig) -> data.StructLayout:
    """One tile command. Widths come from the config, so the layout is the single definition of the format."""
    return data.StructLayout({
        "k":          unsigned(cfg.k_bits),                      # reduction steps, 1..max_k
        "col_bits":   data.ArrayLayout(unsigned(cfg.weight_bits_max.bit_length()), cfg.cols),  # weight bits per column
        "act_signed": 1,                                         # activations are two's complement (else unsigned)
        "accumulate": 1,                                         # add onto the previous tile's sums instead of clearing
        "emit":       1,                                         # requantize and output C after this tile
        "relu":       1,
        "out_bits":   unsigned(cfg.act_bits.bit_length()),
        "bias":       data.ArrayLayout(signed(cfg.acc_bits), cfg.cols),
        "mult":       data.ArrayLayout(unsigned(cfg.mult_bits), cfg.cols),
        "shift":      data.ArrayLayout(unsigned(cfg.shift_bits), cfg.cols),
    })


class ArrayCore(wiring.Component):
    """Systolic array + per-column requantization + the sequencer that feeds them from streams.

    Streams (amaranth.lib.stream: payload, valid, ready)
        cmd  In   `command_layout`            one per tile
        act  In   rows x act_bits             K beats: A[:, k], raw bits, read as signed or unsigned per command
        wgt  In   cols x g                    K * D beats: digit j of W[k, :] at beat k * D + j, LSB digit first,
                                              D = ceil(max(col_bits) / g). Column c needs only its own
                                              ceil(col_bits[c] / g) digits to be meaningful: the core sign-extends
                                              the rest, so weights can be stored packed by their own bit width.
        out  Out  cols x act_bits             ``rows`` beats (row r of the requantized tile) when ``emit``
    Status
        busy    Out 1
        cycles  Out 32   cycles of the last completed tile, from the cycle after its command handshake to its last
                         output handshake (or its last flush cycle without ``emit``)
    """

    def __init__(self, cfg: HardwareConfig):
        self.cfg = cfg
        super().__init__({
            "cmd": In(stream.Signature(command_layout(cfg))),
            "act": In(stream.Signature(data.ArrayLayout(cfg.act_bits, cfg.rows))),
            "wgt": In(stream.Signature(data.ArrayLayout(cfg.digit_bits, cfg.cols))),
            "out": Out(stream.Signature(data.ArrayLayout(cfg.act_bits, cfg.cols))),
            "busy": Out(1),
            "cycles": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        g = cfg.digit_bits
        log2_g = g.bit_length() - 1
        digits_shape = unsigned(cfg.digits_max.bit_length())

        m.submodules.array = array = SystolicArray(cfg)
        requant = [RequantUnit(cfg) for _ in range(cfg.cols)]
        for c, unit in enumerate(requant):
            m.submodules[f"requant_{c}"] = unit

        # ---- the command being executed, and what the sequencer derives from it once at the handshake
        cmd = Signal(command_layout(cfg))
        col_digits = [Signal(digits_shape, name=f"col_digits_{c}") for c in range(cfg.cols)]
        col_top_bits = [Signal(range(g + 1), name=f"col_top_bits_{c}") for c in range(cfg.cols)]
        col_sign = [Signal(name=f"col_sign_{c}") for c in range(cfg.cols)]
        digits = Signal(digits_shape)                 # D: cycles per reduction step for this tile
        step = Signal(unsigned(cfg.k_bits))           # reduction step k
        digit = Signal(digits_shape)                  # digit index j within the step
        clear_pending = Signal()
        flush_left = Signal(range(cfg.rows + cfg.cols))
        # The feed register: operands for the array, one cycle after the streams. It keeps the sequencer's
        # counters and the per-column sign extension out of PE(0, 0)'s multiply-accumulate path.
        feed_act = Signal.like(array.act)
        feed_digits = Signal.like(array.digits)
        feed_first = Signal()
        feed_msb = Signal()
        feed_clr = Signal()
        feed_step = Signal()                          # the array takes one step with the registered operands
        issue_row = Signal(range(cfg.rows + 1))
        out_row = Signal(range(cfg.rows + 1))
        counter = Signal(32)

        new_col_digits = [(self.cmd.payload.col_bits[c] + (g - 1)) >> log2_g for c in range(cfg.cols)]

        # ---- the feed register, loaded from the streams (it steps the array only in FEED and FLUSH)
        first = digit == 0
        last_digit = digit == digits - 1
        go = Signal()
        for r in range(cfg.rows):
            raw = self.act.payload[r]
            m.d.sync += feed_act[r].eq(Mux(cmd.act_signed, raw.as_signed(), raw))
        for c in range(cfg.cols):
            raw = self.wgt.payload[c]
            top = col_top_bits[c]
            mask = Signal(g, name=f"top_mask_{c}")
            sign = Signal(name=f"top_sign_{c}")
            m.d.comb += [mask.eq((Const(1, g + 1) << top) - 1), sign.eq(raw.bit_select((top - 1).as_unsigned(), 1))]
            with m.If(digit < col_digits[c] - 1):
                m.d.sync += feed_digits[c].eq(raw)
            with m.Elif(digit == col_digits[c] - 1):
                m.d.sync += feed_digits[c].eq((raw & mask) | Mux(sign, ~mask, 0))
                with m.If(go):
                    m.d.sync += col_sign[c].eq(sign)
            with m.Else():
                m.d.sync += feed_digits[c].eq(Mux(col_sign[c], (1 << g) - 1, 0))

        # ---- drain: rows leave through the requantization units, one row per cycle
        pipe_en = self.out.ready | ~self.out.valid
        for c, unit in enumerate(requant):
            m.d.comb += [
                unit.en.eq(pipe_en),
                # A row multiplexer per column: indexing the whole array by row (acc[issue_row]) would make one
                # rows*cols*acc_bits-wide shifter that every column then slices.
                unit.acc.eq(Array(array.acc[r][c] for r in range(cfg.rows))[issue_row]),
                unit.bias.eq(cmd.bias[c]),
                unit.mult.eq(cmd.mult[c]),
                unit.shift.eq(cmd.shift[c]),
                unit.relu.eq(cmd.relu),
                unit.out_bits.eq(cmd.out_bits),
                self.out.payload[c].eq(unit.value),
            ]
        m.d.comb += self.out.valid.eq(requant[0].out_valid)

        m.d.comb += [
            array.en.eq(feed_step),
            array.clr.eq(feed_clr & feed_step),
            array.act.eq(feed_act),
            array.digits.eq(feed_digits),
            array.first.eq(feed_first),
            array.msb.eq(feed_msb),
        ]

        def finish():
            m.d.sync += self.cycles.eq(counter + 1)
            m.next = "IDLE"

        def after_flush():
            with m.If(cmd.emit):
                m.d.sync += [issue_row.eq(0), out_row.eq(0)]
                m.next = "DRAIN"
            with m.Else():
                finish()

        with m.FSM(name="sequencer") as fsm:
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    m.d.sync += [
                        cmd.eq(self.cmd.payload),
                        digits.eq(maximum(new_col_digits)),
                        step.eq(0), digit.eq(0),
                        clear_pending.eq(~self.cmd.payload.accumulate),
                        counter.eq(0),
                    ]
                    for c in range(cfg.cols):
                        m.d.sync += [
                            col_digits[c].eq(new_col_digits[c]),
                            col_top_bits[c].eq(self.cmd.payload.col_bits[c] - (new_col_digits[c] - 1) * g),
                        ]
                    m.next = "FEED"

            with m.State("FEED"):
                m.d.comb += [
                    go.eq(self.wgt.valid & (self.act.valid | ~first)),
                    self.wgt.ready.eq(go),
                    self.act.ready.eq(go & first),
                ]
                m.d.sync += [
                    feed_step.eq(go),
                    feed_clr.eq(clear_pending),
                    feed_first.eq(first),
                    feed_msb.eq(last_digit),
                ]
                with m.If(go):
                    m.d.sync += [clear_pending.eq(0), digit.eq(digit + 1)]
                    with m.If(last_digit):
                        m.d.sync += [digit.eq(0), step.eq(step + 1)]
                        with m.If(step == cmd.k - 1):
                            m.d.sync += flush_left.eq(fill_cycles(cfg))
                            m.next = "FLUSH"

            with m.State("FLUSH"):
                # Zero digits push the last operands through the skew lines to the far corner.
                # The array steps on the last beat, then on zero digits that push it through the skew lines to the
                # far corner; the last flush cycle latches no step, so the array is idle when the drain starts.
                m.d.sync += [
                    flush_left.eq(flush_left - 1),
                    feed_step.eq(flush_left != 1), feed_clr.eq(0), feed_digits.eq(0), feed_first.eq(0),
                    feed_msb.eq(0),
                ]
                with m.If(flush_left == 1):
                    after_flush()

            with m.State("DRAIN"):
                issuing = issue_row < cfg.rows
                for unit in requant:
                    m.d.comb += unit.in_valid.eq(issuing)
                with m.If(pipe_en & issuing):
                    m.d.sync += issue_row.eq(issue_row + 1)
                with m.If(self.out.valid & self.out.ready):
                    m.d.sync += out_row.eq(out_row + 1)
                    with m.If(out_row == cfg.rows - 1):
                        finish()

        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE"))
        with m.If(~fsm.ongoing("IDLE")):
            m.d.sync += counter.eq(counter + 1)
        return m


def maximum(values):
    """Balanced tree of comparisons: log2(n) levels instead of a chain of n."""
    values = list(values)
    while len(values) > 1:
        pairs = [Mux(a > b, a, b) for a, b in zip(values[0::2], values[1::2])]
        values = pairs + values[len(pairs) * 2:]
    return values[0]

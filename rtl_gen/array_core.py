"""`ArrayCore`: a tile in on valid/ready streams, the requantized C tile out, with its cycle count.

This is the datapath the controller drives: a tile command, then K activation vectors and K * D weight-digit
vectors, and (when the command asks for it) ``rows`` output vectors. A depthwise tile (``depthwise``) takes
``rows`` output pixels of one output row by ``cols`` channels, K = kh * kw taps; its activation vectors are input
pixels (``cols`` channels each) in window order (`codesign.hw.timing.depthwise_inputs`). The array is busy for exactly
`codesign.hw.timing.tile_cycles` after the command handshake; an emitting tile's sums then move to a held bank and
drain (`codesign.hw.timing.drain_cycles`) while the next tile feeds. The cost model is built on these formulas.
"""

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from codesign.hw.config import HardwareConfig
from codesign.hw.timing import DW_KERNEL_MAX, DW_STRIDES, fill_cycles
from rtl_gen.requant_unit import RequantUnit
from rtl_gen.systolic_array import SystolicArray


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
        "depthwise":  1,                                         # a depthwise tile (K = kh * kw taps)
        "kw":         unsigned(DW_KERNEL_MAX.bit_length()),      # depthwise: kernel width, 1..DW_KERNEL_MAX
        "stride":     unsigned(max(DW_STRIDES).bit_length()),    # depthwise: 1 or 2
        "bias":       data.ArrayLayout(signed(cfg.acc_bits), cfg.cols),
        "mult":       data.ArrayLayout(unsigned(cfg.mult_bits), cfg.cols),
        "shift":      data.ArrayLayout(unsigned(cfg.shift_bits), cfg.cols),
    })


class ArrayCore(wiring.Component):
    """Systolic array + per-column requantization + the sequencer that feeds them from streams.

    Streams (amaranth.lib.stream: payload, valid, ready)
        cmd  In   `command_layout`            one per tile
        act  In   max(rows, cols) x act_bits  K beats: A[:, k] in lanes 0..rows-1, raw bits, read as signed or
                                              unsigned per command. Depthwise: an input pixel's ``cols`` channels,
                                              `codesign.hw.timing.depthwise_inputs` beats in window order: per
                                              kernel row and stride phase, ``rows - 1`` preload beats (zero-digit
                                              steps, no weight beat) and then one beat per tap
        wgt  In   cols x g                    K * D beats: digit j of W[k, :] at beat k * D + j, LSB digit first,
                                              D = ceil(max(col_bits) / g). Column c needs only its own
                                              ceil(col_bits[c] / g) digits to be meaningful: the core sign-extends
                                              the rest, so weights can be stored packed by their own bit width.
        out  Out  cols x act_bits             ``rows`` beats (row r of the requantized tile) when ``emit``, in
                                              command order; they may come while the next tile feeds
    Status
        busy      Out 1    the array holds a tile: feed, flush, and for an emitting tile any wait for the held bank
        draining  Out 1    an emitted tile's rows are not all out yet
        cycles    Out 32   busy cycles of the last tile, from the cycle after its command handshake to its last flush
                           cycle (plus any wait for the held bank)
    """

    def __init__(self, cfg: HardwareConfig):
        self.cfg = cfg
        super().__init__({
            "cmd": In(stream.Signature(command_layout(cfg))),
            "act": In(stream.Signature(data.ArrayLayout(cfg.act_bits, max(cfg.rows, cfg.cols)))),
            "wgt": In(stream.Signature(data.ArrayLayout(cfg.digit_bits, cfg.cols))),
            "out": Out(stream.Signature(data.ArrayLayout(cfg.act_bits, cfg.cols))),
            "busy": Out(1),
            "draining": Out(1),
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
        # Depthwise: the window's preload beats left, and where the taps are: tap within the chain (one kernel row,
        # one stride phase), and the phase (odd taps of a stride-2 row come after the even ones).
        preload_left = Signal(range(cfg.rows + 1))
        tap = Signal(range(DW_KERNEL_MAX + 1))
        odd = Signal()
        # The feed register: operands for the array, one cycle after the streams. It keeps the sequencer's
        # counters and the per-column sign extension out of PE(0, 0)'s multiply-accumulate path.
        feed_act = Signal(data.ArrayLayout(signed(cfg.act_bits + 1), max(cfg.rows, cfg.cols)))
        feed_digits = Signal.like(array.digits)
        feed_first = Signal()
        feed_msb = Signal()
        feed_clr = Signal()
        feed_step = Signal()                          # the array takes one step with the registered operands
        counter = Signal(32)
        hold_pending = Signal()                       # the array holds an emitting tile's final sums, not yet copied

        # ---- the held bank: an emitted tile's sums and its requantization, so the array can take the next tile
        # while they drain (the next command overwrites ``cmd``)
        held = Signal()                               # the bank holds rows not yet out
        bank = [[Signal(signed(cfg.acc_bits), name=f"bank_{r}_{c}") for c in range(cfg.cols)]
                for r in range(cfg.rows)]
        held_bias = [Signal(signed(cfg.acc_bits), name=f"held_bias_{c}") for c in range(cfg.cols)]
        held_mult = [Signal(unsigned(cfg.mult_bits), name=f"held_mult_{c}") for c in range(cfg.cols)]
        held_shift = [Signal(unsigned(cfg.shift_bits), name=f"held_shift_{c}") for c in range(cfg.cols)]
        held_relu = Signal()
        held_out_bits = Signal(unsigned(cfg.act_bits.bit_length()))
        issued = Signal(range(cfg.rows + 1))
        out_row = Signal(range(cfg.rows))

        new_col_digits = [(self.cmd.payload.col_bits[c] + (g - 1)) >> log2_g for c in range(cfg.cols)]

        # ---- the feed register, loaded from the streams (it steps the array only in FEED and FLUSH)
        first = digit == 0
        last_digit = digit == digits - 1
        preloading = preload_left != 0
        go = Signal()
        for lane in range(max(cfg.rows, cfg.cols)):
            raw = self.act.payload[lane]
            m.d.sync += feed_act[lane].eq(Mux(cmd.act_signed, raw.as_signed(), raw))
        for c in range(cfg.cols):
            raw = self.wgt.payload[c]
            top = col_top_bits[c]
            mask = Signal(g, name=f"top_mask_{c}")
            sign = Signal(name=f"top_sign_{c}")
            m.d.comb += [mask.eq((Const(1, g + 1) << top) - 1), sign.eq(raw.bit_select((top - 1).as_unsigned(), 1))]
            with m.If(preloading):
                m.d.sync += feed_digits[c].eq(0)
            with m.Elif(digit < col_digits[c] - 1):
                m.d.sync += feed_digits[c].eq(raw)
            with m.Elif(digit == col_digits[c] - 1):
                m.d.sync += feed_digits[c].eq((raw & mask) | Mux(sign, ~mask, 0))
                with m.If(go):
                    m.d.sync += col_sign[c].eq(sign)
            with m.Else():
                m.d.sync += feed_digits[c].eq(Mux(col_sign[c], (1 << g) - 1, 0))

        # ---- drain: rows leave the bank through the requantization units, one row per cycle. The bank shifts up
        # a row per issue, so the units read row 0 and no row multiplexer sits between the sums and them.
        copy = Signal()                               # the sequencer moves the array's sums into the bank
        pipe_en = self.out.ready | ~self.out.valid
        issuing = held & (issued < cfg.rows)
        for c, unit in enumerate(requant):
            m.d.comb += [
                unit.en.eq(pipe_en),
                unit.in_valid.eq(issuing),
                unit.acc.eq(bank[0][c]),
                unit.bias.eq(held_bias[c]),
                unit.mult.eq(held_mult[c]),
                unit.shift.eq(held_shift[c]),
                unit.relu.eq(held_relu),
                unit.out_bits.eq(held_out_bits),
                self.out.payload[c].eq(unit.value),
            ]
        m.d.comb += self.out.valid.eq(requant[0].out_valid)
        with m.If(copy):
            m.d.sync += [held.eq(1), issued.eq(0), out_row.eq(0), held_relu.eq(cmd.relu),
                         held_out_bits.eq(cmd.out_bits)]
            for c in range(cfg.cols):
                m.d.sync += [held_bias[c].eq(cmd.bias[c]), held_mult[c].eq(cmd.mult[c]),
                             held_shift[c].eq(cmd.shift[c])]
            for r in range(cfg.rows):
                m.d.sync += [bank[r][c].eq(array.acc[r][c]) for c in range(cfg.cols)]
        with m.Else():
            with m.If(pipe_en & issuing):
                m.d.sync += issued.eq(issued + 1)
                for r in range(cfg.rows - 1):
                    m.d.sync += [bank[r][c].eq(bank[r + 1][c]) for c in range(cfg.cols)]
            with m.If(self.out.valid & self.out.ready):
                m.d.sync += out_row.eq(out_row + 1)
                with m.If(out_row == cfg.rows - 1):
                    m.d.sync += held.eq(0)

        m.d.comb += [array.act[r].eq(feed_act[r]) for r in range(cfg.rows)]
        m.d.comb += [array.col_act[c].eq(feed_act[c]) for c in range(cfg.cols)]
        m.d.comb += [
            array.en.eq(feed_step),
            array.clr.eq(feed_clr & feed_step),
            array.dw.eq(cmd.depthwise),
            array.digits.eq(feed_digits),
            array.first.eq(feed_first),
            array.msb.eq(feed_msb),
        ]

        with m.FSM(name="sequencer") as fsm:
            with m.State("IDLE"):
                # The array's sums are final one cycle after the flush: copy them now, unless the bank still
                # drains the previous tile; then wait, since the next tile would overwrite them. The copy and the
                # next command's handshake share the cycle (the array changes two cycles after a handshake).
                m.d.comb += [copy.eq(hold_pending & ~held), self.cmd.ready.eq(~hold_pending | ~held)]
                with m.If(copy):
                    m.d.sync += [hold_pending.eq(0), self.cycles.eq(counter)]
                with m.If(self.cmd.valid & self.cmd.ready):
                    m.d.sync += [
                        cmd.eq(self.cmd.payload),
                        digits.eq(maximum(new_col_digits)),
                        step.eq(0), digit.eq(0),
                        clear_pending.eq(~self.cmd.payload.accumulate),
                        counter.eq(0),
                        preload_left.eq(Mux(self.cmd.payload.depthwise, cfg.rows - 1, 0)),
                        tap.eq(0), odd.eq(0),
                    ]
                    for c in range(cfg.cols):
                        m.d.sync += [
                            col_digits[c].eq(new_col_digits[c]),
                            col_top_bits[c].eq(self.cmd.payload.col_bits[c] - (new_col_digits[c] - 1) * g),
                        ]
                    m.next = "FEED"

            with m.State("FEED"):
                # A preload beat is a one-cycle step with zero digits: it only moves the depthwise window.
                m.d.comb += [
                    go.eq(Mux(preloading, self.act.valid, self.wgt.valid & (self.act.valid | ~first))),
                    self.wgt.ready.eq(go & ~preloading),
                    self.act.ready.eq(go & (first | preloading)),
                ]
                m.d.sync += [
                    feed_step.eq(go),
                    feed_clr.eq(clear_pending),
                    feed_first.eq(first | preloading),
                    feed_msb.eq(last_digit | preloading),
                ]
                wide = cmd.stride == 2
                chain_taps = Mux(wide, Mux(odd, cmd.kw >> 1, (cmd.kw + 1) >> 1), cmd.kw)
                with m.If(go & preloading):
                    m.d.sync += [clear_pending.eq(0), preload_left.eq(preload_left - 1)]
                with m.Elif(go):
                    m.d.sync += [clear_pending.eq(0), digit.eq(digit + 1)]
                    with m.If(last_digit):
                        m.d.sync += [digit.eq(0), step.eq(step + 1), tap.eq(tap + 1)]
                        with m.If(step == cmd.k - 1):
                            m.d.sync += flush_left.eq(fill_cycles(cfg))
                            m.next = "FLUSH"
                        with m.Elif(cmd.depthwise & (tap == chain_taps - 1)):
                            # The chain is done: the next one (the odd taps, or the next kernel row) starts with a
                            # fresh window.
                            m.d.sync += [tap.eq(0), odd.eq(wide & ~odd & (cmd.kw > 1)),
                                         preload_left.eq(cfg.rows - 1)]

            with m.State("FLUSH"):
                # The array steps on the last beat, then on zero digits that push it through the skew lines to the
                # far corner; the last flush cycle latches no step, so the sums are final when IDLE copies them.
                m.d.sync += [
                    flush_left.eq(flush_left - 1),
                    feed_step.eq(flush_left != 1), feed_clr.eq(0), feed_digits.eq(0), feed_first.eq(0),
                    feed_msb.eq(0),
                ]
                with m.If(flush_left == 1):
                    with m.If(cmd.emit):
                        m.d.sync += hold_pending.eq(1)
                    with m.Else():
                        m.d.sync += self.cycles.eq(counter + 1)
                    m.next = "IDLE"

        m.d.comb += [self.busy.eq(~fsm.ongoing("IDLE") | (hold_pending & held)),
                     self.draining.eq(hold_pending | held)]
        with m.If(self.busy):
            m.d.sync += counter.eq(counter + 1)
        return m


def maximum(values):
    """Balanced tree of comparisons: log2(n) levels instead of a chain of n."""
    values = list(values)
    while len(values) > 1:
        pairs = [Mux(a > b, a, b) for a, b in zip(values[0::2], values[1::2])]
        values = pairs + values[len(pairs) * 2:]
    return values[0]

"""`ArrayCore`: a tile in on valid/ready streams, the requantized C tile out, with its cycle count.

This is the datapath the controller drives: a tile command, then K activation vectors and K * D weight-digit
vectors, and (when the command asks for it) ``rows`` output vectors. A depthwise tile (``depthwise``) takes
``rows`` output pixels of one output row by ``cols`` channels, K = kh * kw taps; its activation vectors are input
pixels (``cols`` channels each) in window order (`codesign.hw.timing.depthwise_inputs`).

Tiles are pipelined: the core feeds a tile for exactly `codesign.hw.timing.tile_cycles` after its command
handshake and takes the next command in the cycle after its last beat, while the last digits still cross the array.
An emitting tile's sums move into a held bank as its last digit passes each PE, and drain through the
requantization while the next tiles feed (`codesign.hw.timing.drain_cycles`). The cost model is built on these
formulas.
"""

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from codesign.hw.config import HardwareConfig
from codesign.hw.timing import DW_KERNEL_MAX, DW_STRIDES
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
        busy      Out 1    the core holds a tile whose operands are not all taken
        waiting   Out 1    an emitting tile waits at its last step for the held bank (a bubble, not counted)
        draining  Out 1    an emitted tile's sums are not all out yet
        cycles    Out 32   feed cycles of the last tile, from the cycle after its command handshake to its last beat,
                           without the waits
    """

    def __init__(self, cfg: HardwareConfig):
        self.cfg = cfg
        super().__init__({
            "cmd": In(stream.Signature(command_layout(cfg))),
            "act": In(stream.Signature(data.ArrayLayout(cfg.act_bits, max(cfg.rows, cfg.cols)))),
            "wgt": In(stream.Signature(data.ArrayLayout(cfg.digit_bits, cfg.cols))),
            "out": Out(stream.Signature(data.ArrayLayout(cfg.act_bits, cfg.cols))),
            "busy": Out(1),
            "waiting": Out(1),
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
        feed_dw = Signal()
        feed_cap = Signal()
        feed_step = Signal()                          # the array takes one step with the registered operands
        counter = Signal(32)
        capturing = Signal()                          # an emitting tile's sums are on their way into the bank

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

        # ---- the feed register, loaded from the streams
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
        with m.If(pipe_en & issuing):
            m.d.sync += issued.eq(issued + 1)
            for r in range(cfg.rows - 1):
                m.d.sync += [bank[r][c].eq(bank[r + 1][c]) for c in range(cfg.cols)]
        with m.If(self.out.valid & self.out.ready):
            m.d.sync += out_row.eq(out_row + 1)
            with m.If(out_row == cfg.rows - 1):
                m.d.sync += held.eq(0)
        # ---- capture: each PE's final sum moves into the bank the cycle after the tile's last digit left it, a
        # wave that follows the skew; the drain starts when it reaches PE(rows-1, cols-1). The last digit only
        # enters the array when the bank is free, so the wave and the drain never meet.
        for r in range(cfg.rows):
            for c in range(cfg.cols):
                with m.If(array.done[r][c]):
                    m.d.sync += bank[r][c].eq(array.acc[r][c])
        with m.If(array.done[cfg.rows - 1][cfg.cols - 1]):
            m.d.sync += [capturing.eq(0), held.eq(1), issued.eq(0), out_row.eq(0)]

        m.d.comb += [array.act[r].eq(feed_act[r]) for r in range(cfg.rows)]
        m.d.comb += [array.col_act[c].eq(feed_act[c]) for c in range(cfg.cols)]
        m.d.comb += [
            array.en.eq(feed_step),
            array.digits.eq(feed_digits),
            array.first.eq(feed_first), array.msb.eq(feed_msb), array.clr.eq(feed_clr), array.dw.eq(feed_dw),
            array.cap.eq(feed_cap),
        ]

        # The feed register carries a beat of the tile only when the sequencer takes one; in every other cycle it
        # steps the array with a bubble (zero digits, no tags), which moves the digits already inside on without
        # touching any sum, so a tile's last digits cross the array while the next tile feeds, or while none does.
        last_step = step == cmd.k - 1
        with m.If(~go):
            m.d.sync += [feed_step.eq(1), feed_first.eq(0), feed_msb.eq(0), feed_clr.eq(0), feed_dw.eq(0),
                         feed_cap.eq(0)]
            m.d.sync += [feed_digits[c].eq(0) for c in range(cfg.cols)]

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
                # An emitting tile's last step waits at its first digit (bubbles, a step boundary, so the array's
                # other digits still move) while the bank holds the previous emitting tile.
                m.d.comb += [
                    self.waiting.eq(cmd.emit & last_step & first & ~preloading & (capturing | held)),
                    go.eq(~self.waiting & Mux(preloading, self.act.valid,
                                              self.wgt.valid & (self.act.valid | ~first))),
                    self.wgt.ready.eq(go & ~preloading),
                    self.act.ready.eq(go & (first | preloading)),
                ]
                # A preload beat is a one-cycle step with zero digits: it only moves the depthwise window. Streams
                # that stall inside a step stall the array (a bubble there would shift the PEs' activations).
                with m.If(go):
                    m.d.sync += [
                        feed_step.eq(1),
                        feed_clr.eq(clear_pending),
                        feed_first.eq(first | preloading),
                        feed_msb.eq(last_digit | preloading),
                        feed_dw.eq(cmd.depthwise),
                        feed_cap.eq(cmd.emit & last_step & last_digit & ~preloading),
                    ]
                with m.Elif(~self.waiting):
                    m.d.sync += feed_step.eq(0)
                with m.If(~self.waiting):
                    m.d.sync += counter.eq(counter + 1)
                wide = cmd.stride == 2
                chain_taps = Mux(wide, Mux(odd, cmd.kw >> 1, (cmd.kw + 1) >> 1), cmd.kw)
                with m.If(go & preloading):
                    m.d.sync += [clear_pending.eq(0), preload_left.eq(preload_left - 1)]
                with m.Elif(go):
                    m.d.sync += [clear_pending.eq(0), digit.eq(digit + 1)]
                    with m.If(last_digit):
                        m.d.sync += [digit.eq(0), step.eq(step + 1), tap.eq(tap + 1)]
                        with m.If(last_step):
                            m.d.sync += self.cycles.eq(counter + 1)
                            with m.If(cmd.emit):
                                # The bank is free (the wait above): its requantization is this tile's from now.
                                m.d.sync += [capturing.eq(1), held_relu.eq(cmd.relu),
                                             held_out_bits.eq(cmd.out_bits)]
                                for c in range(cfg.cols):
                                    m.d.sync += [held_bias[c].eq(cmd.bias[c]), held_mult[c].eq(cmd.mult[c]),
                                                 held_shift[c].eq(cmd.shift[c])]
                            m.next = "IDLE"
                        with m.Elif(cmd.depthwise & (tap == chain_taps - 1)):
                            # The chain is done: the next one (the odd taps, or the next kernel row) starts with a
                            # fresh window.
                            m.d.sync += [tap.eq(0), odd.eq(wide & ~odd & (cmd.kw > 1)),
                                         preload_left.eq(cfg.rows - 1)]

        m.d.comb += [self.busy.eq(fsm.ongoing("FEED")), self.draining.eq(capturing | held)]
        return m


def maximum(values):
    """Balanced tree of comparisons: log2(n) levels instead of a chain of n."""
    values = list(values)
    while len(values) > 1:
        pairs = [Mux(a > b, a, b) for a, b in zip(values[0::2], values[1::2])]
        values = pairs + values[len(pairs) * 2:]
    return values[0]

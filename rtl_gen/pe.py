"""`PE`: one digit-serial multiply-accumulate cell of the output-stationary systolic array."""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from codesign.hw.config import HardwareConfig

#: The tags that travel with each weight digit (see `PE`).
TAGS = ("first", "msb", "clr", "dw", "cap")


class PE(wiring.Component):
    """Digit-serial MAC: ``acc += a * w``, with the weight arriving g = ``digit_bits`` bits per cycle.

    A reduction step with a D-digit weight takes D cycles, least significant digit first. The activation is taken at
    the first digit (``first``) and shifted left by g bits at every later digit, so the product of a digit is always
    ``a_shifted * digit`` and no per-PE barrel shifter is needed. The last digit (``msb``) is read as a signed g-bit
    number: it carries the negative weight of the two's-complement weight. With g = 8 and 8-bit weights every step is
    one cycle and the PE is a plain bit-parallel MAC.

    Every digit carries its tags down the column with it (``first``, ``msb``, ``clr``, ``dw``, ``cap``), so each PE
    sees a tile's mode, its fresh-sum start and its end exactly when its own digits get there: a tile can follow the
    previous one into the array while that one's digits still cross it (`rtl_gen.array_core`).

    In depthwise mode (``dw``) the activation comes from above (``a_top``) instead of from the left. The PE keeps the
    activations it took at its last two ``first`` digits and passes the older one (``a_prev``) down, so a column's
    activations move down one row per reduction step: a sliding window over one kernel row, where each PE of a
    column holds its own output pixel's input (see `rtl_gen.systolic_array`). It must be the older one because the
    step reaches the PE below a cycle later, and steps can be one cycle apart.

    Ports
        a_in / a_out       In / Out  signed(act_bits + 1)  activation from the left, registered to the right
        a_top              In        signed(act_bits + 1)  depthwise: the activation from above (its ``a_prev``)
        a_prev             Out       signed(act_bits + 1)  the activation taken at the last ``first`` digit but one
        digit_in / _out    In / Out  g                     weight digit from above, registered downward
        first_in / _out    In / Out  1                     this digit starts a reduction step (take ``a_in``)
        msb_in / _out      In / Out  1                     this digit is the weight's signed top digit
        clr_in / _out      In / Out  1                     start a fresh sum: this digit's product replaces ``acc``
        dw_in / _out       In / Out  1                     depthwise: this step takes ``a_top`` instead of ``a_in``
        cap_in / _out      In / Out  1                     this digit is its tile's last: its sum is final after it
        en                 In        1                     advance (the whole array stalls together)
        acc                Out       signed(acc_bits)      the output-stationary partial sum
        done               Out       1                     ``acc`` holds a finished tile's sum (the cycle after
                                                           ``cap``; the next tile's first digit may be taken in it)
    """

    def __init__(self, cfg: HardwareConfig):
        self.cfg = cfg
        act = signed(cfg.act_bits + 1)  # one extra bit so signed and unsigned activations share the datapath
        super().__init__({
            "a_in": In(act), "a_out": Out(act), "a_top": In(act), "a_prev": Out(act),
            "digit_in": In(cfg.digit_bits), "digit_out": Out(cfg.digit_bits),
            **{f"{tag}_{way}": port(1) for tag in TAGS for way, port in (("in", In), ("out", Out))},
            "en": In(1),
            "acc": Out(signed(cfg.acc_bits)), "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        g = cfg.digit_bits

        # The activation aligned with the current digit: at most (digits_max - 1) * g bits above the input.
        a_shifted = Signal(signed(cfg.act_bits + 1 + g * (cfg.digits_max - 1)))
        a_eff = Signal.like(a_shifted)
        a_new = Mux(self.dw_in, self.a_top, self.a_in)
        a_hold = Signal.like(self.a_in)
        m.d.comb += a_eff.eq(Mux(self.first_in, a_new, a_shifted << g))

        digit = Signal(signed(g + 1))
        m.d.comb += digit.eq(Mux(self.msb_in, self.digit_in.as_signed(), self.digit_in))

        product = Signal(signed(len(a_eff) + g + 1))
        m.d.comb += product.eq(a_eff * digit)

        with m.If(self.en & self.first_in):
            m.d.sync += [a_hold.eq(a_new), self.a_prev.eq(a_hold)]
        m.d.sync += self.done.eq(self.en & self.cap_in)
        with m.If(self.en):
            m.d.sync += [
                a_shifted.eq(a_eff),
                self.acc.eq(Mux(self.clr_in, 0, self.acc) + product),
                self.a_out.eq(self.a_in),
                self.digit_out.eq(self.digit_in),
            ]
            m.d.sync += [getattr(self, f"{tag}_out").eq(getattr(self, f"{tag}_in")) for tag in TAGS]
        return m

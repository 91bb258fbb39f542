"""`SystolicArray`: R x C output-stationary grid of digit-serial PEs with the input skew built in."""

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from codesign.hw.config import HardwareConfig
from rtl_gen.pe import PE, TAGS


class SystolicArray(wiring.Component):
    """Output-stationary array: PE(r, c) accumulates ``sum_k A[r, k] * W[k, c]``.

    Activations enter on the left and move one PE to the right per cycle; weight digits (with their ``first`` /
    ``msb`` tags) enter at the top and move one PE down per cycle. The caller presents *aligned* vectors: row r's
    activation and column c's digit for the same (step, digit) in the same cycle. Delay lines inside delay row r by r
    cycles and column c by c cycles, so PE(r, c) sees matching operands at cycle ``t + r + c``. After the last input
    the caller keeps ``en`` high with zero digits for ``rows + cols - 2`` cycles (the flush) and the sums are final.

    Depthwise mode (``dw``): channel c runs down column c and output pixel r on row r. Each ``first`` digit the
    column's activations move down a row (`rtl_gen.pe.PE`) and the top PE takes ``col_act[c]``, delayed ``c``
    cycles like its digit. If step n brings input ``x[n]``, PE(r, c) multiplies ``x[n - r]`` at step n: a column holds
    a window of ``rows`` consecutive inputs that slides one input per step, ``rows - 1`` zero-digit steps preload it,
    and then each step brings one new input per column, as many activations per cycle as the weights bring digits.
    Fed in decreasing pixel order with the taps reversed, row r computes output pixel r
    (`codesign.hw.timing.depthwise_chains`).

    Ports
        act     In   rows x signed(act_bits + 1)   aligned activations, read on ``first`` digits
        col_act In   cols x signed(act_bits + 1)   depthwise: each column's next input, read on ``first`` digits
        digits  In   cols x g                      aligned weight digits
        first   In   1                             the digits start a reduction step
        msb     In   1                             the digits are the weights' signed top digits
        clr     In   1                             the digits start fresh sums
        dw      In   1                             the digits belong to a depthwise tile
        cap     In   1                             the digits are their tile's last
        en      In   1                             advance the whole array (stall when low)
        acc     Out  rows x cols x signed(acc_bits)
        done    Out  rows x cols                   PE(r, c) holds its finished sum in ``acc`` this cycle
    """

    def __init__(self, cfg: HardwareConfig):
        self.cfg = cfg
        act = signed(cfg.act_bits + 1)
        super().__init__({
            "act": In(data.ArrayLayout(act, cfg.rows)),
            "col_act": In(data.ArrayLayout(act, cfg.cols)),
            "digits": In(data.ArrayLayout(cfg.digit_bits, cfg.cols)),
            **{tag: In(1) for tag in TAGS},
            "en": In(1),
            "acc": Out(data.ArrayLayout(data.ArrayLayout(signed(cfg.acc_bits), cfg.cols), cfg.rows)),
            "done": Out(data.ArrayLayout(data.ArrayLayout(1, cfg.cols), cfg.rows)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        pes = [[PE(cfg) for _ in range(cfg.cols)] for _ in range(cfg.rows)]
        for r, row in enumerate(pes):
            for c, pe in enumerate(row):
                m.submodules[f"pe_{r}_{c}"] = pe
                m.d.comb += [pe.en.eq(self.en), self.acc[r][c].eq(pe.acc), self.done[r][c].eq(pe.done)]

        # Left edge: row r's activation delayed r cycles; then each PE feeds its right neighbour.
        for r in range(cfg.rows):
            m.d.comb += pes[r][0].a_in.eq(self._delay(m, self.act[r], r, f"act_skew_{r}"))
            for c in range(1, cfg.cols):
                m.d.comb += pes[r][c].a_in.eq(pes[r][c - 1].a_out)

        # Top edge (depthwise): column c's next input delayed c cycles like its digit; then each PE feeds the one
        # below.
        for c in range(cfg.cols):
            m.d.comb += pes[0][c].a_top.eq(self._delay(m, self.col_act[c], c, f"col_act_skew_{c}"))
            for r in range(1, cfg.rows):
                m.d.comb += pes[r][c].a_top.eq(pes[r - 1][c].a_prev)

        # Top edge: column c's digit and tags delayed c cycles; then each PE feeds the one below.
        for c in range(cfg.cols):
            top = pes[0][c]
            m.d.comb += top.digit_in.eq(self._delay(m, self.digits[c], c, f"digit_skew_{c}"))
            m.d.comb += [getattr(top, f"{tag}_in").eq(self._delay(m, getattr(self, tag), c, f"{tag}_skew_{c}"))
                         for tag in TAGS]
            for r in range(1, cfg.rows):
                above, pe = pes[r - 1][c], pes[r][c]
                m.d.comb += pe.digit_in.eq(above.digit_out)
                m.d.comb += [getattr(pe, f"{tag}_in").eq(getattr(above, f"{tag}_out")) for tag in TAGS]
        return m

    def _delay(self, m: Module, value, cycles: int, name: str):
        """``value`` delayed by ``cycles`` enabled clock cycles (a shift register that stalls with the array)."""
        for i in range(cycles):
            stage = Signal.like(value, name=f"{name}_{i}")
            with m.If(self.en):
                m.d.sync += stage.eq(value)
            value = stage
        return value

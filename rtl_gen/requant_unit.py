"""`RequantUnit`: per-output-channel requantization, bit-exact with `codesign.reference.requantize`."""

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from codesign.config import HardwareConfig
from codesign.timing import REQUANT_LATENCY


class RequantUnit(wiring.Component):
    """``clamp(((acc + bias) * mult + round) >> shift)``: two pipeline stages, stalled together by ``en``.

    Stage 1 registers the product (the wide multiplier gets a cycle of its own); stage 2 adds the rounding constant
    ``2**(shift - 1)``, shifts arithmetically (round half up) and clamps to the output range, ``[0, 2**out_bits - 1]``
    with ``relu`` and ``[-2**(out_bits - 1), 2**(out_bits - 1) - 1]`` without. The output is the two's-complement
    ``act_bits``-wide activation of the next layer.

    Ports
        en          In   1                     advance the pipeline
        in_valid    In   1                     ``acc`` holds a value to requantize
        acc         In   signed(acc_bits)
        bias        In   signed(acc_bits)      per-channel parameters, held for the whole tile
        mult        In   mult_bits
        shift       In   shift_bits
        relu        In   1
        out_bits    In   bits of act_bits
        out_valid   Out  1                     two enabled cycles after ``in_valid``
        value       Out  act_bits
    """

    LATENCY = REQUANT_LATENCY

    def __init__(self, cfg: HardwareConfig):
        self.cfg = cfg
        super().__init__({
            "en": In(1),
            "in_valid": In(1),
            "acc": In(signed(cfg.acc_bits)),
            "bias": In(signed(cfg.acc_bits)),
            "mult": In(unsigned(cfg.mult_bits)),
            "shift": In(unsigned(cfg.shift_bits)),
            "relu": In(1),
            "out_bits": In(unsigned(cfg.act_bits.bit_length())),
            "out_valid": Out(1),
            "value": Out(cfg.act_bits),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg

        product = Signal(signed(cfg.acc_bits + 1 + cfg.mult_bits + 1))
        product_valid = Signal()
        with m.If(self.en):
            m.d.sync += [
                product.eq((self.acc + self.bias) * self.mult),
                product_valid.eq(self.in_valid),
            ]

        rounding = Signal(unsigned(cfg.shift_max))
        m.d.comb += rounding.eq(Mux(self.shift == 0, 0, (Const(1) << (self.shift - 1).as_unsigned())))
        scaled = Signal(signed(len(product) + 1))
        m.d.comb += scaled.eq((product + rounding) >> self.shift)

        top = Signal(signed(cfg.act_bits + 2))
        bottom = Signal(signed(cfg.act_bits + 2))
        m.d.comb += [
            top.eq(Mux(self.relu, (Const(1) << self.out_bits) - 1, (Const(1) << (self.out_bits - 1).as_unsigned()) - 1)),
            bottom.eq(Mux(self.relu, 0, -(Const(1) << (self.out_bits - 1).as_unsigned()))),
        ]
        with m.If(self.en):
            m.d.sync += self.out_valid.eq(product_valid)
            with m.If(scaled > top):
                m.d.sync += self.value.eq(top)
            with m.Elif(scaled < bottom):
                m.d.sync += self.value.eq(bottom)
            with m.Else():
                m.d.sync += self.value.eq(scaled)
        return m

"""`RequantUnit`: per-output-channel requantization, bit-exact with `codesign.hw.reference.requantize`."""

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from codesign.hw.config import HardwareConfig
from codesign.hw.timing import REQUANT_LATENCY


class RequantUnit(wiring.Component):
    """``clamp(((acc + bias) * mult + round) >> shift)`` in five pipeline stages, stalled together by ``en``.

    One operation per stage, so the unit is never the array's critical path: (1) add the bias, (2) multiply (the
    ``acc_bits`` x ``mult_bits`` product maps to DSP blocks), (3) add the rounding constant ``2**(shift - 1)``,
    (4) shift arithmetically (so the rounding is half up), (5) clamp to ``[0, 2**out_bits - 1]`` with ``relu`` and to
    ``[-2**(out_bits - 1), 2**(out_bits - 1) - 1]`` without. The output is the two's-complement ``act_bits``-wide
    activation of the next layer. The drain is not on the throughput path (one row per cycle either way), so the
    stages cost only their latency, which `codesign.hw.timing` counts.

    Ports
        en          In   1                     advance the pipeline
        in_valid    In   1                     ``acc`` holds a value to requantize
        acc         In   signed(acc_bits)
        bias        In   signed(acc_bits)      per-channel parameters, held for the whole tile
        mult        In   mult_bits
        shift       In   shift_bits            (these may change with a tile's first row, not after it)
        relu        In   1
        out_bits    In   bits of act_bits
        out_valid   Out  1                     ``LATENCY`` enabled cycles after ``in_valid``
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
        valid = [Signal(name=f"valid_{i}") for i in range(1, self.LATENCY)]

        biased = Signal(signed(cfg.acc_bits + 1))
        product = Signal(signed(cfg.acc_bits + 1 + cfg.mult_bits + 1))
        rounded = Signal(signed(len(product) + 1))
        scaled = Signal.like(rounded)

        # Per-tile constants, registered: the stages that use them (3 to 5) come two cycles after a row enters.
        rounding = Signal(unsigned(cfg.shift_max))
        shift = Signal.like(self.shift)
        top = Signal(signed(cfg.act_bits + 2))
        bottom = Signal(signed(cfg.act_bits + 2))
        m.d.sync += [
            rounding.eq(Mux(self.shift == 0, 0, Const(1) << (self.shift - 1).as_unsigned())),
            shift.eq(self.shift),
            top.eq(Mux(self.relu, (Const(1) << self.out_bits) - 1,
                       (Const(1) << (self.out_bits - 1).as_unsigned()) - 1)),
            bottom.eq(Mux(self.relu, 0, -(Const(1) << (self.out_bits - 1).as_unsigned()))),
        ]

        with m.If(self.en):
            m.d.sync += [
                valid[0].eq(self.in_valid),
                *(later.eq(earlier) for earlier, later in zip(valid, valid[1:])),
                self.out_valid.eq(valid[-1]),
                biased.eq(self.acc + self.bias),
                product.eq(biased * self.mult),
                rounded.eq(product + rounding),
                scaled.eq(rounded >> shift),
            ]
            with m.If(scaled > top):
                m.d.sync += self.value.eq(top)
            with m.Elif(scaled < bottom):
                m.d.sync += self.value.eq(bottom)
            with m.Else():
                m.d.sync += self.value.eq(scaled)
        return m

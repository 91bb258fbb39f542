"""Learned-step-size (LSQ) fake quantization with a straight-through estimator, and the requantization multiplier.

A quantizer maps ``v`` to ``s * clamp(round(v / s), qn, qp)``. Rounding is *half up* (``floor(x + 0.5)``), the rule
of `codesign.hw.reference.requantize`, so the fake-quant model and the integer model round alike. Gradients (Esser et
al., LSQ, ICLR 2020):

    d out / d v = 1 inside [qn, qp] (straight through), 0 outside
    d out / d s = round(v/s) - v/s inside, qn below, qp above      (then scaled by 1 / sqrt(numel * qp))

Weights are symmetric per output channel, ``qn = -2**(b-1)``, ``qp = 2**(b-1) - 1``, with the bit width ``b`` set per
channel (a group of G channels shares one width; the grouping is the search's business, the quantizer takes one
width per channel). Activations have one width and one step per layer; unsigned ``[0, 2**b - 1]`` after a ReLU,
signed otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from codesign.errors import InputError

BITS_MIN, BITS_MAX = 2, 8
INPUT_BITS = 8
INPUT_LEVELS = 255             # images in [0, 1] -> 8-bit unsigned pixels (step 1/255): uint8 data exactly
INPUT_STEP = 1.0 / INPUT_LEVELS


def check_bits(field: str, bits: Sequence[int]) -> tuple[int, ...]:
    values = tuple(int(b) for b in bits)
    if not values or any(not BITS_MIN <= b <= BITS_MAX for b in values):
        raise InputError(field, list(values), f"bit widths from {BITS_MIN} to {BITS_MAX}")
    return values


def round_half_up(x: torch.Tensor) -> torch.Tensor:
    return torch.floor(x + 0.5)


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round half up forward, identity backward."""
    return x + (round_half_up(x) - x).detach()


def scale_grad(x: torch.Tensor, factor: float) -> torch.Tensor:
    """``x`` forward, gradient times ``factor`` backward (LSQ's step-size gradient scale)."""
    return x * factor + (x - x * factor).detach()


def positive(step: torch.Tensor) -> torch.Tensor:
    """A learned step as used: its magnitude, kept away from 0 (a gradient step can push it through zero)."""
    return step.abs().clamp_min(1e-8)


def quant_range(bits: torch.Tensor, signed: bool) -> tuple[torch.Tensor, torch.Tensor]:
    bits = bits.to(torch.float32)
    if signed:
        return -torch.pow(2.0, bits - 1), torch.pow(2.0, bits - 1) - 1
    return torch.zeros_like(bits), torch.pow(2.0, bits) - 1


def lsq_quantize(v: torch.Tensor, step: torch.Tensor, qn: torch.Tensor, qp: torch.Tensor,
                 grad_factor) -> torch.Tensor:
    """Fake-quantize ``v`` with (broadcastable) ``step``, ``qn``, ``qp``; LSQ gradients for ``v`` and ``step``."""
    step = scale_grad(step, grad_factor)
    return torch.minimum(torch.maximum(round_ste(v / step), qn), qp) * step


def lsq_integer(v: torch.Tensor, step: torch.Tensor, qn: torch.Tensor, qp: torch.Tensor) -> torch.Tensor:
    """The integers of `lsq_quantize` (no gradient): what the export writes."""
    return torch.minimum(torch.maximum(round_half_up(v / step), qn), qp)


def input_integers(images: torch.Tensor) -> torch.Tensor:
    """The network's fixed 8-bit input quantization, as integers (float64, exact)."""
    return round_half_up(images.double() * INPUT_LEVELS).clamp(0, INPUT_LEVELS)


def input_fake_quant(images: torch.Tensor) -> torch.Tensor:
    return round_ste(images * INPUT_LEVELS).clamp(0, INPUT_LEVELS) / INPUT_LEVELS


def lsq_init_step(v: torch.Tensor, qp: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """LSQ's initial step ``2 * mean|v| / sqrt(qp)``, reduced over ``dims``."""
    mean = v.detach().abs().mean(dim=dims) if dims else v.detach().abs().mean()
    return (2 * mean / torch.sqrt(qp)).clamp_min(1e-8)


def max_abs_step(weight: torch.Tensor, qp) -> torch.Tensor:
    """Per output channel, the step that maps the channel's largest magnitude to ``qp`` (OHQ's MQE quantizer)."""
    return weight.detach().abs().flatten(1).amax(dim=1).clamp(min=1e-12) / qp


class WeightQuantizer(nn.Module):
    """Symmetric per-output-channel weight quantizer with one bit width per channel and a learned step per channel."""

    def __init__(self, bits: Sequence[int]):
        super().__init__()
        bits = check_bits("w_bits", bits)
        self.register_buffer("bits", torch.tensor(bits, dtype=torch.int64))
        self.step = nn.Parameter(torch.ones(len(bits)))
        self.register_buffer("initialized", torch.tensor(False))

    def _range(self, weight: torch.Tensor):
        shape = (-1,) + (1,) * (weight.dim() - 1)
        qn, qp = quant_range(self.bits, signed=True)
        return self.scale().view(shape), qn.view(shape), qp.view(shape)

    def scale(self) -> torch.Tensor:
        return positive(self.step)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if not self.initialized:
            with torch.no_grad():
                qp = quant_range(self.bits, signed=True)[1]
                self.step.copy_(lsq_init_step(weight, qp, tuple(range(1, weight.dim()))))
                self.initialized.fill_(True)
        step, qn, qp = self._range(weight)
        return lsq_quantize(weight, step, qn, qp, torch.rsqrt(weight[0].numel() * qp))

    def integer(self, weight: torch.Tensor) -> torch.Tensor:
        return lsq_integer(weight, *self._range(weight))


class ActQuantizer(nn.Module):
    """Per-layer activation quantizer: one bit width, one learned step; unsigned (after ReLU) or signed."""

    def __init__(self, bits: int, *, signed: bool):
        super().__init__()
        self.bits_value = check_bits("act_bits", [bits])[0]
        self.signed = signed
        self.step = nn.Parameter(torch.ones(()))
        self.register_buffer("initialized", torch.tensor(False))

    @property
    def qrange(self) -> tuple[torch.Tensor, torch.Tensor]:
        return quant_range(torch.tensor(self.bits_value), self.signed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        qn, qp = self.qrange
        if not self.initialized:
            with torch.no_grad():
                self.step.copy_(lsq_init_step(x, qp, ()))
                self.initialized.fill_(True)
        return lsq_quantize(x, self.scale(), qn, qp, 1.0 / math.sqrt(x[0].numel() * qp.item()))

    def scale(self) -> torch.Tensor:
        return positive(self.step)


def fixed_point_multiplier(ratio, mult_bits: int = 16, shift_max: int = 48) -> tuple[torch.Tensor, torch.Tensor]:
    """Integers ``mult < 2**mult_bits`` and ``shift <= shift_max`` with ``mult / 2**shift`` closest to ``ratio``.

    The multiplier is normalized to ``[2**(mult_bits-1), 2**mult_bits)`` so it keeps ``mult_bits`` significant bits;
    a ratio too small for ``shift_max`` takes the largest shift (losing precision), one too large is refused.
    """
    ratio = torch.as_tensor(ratio, dtype=torch.float64)
    if (ratio <= 0).any() or not torch.isfinite(ratio).all():
        raise InputError("requantization ratio", ratio.tolist(), "positive finite scale ratios")
    shift = torch.clamp(mult_bits - 1 - torch.floor(torch.log2(ratio)), 0, shift_max)
    mult = torch.floor(ratio * torch.pow(2.0, shift) + 0.5)
    # rounding can carry into the next power of two: renormalize
    over = mult >= 2 ** mult_bits
    mult = torch.where(over & (shift > 0), torch.floor(mult / 2 + 0.5), mult)
    shift = torch.where(over & (shift > 0), shift - 1, shift)
    if (mult >= 2 ** mult_bits).any():
        raise InputError("requantization ratio", ratio.max().item(),
                         f"a ratio below {2 ** mult_bits} (a {mult_bits}-bit multiplier with shift 0)")
    return mult.to(torch.int64), shift.to(torch.int64)

"""The integer reference: exactly what the accelerator computes for one GEMM.

``C = requantize(A @ W)`` where A is M x K activations (signed or unsigned, ``act_bits`` wide), W is K x N signed
weights whose bit width is set per output channel (column), the products are summed in a signed ``acc_bits``
accumulator, and each column n is requantized on the way out:

    x    = acc + bias[n]
    y    = (x * mult[n] + r) >> shift[n]      r = 2**(shift[n] - 1) if shift[n] > 0 else 0
    out  = clamp(y, lo, hi)                   relu: [0, 2**out_bits - 1]   else: [-2**(out_bits-1), 2**(out_bits-1) - 1]

``>>`` is an arithmetic (floor) shift, so the rounding rule is *round half up* (toward +infinity): 2.5 -> 3 and
-2.5 -> -2. It costs one adder in hardware and no sign logic, and the torch export reproduces it with
``floor(x * mult / 2**shift + 0.5)``. ReLU is folded into the clamp, so a ReLU layer's output is unsigned and the next
layer reads it as unsigned activations of ``out_bits``.

This module is the contract that the torch integer export, the compiler and the RTL testbenches all call; keep it
tiny and obvious. Everything is int64 numpy; ``HardwareConfig`` bounds every width so nothing can overflow int64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codesign.errors import InputError
from codesign.hw.config import HardwareConfig


@dataclass(frozen=True)
class Requant:
    """Per-output-channel requantization parameters of one GEMM (arrays of length N) and its output format."""

    bias: np.ndarray
    mult: np.ndarray
    shift: np.ndarray
    relu: bool
    out_bits: int

    def __post_init__(self) -> None:
        for name in ("bias", "mult", "shift"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=np.int64).reshape(-1))

    @property
    def out_range(self) -> tuple[int, int]:
        if self.relu:
            return 0, (1 << self.out_bits) - 1
        return -(1 << (self.out_bits - 1)), (1 << (self.out_bits - 1)) - 1

    def validate(self, cfg: HardwareConfig, n: int) -> None:
        for name in ("bias", "mult", "shift"):
            if getattr(self, name).shape != (n,):
                raise InputError(name, getattr(self, name).shape, f"one value per output channel ({n})")
        _check_array("bias", self.bias, -(1 << (cfg.acc_bits - 1)), (1 << (cfg.acc_bits - 1)) - 1)
        _check_array("mult", self.mult, 0, (1 << cfg.mult_bits) - 1)
        _check_array("shift", self.shift, 0, cfg.shift_max)
        if not 1 <= self.out_bits <= cfg.act_bits:
            raise InputError("out_bits", self.out_bits, f"an integer from 1 to act_bits={cfg.act_bits}")


def act_range(act_bits: int, signed: bool) -> tuple[int, int]:
    if signed:
        return -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1
    return 0, (1 << act_bits) - 1


def gemm_accumulate(cfg: HardwareConfig, a: np.ndarray, w: np.ndarray, w_bits, *, act_signed: bool) -> np.ndarray:
    """The accumulator contents after a GEMM: A (M x K) @ W (K x N), checked against every hardware bound."""
    a = np.asarray(a, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    if a.ndim != 2 or w.ndim != 2 or a.shape[1] != w.shape[0]:
        raise InputError("shapes", (a.shape, w.shape), "A of M x K and W of K x N")
    k, n = w.shape
    if not 1 <= k <= cfg.max_k:
        raise InputError("K", k, f"an integer from 1 to max_k={cfg.max_k}")
    w_bits = np.broadcast_to(np.asarray(w_bits, dtype=np.int64), (n,))
    if w_bits.min() < 1 or w_bits.max() > cfg.weight_bits_max:
        raise InputError("w_bits", w_bits.tolist(), f"integers from 1 to weight_bits_max={cfg.weight_bits_max}")
    _check_array("A", a, *act_range(cfg.act_bits, act_signed))
    lo, hi = -(1 << (w_bits - 1)), (1 << (w_bits - 1)) - 1
    bad = (w < lo) | (w > hi)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise InputError(f"W[{row}, {col}]", int(w[row, col]),
                         f"a signed {int(w_bits[col])}-bit integer (column {col}'s bit width)")
    return a @ w


def requantize(cfg: HardwareConfig, acc: np.ndarray, rq: Requant) -> np.ndarray:
    """Per-channel requantization of accumulator values (M x N) with the rounding rule of the module docstring."""
    acc = np.asarray(acc, dtype=np.int64)
    rq.validate(cfg, acc.shape[1])
    x = acc + rq.bias
    rounding = np.where(rq.shift > 0, np.left_shift(1, np.maximum(rq.shift - 1, 0)), 0)
    y = (x * rq.mult + rounding) >> rq.shift
    return np.clip(y, *rq.out_range)


def gemm_requant(cfg: HardwareConfig, a, w, w_bits, rq: Requant, *, act_signed: bool) -> np.ndarray:
    """The whole GEMM as the accelerator computes it: accumulate, then requantize per output channel."""
    return requantize(cfg, gemm_accumulate(cfg, a, w, w_bits, act_signed=act_signed), rq)


def _check_array(name: str, values: np.ndarray, lo: int, hi: int) -> None:
    bad = (values < lo) | (values > hi)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputError(f"{name}[{', '.join(map(str, index))}]", int(values[index]), f"an integer from {lo} to {hi}")


def depthwise_requant(cfg: HardwareConfig, x: np.ndarray, w: np.ndarray, w_bits, rq: Requant, *, stride: int,
                      padding: int, act_signed: bool) -> np.ndarray:
    """A depthwise convolution as the accelerator computes it: per channel, the GEMM of its zero-padded windows
    (images * out_h * out_w x kh * kw) by its taps, then requantized. ``x`` is images x channels x H x W, ``w``
    channels x kh x kw; the result images x channels x out_h x out_w."""
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    n, c, h, wd = x.shape
    kh, kw = w.shape[1:]
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oh, ow = (h + 2 * padding - kh) // stride + 1, (wd + 2 * padding - kw) // stride + 1
    windows = np.stack([xp[:, :, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride]
                        for i in range(kh) for j in range(kw)], axis=-1)          # n x c x oh x ow x taps
    bits = np.broadcast_to(np.asarray(w_bits, dtype=np.int64), (c,))
    acc = np.stack([gemm_accumulate(cfg, windows[:, ch].reshape(-1, kh * kw), w[ch].reshape(-1, 1), bits[ch:ch + 1],
                                    act_signed=act_signed)[:, 0] for ch in range(c)], axis=1)   # n*oh*ow x c
    return requantize(cfg, acc, rq).reshape(n, oh, ow, c).transpose(0, 3, 1, 2)

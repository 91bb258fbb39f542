"""Tiles for `ArrayCore`: the operands of one tile, their encoding into the core's stream beats, and decoding.

The command goes through the Amaranth layout of `rtl_gen.array_core`, so the testbench cannot drift from the RTL;
the operand words are the ISA's (`codesign.hw.operands`), as the compiler writes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from codesign.compiler.depthwise import tap_order
from codesign.hw.config import HardwareConfig
from codesign.hw.operands import digit_planes, pack_lanes, unpack_lanes
from codesign.hw.reference import Requant, act_range, gemm_accumulate, requantize
from codesign.hw.timing import depthwise_chains, depthwise_tile_cycles, tile_cycles
from rtl_gen.array_core import command_layout


@dataclass
class Tile:
    """A (rows x K) activations, W (K x cols) weights with per-column bit widths, and the tile's requantization.

    ``accumulate`` adds onto the sums the previous tile left in the array; ``emit`` requantizes and outputs them.
    ``filler_seed`` fills the weight digits above each column's own bit width with random bits: memory holds weights
    packed by their own width, and the core must ignore whatever lies above.
    """

    a: np.ndarray
    w: np.ndarray
    w_bits: np.ndarray
    requant: Requant
    act_signed: bool
    accumulate: bool = False
    emit: bool = True
    filler_seed: int | None = 0
    meta: dict = field(default_factory=dict)

    @property
    def k(self) -> int:
        return self.a.shape[1]

    def sums(self, cfg: HardwareConfig) -> np.ndarray:
        return gemm_accumulate(cfg, self.a, self.w, self.w_bits, act_signed=self.act_signed)


@dataclass
class DepthwiseTile:
    """``rows`` output pixels of one output row by ``cols`` channels of a depthwise convolution.

    ``x`` (cols x kh x width) is each channel's input window, width = (rows - 1) * stride + kw, padding included;
    ``w`` (kh * kw x cols) the taps, row-major (tap (i, j) is row i * kw + j). Output pixel r of channel c is
    ``sum_ij x[c, i, r * stride + j] * w[i * kw + j, c]``.
    """

    x: np.ndarray
    w: np.ndarray
    w_bits: np.ndarray
    requant: Requant
    act_signed: bool
    kh: int
    kw: int
    stride: int
    filler_seed: int | None = 0
    accumulate: bool = False
    emit: bool = True

    @property
    def k(self) -> int:
        return self.kh * self.kw

    @property
    def rows(self) -> int:
        return (self.x.shape[2] - self.kw) // self.stride + 1

    def inputs(self) -> np.ndarray:
        """The activation beats (pixels x cols) in window order: per chain (kernel row i, stride phase p), the
        pixels ``p + stride * n`` of input row i from the last down, ``rows - 1`` to fill the window and one per
        tap."""
        taps = iter(depthwise_chains(self.kh, self.kw, self.stride))
        beats = [self.x[:, i, p + self.stride * n]
                 for i in range(self.kh) for p in range(min(self.stride, self.kw))
                 for n in reversed(range(self.rows - 1 + next(taps)))]
        return np.array(beats, dtype=np.int64)

    def sums(self, cfg: HardwareConfig) -> np.ndarray:
        out = np.zeros((self.rows, cfg.cols), dtype=np.int64)
        for c in range(cfg.cols):
            a = np.array([[self.x[c, i, r * self.stride + j] for i in range(self.kh) for j in range(self.kw)]
                          for r in range(self.rows)], dtype=np.int64)
            out[:, c:c + 1] = gemm_accumulate(cfg, a, self.w[:, c:c + 1], self.w_bits[c:c + 1],
                                              act_signed=self.act_signed)
        return out


@dataclass(frozen=True)
class EncodedTile:
    command: int
    act_words: list[int]
    wgt_words: list[int]


def digits_of(cfg: HardwareConfig, tile: Tile | DepthwiseTile) -> int:
    return cfg.digits(int(np.max(tile.w_bits)))


def encode(cfg: HardwareConfig, tile: Tile | DepthwiseTile) -> EncodedTile:
    """The tile command and the payload words of the ``act`` and ``wgt`` streams."""
    rq = tile.requant
    depthwise = isinstance(tile, DepthwiseTile)
    command = command_layout(cfg).const({
        "k": tile.k,
        "col_bits": [int(b) for b in tile.w_bits],
        "act_signed": int(tile.act_signed),
        "accumulate": int(tile.accumulate),
        "emit": int(tile.emit),
        "relu": int(rq.relu),
        "out_bits": rq.out_bits,
        "bias": [int(x) for x in rq.bias],
        "mult": [int(x) for x in rq.mult],
        "shift": [int(x) for x in rq.shift],
        **({"depthwise": 1, "kw": tile.kw, "stride": tile.stride} if depthwise else {}),
    }).as_bits()

    if depthwise:
        act_words = pack_lanes(tile.inputs(), cfg.act_bits)               # an input pixel, channel c in lane c
        w = tile.w[tap_order(tile.kh, tile.kw, tile.stride)]
    else:
        act_words = pack_lanes(tile.a.T, cfg.act_bits)                   # word k: A[:, k], row r in lane r
        w = tile.w
    wgt_words = digit_planes(cfg, w, tile.w_bits, digits_of(cfg, tile), tile.filler_seed)
    return EncodedTile(command, act_words, wgt_words)


def decode_rows(cfg: HardwareConfig, words: list[int], relu: bool) -> np.ndarray:
    """Output beats (one word per row) back to integers: unsigned after ReLU, two's complement otherwise."""
    return unpack_lanes(words, cfg.act_bits, cfg.cols, signed=not relu)


def expected(cfg: HardwareConfig, tiles: list[Tile | DepthwiseTile]) -> list[np.ndarray | None]:
    """Reference output of each tile in a sequence (accumulating tiles add onto the previous sums)."""
    results, acc = [], None
    for tile in tiles:
        part = tile.sums(cfg)
        acc = part if not tile.accumulate or acc is None else acc + part
        results.append(requantize(cfg, acc, tile.requant) if tile.emit else None)
    return results


def expected_cycles(cfg: HardwareConfig, tile: Tile | DepthwiseTile) -> int:
    if isinstance(tile, DepthwiseTile):
        return depthwise_tile_cycles(cfg, tile.kh, tile.kw, tile.stride, int(np.max(tile.w_bits)))
    return tile_cycles(cfg, tile.k, int(np.max(tile.w_bits)))


def random_tile(cfg: HardwareConfig, rng: np.random.Generator, *, k: int, w_bits=None, act_signed=None,
                edge: bool = False, **flags) -> Tile:
    """A random tile; ``edge`` draws operands only from the extremes (most negative weight, largest activation, 0)."""
    if w_bits is None:
        w_bits = rng.integers(1, cfg.weight_bits_max + 1, cfg.cols)
    w_bits = np.broadcast_to(np.asarray(w_bits, dtype=np.int64), (cfg.cols,)).copy()
    if act_signed is None:
        act_signed = bool(rng.integers(2))
    a_lo, a_hi = act_range(cfg.act_bits, act_signed)
    w_lo, w_hi = -(np.int64(1) << (w_bits - 1)), (np.int64(1) << (w_bits - 1)) - 1
    if edge:
        a = rng.choice([a_lo, a_hi, 0], size=(cfg.rows, k))
        pick = rng.integers(0, 3, size=(k, cfg.cols))
        w = np.choose(pick, [np.broadcast_to(w_lo, (k, cfg.cols)), np.broadcast_to(w_hi, (k, cfg.cols)), 0])
    else:
        a = rng.integers(a_lo, a_hi + 1, size=(cfg.rows, k))
        w = rng.integers(w_lo, w_hi + 1, size=(k, cfg.cols))
    return Tile(a=a, w=w, w_bits=w_bits, requant=random_requant(cfg, rng, a, w, k), act_signed=act_signed,
                filler_seed=int(rng.integers(1 << 31)), **flags)


def random_requant(cfg: HardwareConfig, rng: np.random.Generator, a: np.ndarray, w: np.ndarray, k: int) -> Requant:
    """Requantization scaled so the values spread over the output range instead of all clamping."""
    out_bits = int(rng.integers(2, cfg.act_bits + 1))
    relu = bool(rng.integers(2))
    spread = max(1, int(np.abs(a).max(initial=1)) * int(np.abs(w).max(initial=1)) * max(1, int(np.sqrt(k))))
    shift = np.full(cfg.cols, min(cfg.shift_max, 16 + max(0, spread.bit_length() - out_bits)), dtype=np.int64)
    mult = rng.integers(1 << 15, 1 << 16, cfg.cols) & ((1 << cfg.mult_bits) - 1)
    bias_lim = 1 << min(cfg.acc_bits - 2, spread.bit_length())
    bias = rng.integers(-bias_lim, bias_lim, cfg.cols)
    return Requant(bias=bias, mult=mult, shift=shift, relu=relu, out_bits=out_bits)


def random_depthwise_tile(cfg: HardwareConfig, rng: np.random.Generator, *, kh: int, kw: int, stride: int,
                          w_bits=None, act_signed=None, pad: int = 0) -> DepthwiseTile:
    """A random depthwise tile; ``pad`` zeroes that many window columns at each end, as a padded border would."""
    if w_bits is None:
        w_bits = rng.integers(1, cfg.weight_bits_max + 1, cfg.cols)
    w_bits = np.broadcast_to(np.asarray(w_bits, dtype=np.int64), (cfg.cols,)).copy()
    if act_signed is None:
        act_signed = bool(rng.integers(2))
    width = (cfg.rows - 1) * stride + kw
    x = rng.integers(*act_range(cfg.act_bits, act_signed), endpoint=True, size=(cfg.cols, kh, width))
    if pad:
        x[:, :, :pad] = 0
        x[:, :, width - pad:] = 0
    w_lo, w_hi = -(np.int64(1) << (w_bits - 1)), (np.int64(1) << (w_bits - 1)) - 1
    w = rng.integers(w_lo, w_hi + 1, size=(kh * kw, cfg.cols))
    return DepthwiseTile(x=x, w=w, w_bits=w_bits, requant=random_requant(cfg, rng, x, w, kh * kw),
                         act_signed=act_signed, kh=kh, kw=kw, stride=stride, filler_seed=int(rng.integers(1 << 31)))

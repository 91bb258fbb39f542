"""Tiles for `ArrayCore`: the operands of one tile, their encoding into the core's stream beats, and decoding.

The command goes through the Amaranth layout of `rtl_gen.array_core`, so the testbench cannot drift from the RTL;
the operand words are the ISA's (`codesign.hw.operands`), as the compiler writes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from codesign.hw.config import HardwareConfig
from codesign.hw.operands import digit_planes, pack_lanes, unpack_lanes
from codesign.hw.reference import Requant, act_range, gemm_accumulate, requantize
from codesign.hw.timing import tile_cycles
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


@dataclass(frozen=True)
class EncodedTile:
    command: int
    act_words: list[int]
    wgt_words: list[int]


def digits_of(cfg: HardwareConfig, tile: Tile) -> int:
    return cfg.digits(int(np.max(tile.w_bits)))


def encode(cfg: HardwareConfig, tile: Tile) -> EncodedTile:
    """The tile command and the payload words of the ``act`` and ``wgt`` streams."""
    rq = tile.requant
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
    }).as_bits()

    act_words = pack_lanes(tile.a.T, cfg.act_bits)                       # word k: A[:, k], row r in lane r

    wgt_words = digit_planes(cfg, tile.w, tile.w_bits, digits_of(cfg, tile), tile.filler_seed)
    return EncodedTile(command, act_words, wgt_words)


def decode_rows(cfg: HardwareConfig, words: list[int], relu: bool) -> np.ndarray:
    """Output beats (one word per row) back to integers: unsigned after ReLU, two's complement otherwise."""
    return unpack_lanes(words, cfg.act_bits, cfg.cols, signed=not relu)


def expected(cfg: HardwareConfig, tiles: list[Tile]) -> list[np.ndarray | None]:
    """Reference output of each tile in a sequence (accumulating tiles add onto the previous sums)."""
    results, acc = [], None
    for tile in tiles:
        part = gemm_accumulate(cfg, tile.a, tile.w, tile.w_bits, act_signed=tile.act_signed)
        acc = part if not tile.accumulate or acc is None else acc + part
        results.append(requantize(cfg, acc, tile.requant) if tile.emit else None)
    return results


def expected_cycles(cfg: HardwareConfig, tile: Tile) -> int:
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
    out_bits = int(rng.integers(2, cfg.act_bits + 1))
    relu = bool(rng.integers(2))
    # Scale so the requantized values spread over the output range instead of all clamping.
    spread = max(1, int(np.abs(a).max(initial=1)) * int(np.abs(w).max(initial=1)) * max(1, int(np.sqrt(k))))
    shift = np.full(cfg.cols, min(cfg.shift_max, 16 + max(0, spread.bit_length() - out_bits)), dtype=np.int64)
    mult = rng.integers(1 << 15, 1 << 16, cfg.cols) & ((1 << cfg.mult_bits) - 1)
    bias_lim = 1 << min(cfg.acc_bits - 2, spread.bit_length())
    bias = rng.integers(-bias_lim, bias_lim, cfg.cols)
    requant = Requant(bias=bias, mult=mult, shift=shift, relu=relu, out_bits=out_bits)
    return Tile(a=a, w=w, w_bits=w_bits, requant=requant, act_signed=act_signed,
                filler_seed=int(rng.integers(1 << 31)), **flags)

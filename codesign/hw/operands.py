"""The operand encodings of the ISA: how values become the buffer words of `codesign.hw.isa` and back.

One definition for everything that writes or reads operands: the compiler lays programs' operands out with it, the
tile testbench feeds the bare array core with it, and outputs are decoded with it. The word sizes are
`codesign.hw.isa.word_bytes`; the layouts are the ISA's:

    lanes           a word of equal-width two's-complement values, element i in bits [i * width, (i + 1) * width):
                    an act word (``rows`` activations), an out word (``cols`` outputs)
    digit planes    K x cols weights as K * D words of ``cols`` g-bit digits, step major: word k * D + j holds
                    digit j (bits [j * g, (j + 1) * g)) of W[k, :]
    param record    per output channel, 8 bytes little-endian: bias int32, mult u16, shift u8, weight bits u8;
                    a param word is ``cols`` records, column 0 first
    words in DRAM   little-endian, one after another, padded to whole bus beats
"""

from __future__ import annotations

import numpy as np

from codesign.hw.config import HardwareConfig, ceil_div
from codesign.hw.isa import PARAM_RECORD_BYTES

#: The parameter record's fields, LSB first: (name, bytes, signed); `rtl_gen.compute_unit` slices a record so.
PARAM_RECORD_FIELDS = (("bias", 4, True), ("mult", 2, False), ("shift", 1, False), ("weight_bits", 1, False))
assert sum(size for _, size, _ in PARAM_RECORD_FIELDS) == PARAM_RECORD_BYTES


def pack_lanes(values: np.ndarray, width: int) -> list[int]:
    """One word per row of ``values``: element i in bits [i * width, (i + 1) * width), two's complement."""
    lanes = np.asarray(values, dtype=np.int64) & ((1 << width) - 1)
    words = np.zeros(lanes.shape[0], dtype=object)
    for lane in range(lanes.shape[1]):
        words += lanes[:, lane].astype(object) << (lane * width)
    return [int(w) for w in words]


def unpack_lanes(words: list[int], width: int, count: int, *, signed: bool) -> np.ndarray:
    """`pack_lanes` undone: ``count`` lanes of ``width`` bits per word, as a len(words) x count int64 array."""
    mask = (1 << width) - 1
    out = np.array([[(w >> (width * i)) & mask for i in range(count)] for w in words], dtype=np.int64)
    return np.where(out >= 1 << (width - 1), out - (1 << width), out) if signed else out


def digit_planes(cfg: HardwareConfig, w: np.ndarray, w_bits, d: int, filler_seed: int | None = None) -> list[int]:
    """K x cols weights as K * D words of ``cols`` g-bit digits: word k * D + j holds digit j of W[k, :].

    With ``filler_seed`` the bits above each column's own width are random: memory holds weights packed by their
    own width, and the core must ignore whatever lies above.
    """
    g = cfg.digit_bits
    bits = np.asarray(w_bits, dtype=np.int64)
    packed = np.asarray(w, dtype=np.int64) & ((np.int64(1) << bits) - 1)
    if filler_seed is not None:
        rng = np.random.default_rng(filler_seed)
        filler = rng.integers(0, 1 << min(62, d * g), size=packed.shape, dtype=np.int64)
        packed = packed | (filler & ~((np.int64(1) << bits) - 1))
    digit_shifts = g * np.arange(d, dtype=np.int64)
    digits = (packed[:, None, :] >> digit_shifts[None, :, None]) & ((1 << g) - 1)   # K x D x cols
    return pack_lanes(digits.reshape(packed.shape[0] * d, packed.shape[1]), g)


def param_record(bias: int, mult: int, shift: int, weight_bits: int) -> bytes:
    """One output channel's record (`PARAM_RECORD_FIELDS`); a value outside its field raises ``OverflowError``."""
    values = (bias, mult, shift, weight_bits)
    return b"".join(int(v).to_bytes(size, "little", signed=signed)
                    for v, (_, size, signed) in zip(values, PARAM_RECORD_FIELDS, strict=True))


def words_to_bytes(words: list[int], word_bytes: int, bus_bytes: int) -> bytes:
    """Words as they lie in DRAM: little-endian, ``word_bytes`` each, zero-padded to whole bus beats."""
    blob = b"".join(v.to_bytes(word_bytes, "little") for v in words)
    return blob + bytes(ceil_div(len(blob), bus_bytes) * bus_bytes - len(blob))

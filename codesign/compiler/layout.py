"""Where a program's operands lie in DRAM: the blocks of A and W, the parameter records, and the region C comes back to.

The host lays the operands out tile by tile, in the word encodings of `codesign.hw.operands` (im2col, when a
convolution is lowered, happens in this host layout: see `codesign.ir.layers`), columns in the mapping's channel
order. The slots of one K chunk are contiguous, so a block of consecutive tiles is one transfer. C comes back tile by
tile: one burst per array tile, which the host re-lays for the next layer as it does every operand. With
``row_major`` C is written row-major instead, with 2-D stores of one row per burst (when an output word is whole
bus beats): convenient for a host that reads C directly, but a burst per row is slow on a memory with latency.
`decode_c` undoes the layout and the channel permutation of the mapping.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from codesign.compiler.mapping import Plan
from codesign.hw import isa
from codesign.hw.config import ceil_div
from codesign.hw.operands import digit_planes, pack_lanes, param_record, unpack_lanes, words_to_bytes
from codesign.hw.reference import Requant

OPERAND_BASE = 0x100000       # operands start this far above the program
OUTPUT_FILL = 0xA5            # the output region starts as this pattern, so a missing store cannot pass
REGION_ALIGN = 64             # regions start on bus beats and at least on this many bytes


@dataclass(frozen=True)
class DramLayout:
    """The DRAM image of a program's data and the address of every block in it."""
    plan: Plan
    image: list[tuple[int, bytes]] = field(repr=False)   # (address, bytes): A, W, parameters, the output fill
    act: dict[tuple[int, int], int]                      # (row tile, K chunk) -> address of its activations
    wgt: dict[tuple[int, int], int]                      # (column tile, K chunk) -> address of its digit planes
    param: list[int]                                     # column tile -> address of its parameter word
    out_addr: int
    out_bytes: int
    row_major: bool
    out_word: int                                        # bytes of an out word (one row of an output tile)

    @property
    def c_row_bytes(self) -> int:
        """Bytes of one row of C in the row-major layout."""
        return self.plan.n_tiles * self.out_word

    @property
    def c_row_stride(self) -> int:
        """Bytes between consecutive rows of one output tile in the output region."""
        return self.c_row_bytes if self.row_major else self.out_word

    def decode(self, blob: bytes, *, signed: bool) -> np.ndarray:
        return decode_c(self, blob, signed=signed)

    def c_tile(self, i: int, j: int) -> int:
        """Offset of output tile (row tile ``i``, column tile ``j``) in the output region."""
        p = self.plan
        if self.row_major:
            return i * p.cfg.rows * self.c_row_bytes + j * self.out_word
        return (i * p.n_tiles + j) * p.out_slot


class _Allocator:
    """Regions placed one after another from ``cursor``, each aligned (`REGION_ALIGN`, bus beats)."""

    def __init__(self, cursor: int, bus: int):
        self.cursor, self.align, self.image = cursor, max(bus, REGION_ALIGN), []

    def place(self, blob: bytes) -> int:
        addr = self.cursor
        self.image.append((addr, blob))
        self.cursor += ceil_div(len(blob), self.align) * self.align
        return addr

    def region(self, blobs: list[bytes]) -> list[int]:
        """Contiguous slots (a block is then one transfer)."""
        joined = self.place(b"".join(blobs))
        offsets = np.cumsum([0] + [len(b) for b in blobs[:-1]])
        return [joined + int(o) for o in offsets]


def column_bits(p: Plan, bits) -> np.ndarray:
    """Weight bits of every array column in the mapping's order; padding columns count as 1-bit zero weights."""
    col_bits = np.ones(p.n_tiles * p.cfg.cols, dtype=np.int64)
    col_bits[:p.gemm.n] = np.asarray(bits)[np.asarray(p.permutation)]
    return col_bits


def act_slots(p: Plan, a: np.ndarray) -> list[list[bytes]]:
    """Per K chunk, per row tile: its activations, one act word per reduction step, padded to the slot."""
    cfg, words = p.cfg, isa.word_bytes(p.cfg)
    a_pad = np.zeros((p.m_tiles * cfg.rows, p.gemm.k), dtype=np.int64)
    a_pad[:p.gemm.m] = a
    return [[words_to_bytes(pack_lanes(a_pad[i * cfg.rows:(i + 1) * cfg.rows, k0:k1].T, cfg.act_bits),
                            words.act, words.bus).ljust(p.act_slot, b"\0") for i in range(p.m_tiles)]
            for k0, k1 in p.chunks]


def wgt_slots(p: Plan, w: np.ndarray, col_bits: np.ndarray) -> list[list[bytes]]:
    """Per K chunk, per column tile: its digit planes (the bits above a column's own width random)."""
    cfg, words = p.cfg, isa.word_bytes(p.cfg)
    w_pad = np.zeros((p.gemm.k, p.n_tiles * cfg.cols), dtype=np.int64)
    w_pad[:, :p.gemm.n] = w[:, np.asarray(p.permutation)]
    chunks = []
    for c, (k0, k1) in enumerate(p.chunks):
        blobs = []
        for j in range(p.n_tiles):
            cols = slice(j * cfg.cols, (j + 1) * cfg.cols)
            planes = digit_planes(cfg, w_pad[k0:k1, cols], col_bits[cols], cfg.digits(p.tile_bits[j]),
                                  filler_seed=j * 31 + c)
            blobs.append(words_to_bytes(planes, words.wgt, words.bus))
        chunks.append(blobs)
    return chunks


def param_words(p: Plan, requant: Requant, col_bits: np.ndarray) -> list[bytes]:
    """Per column tile, its parameter word: one record per column (zeros for padding columns), padded to the slot."""
    cfg, n = p.cfg, p.gemm.n
    words = []
    for j in range(p.n_tiles):
        word = bytearray()
        for col in range(j * cfg.cols, (j + 1) * cfg.cols):
            src = p.permutation[col] if col < n else None
            word += param_record(requant.bias[src] if src is not None else 0,
                                 requant.mult[src] if src is not None else 0,
                                 requant.shift[src] if src is not None else 0, col_bits[col])
        words.append(bytes(word).ljust(p.param_slot, b"\0"))
    return words


def output_bytes(p: Plan, *, row_major: bool) -> int:
    """Size of the output region: whole array tiles, in either layout."""
    if row_major:
        return p.m_tiles * p.cfg.rows * p.n_tiles * isa.word_bytes(p.cfg).out
    return p.m_tiles * p.n_tiles * p.out_slot


def lay_out(p: Plan, a: np.ndarray, w: np.ndarray, bits, requant: Requant, *, base: int,
            row_major: bool) -> DramLayout:
    """The operands of ``requant(A @ W)`` placed from ``base + OPERAND_BASE``: for each K chunk the row tiles' A
    (one region), then for each K chunk the column tiles' W, the parameter words, and the output region filled
    with `OUTPUT_FILL`."""
    memory = _Allocator(base + OPERAND_BASE, isa.word_bytes(p.cfg).bus)
    col_bits = column_bits(p, bits)
    act = {(i, c): addr for c, blobs in enumerate(act_slots(p, a)) for i, addr in enumerate(memory.region(blobs))}
    wgt = {(j, c): addr for c, blobs in enumerate(wgt_slots(p, w, col_bits))
           for j, addr in enumerate(memory.region(blobs))}
    param = memory.region(param_words(p, requant, col_bits))
    out_bytes = output_bytes(p, row_major=row_major)
    out_addr = memory.place(bytes([OUTPUT_FILL]) * out_bytes)
    return DramLayout(plan=p, image=memory.image, act=act, wgt=wgt, param=param, out_addr=out_addr,
                      out_bytes=out_bytes, row_major=row_major, out_word=isa.word_bytes(p.cfg).out)


def decode_c(layout: DramLayout, blob: bytes, *, signed: bool) -> np.ndarray:
    """The output region's bytes -> C[M, N] in the GEMM's own channel order."""
    p = layout.plan
    cfg, out_word = p.cfg, layout.out_word
    c_out = np.zeros((p.m_tiles * cfg.rows, p.n_tiles * cfg.cols), dtype=np.int64)
    for i in range(p.m_tiles):
        for j in range(p.n_tiles):
            rows = [layout.c_tile(i, j) + r * layout.c_row_stride for r in range(cfg.rows)]
            c_out[i * cfg.rows:(i + 1) * cfg.rows, j * cfg.cols:(j + 1) * cfg.cols] = unpack_lanes(
                [int.from_bytes(blob[at:at + out_word], "little") for at in rows], cfg.act_bits, cfg.cols,
                signed=signed)
    result = np.empty((p.gemm.m, p.gemm.n), dtype=np.int64)
    result[:, np.asarray(p.permutation)] = c_out[:p.gemm.m, :p.gemm.n]
    return result


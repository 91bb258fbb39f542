"""The mapping space of one GEMM on one accelerator: how the compiler tiles it, in which order, and what fits.

A layer lowers to a GEMM ``C[M, N] = A[M, K] @ W[K, N]`` (`codesign.ir.layers`). The array computes one tile of
``rows`` x ``cols`` outputs at a time and holds its sums until they are drained, so a tile's reduction must run in
consecutive COMPUTE commands. A mapping chooses:

    bm, bn      array tiles per buffer block: an activation block is ``bm`` row tiles (``bm * rows`` rows of A),
                a weight block ``bn`` column tiles; every block is double-buffered
    kc          the K chunk held per load. ``kc == K``: blocks stay resident and are reused; ``kc < K`` (K too big
                for the buffers): each array tile loads its chunks of A and W in turn (bm = bn = 1); the chunks
                tried are the largest that fits and its halvings
    order       ``"weights"``: weight blocks outer, activation blocks stream past each (weight-stationary);
                ``"acts"``: activation blocks outer, weight blocks stream (input-stationary)
    group       output channels sorted by weight bits, so each column tile pays for its own widest column; the
                permutation is recorded and the next layer's input order absorbs it

A mapping is valid when two blocks of each operand fit their buffer (`check_fits`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from codesign.errors import InputError
from codesign.hw import isa
from codesign.hw.config import HardwareConfig, ceil_div
from codesign.hw.timing import DW_KERNEL_MAX, DW_STRIDES

ORDERS = ("weights", "acts")
MAX_ROW_BYTES = 1 << 15        # DMA rows are split at 32 KiB (the command's row_bytes field is 16 bits)
K_SPLITS = 6                   # K chunks tried when K does not fit: the largest that fits and five halvings


@dataclass(frozen=True)
class Mapping:
    bm: int = 1
    bn: int = 1
    kc: int = 0                 # 0: the whole K
    order: str = "weights"
    group: bool = True

    def __post_init__(self) -> None:
        if self.order not in ORDERS:
            raise InputError("mapping.order", self.order, f"one of {list(ORDERS)}")
        for name in ("bm", "bn"):
            if getattr(self, name) < 1:
                raise InputError(f"mapping.{name}", getattr(self, name), "a positive number of array tiles")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Window:
    """A depthwise convolution's geometry: ``images`` of ``height`` x ``width``, a ``kernel`` (kh, kw) at ``stride``
    with ``padding`` zeros on every side. It runs on the array's depthwise mode (`codesign.compiler.depthwise`)."""
    height: int
    width: int
    kernel: tuple[int, int]
    stride: int
    padding: int
    images: int = 1

    def __post_init__(self) -> None:
        kh, kw = self.kernel
        for name, value, lo, hi in (("kernel height", kh, 1, DW_KERNEL_MAX), ("kernel width", kw, 1, DW_KERNEL_MAX),
                                    ("padding", self.padding, 0, min(kh, kw) - 1)):
            if not lo <= value <= hi:
                raise InputError(f"depthwise {name}", value, f"an integer from {lo} to {hi}")
        if self.stride not in DW_STRIDES:
            raise InputError("depthwise stride", self.stride, f"one of {list(DW_STRIDES)}")
        if self.out_h < 1 or self.out_w < 1:
            raise InputError("depthwise input", (self.height, self.width), "at least the kernel, padding included")

    @property
    def out_h(self) -> int:
        return (self.height + 2 * self.padding - self.kernel[0]) // self.stride + 1

    @property
    def out_w(self) -> int:
        return (self.width + 2 * self.padding - self.kernel[1]) // self.stride + 1


@dataclass(frozen=True)
class Gemm:
    """The GEMM of one layer (or of one group of a grouped conv): shapes and per-output-channel weight bits.

    With a ``window`` it is a depthwise layer: ``M = images * out_h * out_w`` output pixels, ``K = kh * kw`` taps and
    ``N`` channels, each channel's column reading only its own input channel.
    """
    m: int
    k: int
    n: int
    bits: tuple[int, ...]       # per output channel, length n
    window: Window | None = None

    def __post_init__(self) -> None:
        if len(self.bits) != self.n:
            raise InputError("gemm.bits", len(self.bits), f"one bit width per output channel ({self.n})")
        w = self.window
        if w is not None and (self.m, self.k) != (w.images * w.out_h * w.out_w, w.kernel[0] * w.kernel[1]):
            raise InputError("gemm (M, K)", (self.m, self.k), "images * out_h * out_w and kh * kw of its window")


@dataclass(frozen=True)
class Plan:
    """What a mapping implies for one GEMM on one config: the geometry the compiler emits and the model prices."""
    cfg: HardwareConfig
    gemm: Gemm
    mapping: Mapping
    permutation: tuple[int, ...]        # column order: output channel permutation[j] is computed in column j
    tile_bits: tuple[int, ...]          # widest weight bits per column tile
    m_tiles: int
    n_tiles: int
    chunks: tuple[tuple[int, int], ...]  # K ranges
    act_slot: int                       # bytes of one row tile's activations (one chunk), bus-aligned
    act_chunks: tuple[int, ...]         # [chunk] bytes of those a load moves: a shorter last chunk, not its padding
    wgt_slots: tuple[tuple[int, ...], ...]  # [column tile][chunk] bytes of digit planes, bus-aligned
    param_slot: int
    out_slot: int                       # bytes of one array tile's output rows, bus-aligned
    row_major_possible: bool            # C can go to DRAM row-major with 2-D stores (output word = whole beats)

    @property
    def resident(self) -> bool:
        return len(self.chunks) == 1

    def act_block_bytes(self) -> int:
        return self.mapping.bm * self.act_slot

    def wgt_block_bytes(self) -> int:
        """The largest weight block (blocks differ when column tiles have different widths)."""
        bn = self.mapping.bn
        per_tile = [max(slots) for slots in self.wgt_slots]
        return max(sum(per_tile[j:j + bn]) for j in range(0, self.n_tiles, bn))


def plan(cfg: HardwareConfig, gemm: Gemm, mapping: Mapping) -> Plan:
    """The geometry of ``mapping`` (not yet checked against the buffers: see `check_fits`)."""
    words = isa.word_bytes(cfg)
    bus = words.bus
    bits = np.asarray(gemm.bits, dtype=np.int64)
    permutation = np.argsort(bits, kind="stable") if mapping.group else np.arange(gemm.n)
    n_tiles = ceil_div(gemm.n, cfg.cols)
    padded = np.ones(n_tiles * cfg.cols, dtype=np.int64)      # padding columns: 1-bit zero weights
    padded[:gemm.n] = bits[permutation]
    tile_bits = tuple(int(padded[j * cfg.cols:(j + 1) * cfg.cols].max()) for j in range(n_tiles))
    kc = gemm.k if mapping.kc in (0, gemm.k) else mapping.kc
    chunks = tuple((k0, min(k0 + kc, gemm.k)) for k0 in range(0, gemm.k, kc))
    return Plan(
        cfg=cfg, gemm=gemm, mapping=mapping, permutation=tuple(int(p) for p in permutation), tile_bits=tile_bits,
        m_tiles=ceil_div(gemm.m, cfg.rows), n_tiles=n_tiles, chunks=chunks,
        act_slot=ceil_div(kc * words.act, bus) * bus,
        act_chunks=tuple(ceil_div((k1 - k0) * words.act, bus) * bus for k0, k1 in chunks),
        wgt_slots=tuple(tuple(ceil_div((k1 - k0) * cfg.digits(b) * words.wgt, bus) * bus for k0, k1 in chunks)
                        for b in tile_bits),
        param_slot=ceil_div(words.param, bus) * bus,
        out_slot=ceil_div(cfg.rows * words.out, bus) * bus,
        row_major_possible=words.out % bus == 0 and words.out * 8 == cfg.cols * cfg.act_bits,
    )


def fit_problem(p: Plan) -> str | None:
    """Why ``p`` does not fit the buffers (double-buffered), or None when it does."""
    cfg, mp = p.cfg, p.mapping
    if not p.resident and (mp.bm, mp.bn) != (1, 1):
        return "a K split needs bm = bn = 1 (the array holds one tile's sums)"
    if mp.kc > p.gemm.k or mp.kc > cfg.max_k or (mp.kc == 0 and p.gemm.k > cfg.max_k):
        return f"K chunk {mp.kc or p.gemm.k} exceeds max_k={cfg.max_k}"
    if mp.bm > p.m_tiles or mp.bn > p.n_tiles:
        return "a block larger than the whole GEMM"
    needs = (("act_buf_bytes", p.act_block_bytes()), ("wgt_buf_bytes", p.wgt_block_bytes()),
             ("param_buf_bytes", mp.bn * p.param_slot), ("out_buf_bytes", p.out_slot))
    for name, block in needs:
        if 2 * block > getattr(cfg, name):
            return f"{name}={getattr(cfg, name)} holds less than two blocks of {block} bytes"
    return None


def check_fits(p: Plan, layer: str = "gemm") -> None:
    problem = fit_problem(p)
    if problem:
        raise InputError(f"{layer} (M={p.gemm.m} K={p.gemm.k} N={p.gemm.n}) mapping {p.mapping.to_dict()}",
                         problem, "a mapping whose double-buffered blocks fit the buffers")


def _extents(limit: int) -> list[int]:
    """Powers of two up to ``limit``, and ``limit`` itself."""
    values, v = [], 1
    while v < limit:
        values.append(v)
        v *= 2
    return values + [limit]


def enumerate_mappings(cfg: HardwareConfig, gemm: Gemm) -> list[Mapping]:
    """Every valid mapping of ``gemm`` on ``cfg`` in the space described above (block extents: powers of two and
    the whole dimension; K chunks: the whole K, else the largest that fits and its halvings)."""
    m_tiles, n_tiles = ceil_div(gemm.m, cfg.rows), ceil_div(gemm.n, cfg.cols)
    found = []
    for group in (True, False):
        if not group and len(set(gemm.bits)) == 1:
            continue                                   # the same mapping: nothing to sort
        for order in ORDERS:
            for bm in _extents(m_tiles):
                for bn in _extents(n_tiles):
                    mapping = Mapping(bm=bm, bn=bn, kc=0, order=order, group=group)
                    if fit_problem(plan(cfg, gemm, mapping)) is None:
                        found.append(mapping)
        largest = _largest_chunk(cfg, gemm, group)
        for halving in range(K_SPLITS):
            kc = largest >> halving
            if 1 <= kc < gemm.k:
                found.append(Mapping(bm=1, bn=1, kc=kc, order="weights", group=group))
    return found


def _largest_chunk(cfg: HardwareConfig, gemm: Gemm, group: bool) -> int:
    lo, hi = 0, min(gemm.k, cfg.max_k)
    while lo < hi:                                     # fit is monotone in the chunk
        mid = (lo + hi + 1) // 2
        if fit_problem(plan(cfg, gemm, Mapping(kc=mid, group=group))) is None:
            lo = mid
        else:
            hi = mid - 1
    return lo


def simple_mapping(cfg: HardwareConfig, gemm: Gemm, name: str = "gemm") -> Mapping:
    """The simplest mapping: one array tile per block, weight-stationary, the whole K when it fits and the largest K
    chunk otherwise. A baseline for the cost model to beat, and `codesign sim gemm --system`'s default."""
    if fit_problem(plan(cfg, gemm, Mapping())) is None:
        return Mapping()
    kc = _largest_chunk(cfg, gemm, True)
    if kc < 1:
        check_fits(plan(cfg, gemm, Mapping(kc=1)), name)
    return Mapping(kc=kc)

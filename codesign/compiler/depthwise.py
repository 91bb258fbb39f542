"""A depthwise convolution lowered to DW_COMPUTE tiles: the plan, the DRAM layout and the schedule of its program.

A depthwise layer runs on the array's depthwise mode (`rtl_gen.systolic_array`): a tile is ``rows`` consecutive
output pixels of one output row by ``cols`` channels, its K = kh * kw taps. The input is windowed on chip, so each
input activation crosses the bus about once:

    frame   per channel group (``cols`` channels, sorted by weight bits so each group pays for its own widest) and
            image, the zero-padded input as rows of pixel words (`codesign.hw.isa`), each row padded to whole bus
            beats; the frame is as wide as the last tile's window needs
    band    a step loads ``band_in`` consecutive frame rows into an activation buffer half (one transfer) and runs
            every tile of the ``band_out`` output rows they hold; consecutive bands overlap by ``kh - stride``
            rows, which is all that is read twice
    strip   when not even ``kh`` whole frame rows fit a buffer half, a band is cut into strips of
            ``strip_tiles`` tiles' windows (one 2-D transfer each, starting on a bus beat), which overlap by
            their windows' halo
    groups  outer: a group's weights and parameters are loaded once, into the half of its group's parity, while its
            bands stream

The output comes back tile by tile (one burst per tile), in the order [group][image][output row][x tile]. The
dependency tokens are the GEMM programs' (`codesign.compiler.program.emit_commands`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codesign.compiler.layout import OPERAND_BASE, OUTPUT_FILL, _Allocator
from codesign.compiler.mapping import Gemm, Window
from codesign.compiler.schedule import Halves, Load, Schedule, Step, TileCompute, _number_outputs, out_slots
from codesign.errors import InputError
from codesign.hw import isa
from codesign.hw.config import HardwareConfig, ceil_div
from codesign.hw.operands import digit_planes, pack_lanes, param_record, unpack_lanes, words_to_bytes
from codesign.hw.reference import Requant
from codesign.hw.timing import depthwise_tile_cycles


@dataclass(frozen=True)
class DepthwisePlan:
    """The geometry of a depthwise layer on one config: what the compiler emits and the cost model prices."""
    cfg: HardwareConfig
    gemm: Gemm                          # with its window
    permutation: tuple[int, ...]        # channel order: channel permutation[c] runs in array column c
    group_bits: tuple[int, ...]         # widest weight bits per channel group
    x_tiles: int                        # tiles per output row
    frame_w: int                        # pixels per frame row, padding included
    row_bytes: int                      # bytes per frame row (whole bus beats)
    strip_tiles: int                    # tiles per strip (x_tiles: whole frame rows)
    strip_bytes: int                    # bytes of a strip's row in the buffer: the DW_COMPUTE row pitch
    band_out: int                       # output rows per band
    wgt_slots: tuple[int, ...]          # per group: bytes of its digit planes, bus-aligned
    param_slot: int
    out_slot: int                       # bytes of one tile's output rows, bus-aligned

    @property
    def window(self) -> Window:
        return self.gemm.window

    @property
    def groups(self) -> int:
        return len(self.group_bits)

    @property
    def strips(self) -> int:
        return ceil_div(self.x_tiles, self.strip_tiles)

    def strip_start(self, strip: int) -> int:
        """The first frame pixel a strip loads: its first tile's, rounded down to a bus beat."""
        if self.strips == 1:
            return 0
        align = max(1, isa.word_bytes(self.cfg).bus // isa.word_bytes(self.cfg).out)
        return strip * self.strip_tiles * self.cfg.rows * self.window.stride // align * align

    @property
    def frame_h(self) -> int:
        return self.window.height + 2 * self.window.padding

    def band_in(self, band_out: int | None = None) -> int:
        """Frame rows a band of ``band_out`` output rows reads."""
        return ((band_out or self.band_out) - 1) * self.window.stride + self.window.kernel[0]

    def bands(self) -> list[range]:
        """The output rows of each band."""
        out_h = self.window.out_h
        return [range(y0, min(y0 + self.band_out, out_h)) for y0 in range(0, out_h, self.band_out)]

    @property
    def steps(self) -> int:
        return self.groups * self.window.images * len(self.bands()) * self.strips

    @property
    def tiles(self) -> int:
        """DW_COMPUTE tiles of the whole layer."""
        return self.groups * self.window.images * self.window.out_h * self.x_tiles

    def tile_cycles(self, group: int) -> int:
        kh, kw = self.window.kernel
        return depthwise_tile_cycles(self.cfg, kh, kw, self.window.stride, self.group_bits[group])


def plan_depthwise(cfg: HardwareConfig, gemm: Gemm, name: str = "depthwise") -> DepthwisePlan:
    """The plan of a depthwise ``gemm`` (one with a window): channels sorted by bits into groups of ``cols``, and
    the tallest band two of which fit the activation buffer; refused, naming the layer, when not even one kernel
    height of frame rows fits."""
    words = isa.word_bytes(cfg)
    conv = gemm.window
    kh, kw = conv.kernel
    bits = np.asarray(gemm.bits, dtype=np.int64)
    if bits.min() < 1 or bits.max() > cfg.weight_bits_max:
        raise InputError(f"{name} bits", bits.tolist(), f"integers from 1 to weight_bits_max={cfg.weight_bits_max}")
    if kh * kw > cfg.max_k:
        raise InputError(f"{name} kernel", conv.kernel, f"at most max_k={cfg.max_k} taps")
    permutation = np.argsort(bits, kind="stable")
    groups = ceil_div(gemm.n, cfg.cols)
    padded = np.ones(groups * cfg.cols, dtype=np.int64)
    padded[:gemm.n] = bits[permutation]
    group_bits = tuple(int(padded[j * cfg.cols:(j + 1) * cfg.cols].max()) for j in range(groups))
    x_tiles = ceil_div(conv.out_w, cfg.rows)
    frame_w = max(conv.width + 2 * conv.padding, (x_tiles * cfg.rows - 1) * conv.stride + kw)
    row_bytes = ceil_div(frame_w * words.out, words.bus) * words.bus
    strip_tiles, strip_bytes = strip_geometry(cfg, x_tiles, row_bytes, kh, kw, conv.stride)
    if strip_tiles == 0:
        raise InputError(f"{name} (kernel {kh}x{kw}, {gemm.n} channels)", f"act_buf_bytes={cfg.act_buf_bytes}",
                         f"room for two bands of one tile's window, {kh} rows of {strip_bytes} bytes")
    band_rows = cfg.act_buf_bytes // 2 // strip_bytes
    band_out = min(conv.out_h, (band_rows - kh) // conv.stride + 1)
    plan = DepthwisePlan(
        cfg=cfg, gemm=gemm, permutation=tuple(int(p) for p in permutation), group_bits=group_bits,
        x_tiles=x_tiles, frame_w=frame_w, row_bytes=row_bytes, strip_tiles=strip_tiles, strip_bytes=strip_bytes,
        band_out=band_out,
        wgt_slots=tuple(ceil_div(kh * kw * cfg.digits(b) * words.wgt, words.bus) * words.bus for b in group_bits),
        param_slot=ceil_div(words.param, words.bus) * words.bus,
        out_slot=ceil_div(cfg.rows * words.out, words.bus) * words.bus)
    for buffer, block in (("wgt_buf_bytes", max(plan.wgt_slots)), ("param_buf_bytes", plan.param_slot),
                          ("out_buf_bytes", plan.out_slot)):
        if 2 * block > getattr(cfg, buffer):
            raise InputError(name, f"{buffer}={getattr(cfg, buffer)}", f"room for two blocks of {block} bytes")
    return plan


def strip_geometry(cfg: HardwareConfig, x_tiles: int, row_bytes: int, kh: int, kw: int,
                   stride: int) -> tuple[int, int]:
    """(tiles per strip, bytes of a strip row): whole frame rows when ``kh`` of them fit an activation buffer half,
    else the widest strip whose ``kh`` rows do (its start rounded down to a bus beat, so unless tiles start on
    beats a strip row holds up to a beat more than its windows); 0 tiles when not even one tile's window fits.
    Rows stay under 64 KiB (the row pitch field)."""
    words = isa.word_bytes(cfg)
    half = cfg.act_buf_bytes // 2
    if kh * row_bytes <= half and row_bytes < 1 << 16:
        return x_tiles, row_bytes
    slack = 0 if cfg.rows * stride * words.out % words.bus == 0 else max(0, words.bus // words.out - 1)

    def strip_bytes(tiles: int) -> int:
        return ceil_div(((tiles * cfg.rows - 1) * stride + kw + slack) * words.out, words.bus) * words.bus

    tiles = 0
    while tiles < x_tiles and kh * strip_bytes(tiles + 1) <= half and strip_bytes(tiles + 1) < 1 << 16:
        tiles += 1
    return tiles, strip_bytes(max(tiles, 1))


def per_channel_gemms(gemm: Gemm) -> list[tuple[Gemm, int]]:
    """The fallback of a depthwise ``gemm`` whose program no buffer takes: one ``N = 1`` GEMM per channel on one
    column (host im2col), channels of equal bits merged with a count, in first-appearance order."""
    counts: dict[int, int] = {}
    for b in gemm.bits:
        counts[b] = counts.get(b, 0) + 1
    return [(Gemm(gemm.m, gemm.k, 1, (b,)), count) for b, count in counts.items()]


def tap_order(kh: int, kw: int, stride: int) -> list[int]:
    """Weight rows (tap (i, j) is row i * kw + j) in the order the array runs them (`rtl_gen.systolic_array`):
    per kernel row, each stride phase's taps, the last first."""
    return [i * kw + j for i in range(kh) for p in range(stride) for j in reversed(range(p, kw, stride))]


@dataclass(frozen=True)
class DepthwiseLayout:
    """The DRAM image of a depthwise program and the address of every block in it."""
    plan: DepthwisePlan
    image: list[tuple[int, bytes]]
    frames: dict[tuple[int, int], int]          # (group, image) -> address of its frame
    wgt: list[int]                              # group -> digit planes
    param: list[int]                            # group -> parameter word
    out_addr: int
    out_bytes: int
    row_major: bool = False

    def c_tile(self, i: int, j: int) -> int:
        """Offset of tile ``i`` (image, output row, x tile in order) of group ``j`` in the output region."""
        p = self.plan
        return (j * (p.tiles // p.groups) + i) * p.out_slot

    def decode(self, blob: bytes, *, signed: bool) -> np.ndarray:
        """The output region's bytes -> C[M, N] as a GEMM's: M the output pixels in NHWC order (image, row,
        column), N the channels in their own order."""
        p, cfg = self.plan, self.plan.cfg
        conv, out_word = p.window, isa.word_bytes(cfg).out
        per_image = conv.out_h * p.x_tiles
        out = np.zeros((conv.images, p.groups * cfg.cols, conv.out_h, p.x_tiles * cfg.rows), dtype=np.int64)
        for j in range(p.groups):
            for i in range(p.tiles // p.groups):
                n, rest = divmod(i, per_image)
                y, xt = divmod(rest, p.x_tiles)
                at = self.c_tile(i, j)
                words = [int.from_bytes(blob[at + r * out_word:at + (r + 1) * out_word], "little")
                         for r in range(cfg.rows)]
                out[n, j * cfg.cols:(j + 1) * cfg.cols, y, xt * cfg.rows:(xt + 1) * cfg.rows] = unpack_lanes(
                    words, cfg.act_bits, cfg.cols, signed=signed).T
        result = np.empty((conv.images, p.gemm.n, conv.out_h, conv.out_w), dtype=np.int64)
        result[:, np.asarray(p.permutation)] = out[:, :p.gemm.n, :, :conv.out_w]
        return result.transpose(0, 2, 3, 1).reshape(-1, p.gemm.n)


def lay_out_depthwise(p: DepthwisePlan, x: np.ndarray, w: np.ndarray, requant: Requant, *,
                      base: int) -> DepthwiseLayout:
    """``x`` (images x channels x height x width) as frames, ``w`` (channels x kh x kw) as each group's digit planes
    in tap order, the parameter words and the output region (filled with `OUTPUT_FILL`)."""
    cfg, conv, channels_in = p.cfg, p.window, p.gemm.n
    words = isa.word_bytes(cfg)
    kh, kw = conv.kernel
    pad = conv.padding
    channels = p.groups * cfg.cols
    perm = np.asarray(p.permutation)
    xs = np.zeros((conv.images, channels, p.frame_h, p.frame_w), dtype=np.int64)
    xs[:, :channels_in, pad:pad + conv.height, pad:pad + conv.width] = x[:, perm]
    ws = np.zeros((channels, kh * kw), dtype=np.int64)
    ws[:channels_in] = np.asarray(w, dtype=np.int64).reshape(channels_in, kh * kw)[perm]
    col_bits = np.ones(channels, dtype=np.int64)
    col_bits[:channels_in] = np.asarray(p.gemm.bits)[perm]
    memory = _Allocator(base + OPERAND_BASE, words.bus)
    frames = {}
    for j in range(p.groups):
        group = slice(j * cfg.cols, (j + 1) * cfg.cols)
        for n in range(conv.images):
            rows = [words_to_bytes(pack_lanes(xs[n, group, y].T, cfg.act_bits), words.out, words.bus)
                    .ljust(p.row_bytes, b"\0") for y in range(p.frame_h)]
            frames[j, n] = memory.place(b"".join(rows))
    order = tap_order(kh, kw, conv.stride)
    wgt = memory.region([
        words_to_bytes(digit_planes(cfg, ws[j * cfg.cols:(j + 1) * cfg.cols, order].T,
                                    col_bits[j * cfg.cols:(j + 1) * cfg.cols], cfg.digits(p.group_bits[j]),
                                    filler_seed=j * 31), words.wgt, words.bus).ljust(p.wgt_slots[j], b"\0")
        for j in range(p.groups)])
    param = memory.region([
        b"".join(param_record(*((requant.bias[src], requant.mult[src], requant.shift[src]) if src is not None
                                else (0, 0, 0)), col_bits[col])
                 for col in range(j * cfg.cols, (j + 1) * cfg.cols)
                 for src in [int(perm[col]) if col < channels_in else None]).ljust(p.param_slot, b"\0")
        for j in range(p.groups)])
    out_bytes = p.tiles * p.out_slot
    out_addr = memory.place(bytes([OUTPUT_FILL]) * out_bytes)
    return DepthwiseLayout(plan=p, image=memory.image, frames=frames, wgt=wgt, param=param, out_addr=out_addr,
                           out_bytes=out_bytes)


def schedule_depthwise(layout: DepthwiseLayout) -> Schedule:
    """Groups outer (their weights and parameters resident, halves by group parity), bands inner (halves
    alternating per step); each step's tiles in output order."""
    p = layout.plan
    cfg, conv = p.cfg, p.window
    pixel = isa.word_bytes(cfg).out
    halves = Halves.of(cfg)
    kh, kw = conv.kernel
    steps = []
    for j in range(p.groups):
        wgt0, param0 = (j % 2) * halves.wgt, (j % 2) * halves.param
        for n in range(conv.images):
            for b, band in enumerate(p.bands()):
                for q in range(p.strips):
                    act0 = (len(steps) % 2) * halves.act
                    first_row, start = band.start * conv.stride, p.strip_start(q)
                    dram = layout.frames[j, n] + first_row * p.row_bytes + start * pixel
                    rows = p.band_in(len(band))
                    loads = [Load(isa.Opcode.LOAD_ACT, dram, act0, rows * p.strip_bytes) if p.strips == 1 else
                             Load(isa.Opcode.LOAD_ACT, dram, act0, rows * p.strip_bytes, rows=rows,
                                  stride=p.row_bytes)]
                    if n == 0 and b == 0 and q == 0:
                        loads += [Load(isa.Opcode.LOAD_WGT, layout.wgt[j], wgt0, p.wgt_slots[j]),
                                  Load(isa.Opcode.LOAD_PARAM, layout.param[j], param0, p.param_slot)]
                    tiles = range(q * p.strip_tiles, min((q + 1) * p.strip_tiles, p.x_tiles))
                    computes = tuple(
                        TileCompute(i=(n * conv.out_h + y) * p.x_tiles + xt, j=j,
                                    act_addr=act0 + (y - band.start) * conv.stride * p.strip_bytes
                                    + (xt * cfg.rows * conv.stride - start) * pixel,
                                    wgt_addr=wgt0, param_addr=param0, k=kh * kw, accumulate=False, emit=True,
                                    window=(p.strip_bytes, kh, kw, conv.stride))
                        for y in band for xt in tiles)
                    steps.append(Step(tuple(loads), computes))
    return Schedule(steps=_number_outputs(steps), slots=out_slots(cfg, p.out_slot), slot_bytes=p.out_slot)

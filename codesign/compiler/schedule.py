"""The schedule of a program: its steps, the buffer halves each uses, and the output slots its tiles rotate over.

A step loads one group of blocks into a buffer half (the activation block, and with it the weight block and its
parameters when the outer loop moves on; with a K split, one chunk of each) and then runs the COMPUTEs that use
them; every COMPUTE that ends a tile's reduction emits it. Buffer halves alternate per step for the streaming
operand and per outer block for the resident one (`codesign.compiler.mapping` describes the blocks and orders).

The output buffer rotates over up to `OUT_SLOTS` tile slots (at least two), not just two halves: a tile's rows
reach the buffer while the next tile computes (the array's drain overlaps the next feed), and its STORE starts only
after them, so with two slots a short tile (a depthwise layer's K = 9) would wait for the store of the tile two
back, a stall the cost model does not price (`make bench-search`: depthwise layers 8.9 % over the prediction).

Commands and their dependency tokens are `codesign.compiler.program`'s: the schedule says what moves where, in
which order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from codesign.compiler.layout import DramLayout
from codesign.compiler.mapping import Plan
from codesign.hw.config import HardwareConfig
from codesign.hw.isa import Opcode

OUT_SLOTS = 4                 # output tile slots in rotation (see the module docstring)


@dataclass(frozen=True)
class Load:
    """One contiguous transfer from DRAM into a buffer (`codesign.compiler.program` cuts it into DMA rows), or with
    ``stride``, ``nbytes / rows`` bytes from each of ``rows`` DRAM rows ``stride`` bytes apart (one 2-D command),
    contiguous in the buffer."""
    opcode: Opcode
    dram_addr: int
    buf_addr: int
    nbytes: int
    rows: int = 1
    stride: int = 0


@dataclass(frozen=True)
class TileCompute:
    """One COMPUTE: array tile (row tile ``i``, column tile ``j``) over one K chunk of ``k`` steps."""
    i: int
    j: int
    act_addr: int
    wgt_addr: int
    param_addr: int
    k: int
    accumulate: bool              # onto the sums of the tile's previous chunk
    emit: bool                    # the tile's last chunk: requantize and output it
    out_index: int | None = None  # emitting tiles only: their order, which picks the output slot
    window: tuple[int, int, int, int] | None = None   # a DW_COMPUTE: (row pitch, kh, kw, stride)


@dataclass(frozen=True)
class Step:
    loads: tuple[Load, ...]
    computes: tuple[TileCompute, ...]


@dataclass(frozen=True)
class Halves:
    """Bytes of one buffer half: the second half of each buffer starts there."""
    act: int
    wgt: int
    param: int

    @classmethod
    def of(cls, cfg: HardwareConfig) -> Halves:
        return cls(cfg.act_buf_bytes // 2, cfg.wgt_buf_bytes // 2, cfg.param_buf_bytes // 2)


@dataclass(frozen=True)
class Schedule:
    steps: tuple[Step, ...]
    slots: int                    # output slots in rotation
    slot_bytes: int               # bytes of one output slot (one array tile's rows)

    @property
    def emitted(self) -> int:
        """Tiles output: one STORE each."""
        return sum(1 for step in self.steps for tile in step.computes if tile.emit)

    def out_buf_addr(self, tile: TileCompute) -> int:
        """Output buffer address of an emitting tile: its slot in the rotation."""
        return (tile.out_index % self.slots) * self.slot_bytes


def out_slots(cfg: HardwareConfig, slot_bytes: int) -> int:
    """Output tile slots the program rotates over: as many as fit, up to `OUT_SLOTS` (the fit check guarantees 2)."""
    return max(2, min(OUT_SLOTS, cfg.out_buf_bytes // slot_bytes))


def schedule(p: Plan, layout: DramLayout) -> Schedule:
    """The steps of plan ``p`` over the operands of ``layout``, emitting tiles numbered in program order."""
    halves = Halves.of(p.cfg)
    steps = resident_steps(p, layout, halves) if p.resident else split_steps(p, layout, halves)
    return Schedule(steps=_number_outputs(steps), slots=out_slots(p.cfg, p.out_slot), slot_bytes=p.out_slot)


def split_steps(p: Plan, layout: DramLayout, halves: Halves) -> list[Step]:
    """K split (bm = bn = 1): every array tile loads its chunks in turn, halves alternating per step."""
    steps = []
    last = len(p.chunks) - 1
    for j in range(p.n_tiles):
        for i in range(p.m_tiles):
            for c, (k0, k1) in enumerate(p.chunks):
                half = len(steps) % 2
                act, wgt, param = half * halves.act, half * halves.wgt, half * halves.param
                loads = (Load(Opcode.LOAD_ACT, layout.act[i, c], act, p.act_chunks[c]),
                         Load(Opcode.LOAD_WGT, layout.wgt[j, c], wgt, p.wgt_slots[j][c]),
                         Load(Opcode.LOAD_PARAM, layout.param[j], param, p.param_slot))
                tile = TileCompute(i=i, j=j, act_addr=act, wgt_addr=wgt, param_addr=param, k=k1 - k0,
                                   accumulate=c > 0, emit=c == last)
                steps.append(Step(loads, (tile,)))
    return steps


def resident_steps(p: Plan, layout: DramLayout, halves: Halves) -> list[Step]:
    """Whole K: blocks of ``bm`` row tiles and ``bn`` column tiles; the outer operand's block stays while the inner
    operand's blocks stream past it, each step one inner block."""
    mp = p.mapping
    k0, k1 = p.chunks[0]
    m_blocks = [range(i0, min(i0 + mp.bm, p.m_tiles)) for i0 in range(0, p.m_tiles, mp.bm)]
    n_blocks = [range(j0, min(j0 + mp.bn, p.n_tiles)) for j0 in range(0, p.n_tiles, mp.bn)]
    weights_outer = mp.order == "weights"
    outer, inner = (n_blocks, m_blocks) if weights_outer else (m_blocks, n_blocks)
    steps = []
    for o, outer_block in enumerate(outer):
        for q, inner_block in enumerate(inner):
            s = len(steps)
            rows, cols = (inner_block, outer_block) if weights_outer else (outer_block, inner_block)
            # The resident operand's halves alternate per outer block, the streaming one's per step.
            a_half = (s if weights_outer else o) % 2
            w_half = (o if weights_outer else s) % 2
            act0, wgt0, param0 = a_half * halves.act, w_half * halves.wgt, w_half * halves.param
            wgt_offsets = np.cumsum([0] + [p.wgt_slots[j][0] for j in cols])
            loads = []
            if weights_outer or q == 0:
                loads.append(Load(Opcode.LOAD_ACT, layout.act[rows[0], 0], act0, len(rows) * p.act_slot))
            if not weights_outer or q == 0:
                loads.append(Load(Opcode.LOAD_WGT, layout.wgt[cols[0], 0], wgt0, int(wgt_offsets[-1])))
                loads.append(Load(Opcode.LOAD_PARAM, layout.param[cols[0]], param0, len(cols) * p.param_slot))
            computes = tuple(
                TileCompute(i=i, j=j, act_addr=act0 + (i - rows[0]) * p.act_slot,
                            wgt_addr=wgt0 + int(wgt_offsets[j - cols[0]]),
                            param_addr=param0 + (j - cols[0]) * p.param_slot, k=k1 - k0, accumulate=False, emit=True)
                for i in rows for j in cols)
            steps.append(Step(tuple(loads), computes))
    return steps


def _number_outputs(steps: list[Step]) -> tuple[Step, ...]:
    """The steps with each emitting tile given its place among the outputs."""
    numbered, e = [], 0
    for step in steps:
        computes = []
        for tile in step.computes:
            if tile.emit:
                tile, e = replace(tile, out_index=e), e + 1
            computes.append(tile)
        numbered.append(Step(step.loads, tuple(computes)))
    return tuple(numbered)

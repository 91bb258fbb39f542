"""The compiler's entry: a GEMM and a `Mapping` become an accelerator program and the DRAM image of its operands.

Four parts, in order: the plan of the mapping (`codesign.compiler.mapping`), the operands' DRAM layout
(`codesign.compiler.layout`), the schedule of steps, buffer halves and output slots (`codesign.compiler.schedule`),
and here the emission of its commands.

Each step's loads become DMA commands, its tiles COMPUTEs, and every emitting COMPUTE is followed by the STORE of
its tile. The dependency tokens of `codesign.hw.isa` order them: a step's loads wait for the computes two steps
back, the computes for their loads, a store for its compute and the compute that reuses an output slot for the
store `out_slots` tiles back. Every token sent is taken, so the token counters end the program at zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from codesign.compiler.depthwise import (
    DepthwiseLayout,
    DepthwisePlan,
    lay_out_depthwise,
    plan_depthwise,
    schedule_depthwise,
)
from codesign.compiler.layout import DramLayout, lay_out
from codesign.compiler.mapping import MAX_ROW_BYTES, Gemm, Mapping, Plan, Window, check_fits, plan
from codesign.compiler.schedule import Load, Schedule, TileCompute, schedule
from codesign.errors import InputError
from codesign.hw import isa
from codesign.hw.config import HardwareConfig, ceil_div
from codesign.hw.isa import Compute, Dma, DwCompute, End, Opcode, TileCommand
from codesign.hw.reference import Requant
from codesign.hw.timing import tile_cycles

PROGRAM_BASE = 0x1000


@dataclass
class Program:
    plan: Plan | DepthwisePlan
    commands: list
    memory: list[tuple[int, bytes]] = field(repr=False)    # DRAM image: program, operands, params, output fill
    prog_addr: int
    out_addr: int
    out_bytes: int
    compute_cycles: int                                    # the array's cycles: `codesign.hw.timing` summed
    _layout: DramLayout | DepthwiseLayout = field(repr=False)
    _out_signed: bool = field(repr=False)

    @property
    def binary(self) -> bytes:
        return isa.assemble(self.commands)

    @property
    def dram_bytes(self) -> int:
        """Bytes the program moves over the bus, read and written: its DMA commands' and its own fetch, in whole bus
        beats (what the ``bytes_read`` and ``bytes_written`` counters add up to)."""
        bus = isa.word_bytes(self.plan.cfg).bus
        return sum(c.bytes for c in self.commands if isinstance(c, isa.Dma)) + \
            ceil_div(isa.COMMAND_BYTES * len(self.commands), bus) * bus

    def decode_c(self, blob: bytes) -> np.ndarray:
        """The output region's bytes -> C[M, N] in the GEMM's own channel order (a depthwise program: M the output
        pixels in NHWC order)."""
        return self._layout.decode(blob, signed=self._out_signed)


def compile_gemm(cfg: HardwareConfig, a: np.ndarray, w: np.ndarray, bits, requant: Requant, mapping: Mapping, *,
                 act_signed: bool = False, name: str = "gemm", base: int = PROGRAM_BASE,
                 out_layout: str = "tiles") -> Program:
    """``requant(A @ W)`` with per-channel ``bits`` as a program for ``cfg`` laid out by ``mapping``; C goes back
    tile by tile, or with ``out_layout="rows"`` row-major (see `codesign.compiler.layout`)."""
    m, k = a.shape
    p = plan(cfg, Gemm(m, k, w.shape[1], tuple(int(b) for b in bits)), mapping)
    check_fits(p, name)
    if out_layout not in ("tiles", "rows") or (out_layout == "rows" and not p.row_major_possible):
        raise InputError(f"{name} out_layout", out_layout,
                         "'tiles', or 'rows' when an output word is a whole number of bus beats")
    layout = lay_out(p, a, w, bits, requant, base=base, row_major=out_layout == "rows")
    steps = schedule(p, layout)
    commands = emit_commands(steps, layout, requant, act_signed=act_signed)
    return Program(plan=p, commands=commands, memory=[(base, isa.assemble(commands)), *layout.image],
                   prog_addr=base, out_addr=layout.out_addr, out_bytes=layout.out_bytes,
                   compute_cycles=array_cycles(p, steps), _layout=layout, _out_signed=not requant.relu)


def compile_depthwise(cfg: HardwareConfig, x: np.ndarray, w: np.ndarray, bits, requant: Requant, *,
                      stride: int, padding: int, act_signed: bool = False, name: str = "depthwise",
                      base: int = PROGRAM_BASE) -> Program:
    """The depthwise convolution of ``x`` (images x channels x height x width) by ``w`` (channels x kh x kw) with
    per-channel ``bits``, requantized, as a DW_COMPUTE program (`codesign.compiler.depthwise`)."""
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    if x.ndim != 4 or w.ndim != 3 or w.shape[0] != x.shape[1]:
        raise InputError(f"{name} shapes", (x.shape, w.shape), "x of N x C x H x W and w of C x kh x kw")
    window = Window(height=x.shape[2], width=x.shape[3], kernel=(w.shape[1], w.shape[2]), stride=stride,
                    padding=padding, images=x.shape[0])
    gemm = Gemm(window.images * window.out_h * window.out_w, w.shape[1] * w.shape[2], x.shape[1],
                tuple(int(b) for b in bits), window)
    p = plan_depthwise(cfg, gemm, name)
    layout = lay_out_depthwise(p, x, w, requant, base=base)
    steps = schedule_depthwise(layout)
    commands = emit_commands(steps, layout, requant, act_signed=act_signed)
    cycles = sum(p.tile_cycles(tile.j) for step in steps.steps for tile in step.computes)
    return Program(plan=p, commands=commands, memory=[(base, isa.assemble(commands)), *layout.image],
                   prog_addr=base, out_addr=layout.out_addr, out_bytes=layout.out_bytes, compute_cycles=cycles,
                   _layout=layout, _out_signed=not requant.relu)


def array_cycles(p: Plan, sched: Schedule) -> int:
    """The array's busy cycles over the whole schedule (`codesign.hw.timing.tile_cycles` per COMPUTE)."""
    return sum(tile_cycles(p.cfg, tile.k, p.tile_bits[tile.j]) for step in sched.steps for tile in step.computes)


def emit_commands(sched: Schedule, layout: DramLayout | DepthwiseLayout, requant: Requant, *, act_signed: bool) -> list:
    """The schedule as commands with their dependency tokens (see the module docstring), END last."""
    commands: list = []
    last_step, emitted, slots = len(sched.steps) - 1, sched.emitted, sched.slots
    for s, step in enumerate(sched.steps):
        loads = [dma for load in step.loads for dma in dma_rows(load)]
        loads[0] = replace(loads[0], pop_next=s >= 2)              # the computes two steps back freed this half
        loads[-1] = replace(loads[-1], push_next=True)
        commands += loads
        for t, tile in enumerate(step.computes):
            out_buf = sched.out_buf_addr(tile) if tile.emit else 0
            tokens = dict(
                pop_prev=t == 0,
                push_prev=t == len(step.computes) - 1 and s < last_step - 1,   # a load two steps on waits for it
                pop_next=tile.emit and tile.out_index >= slots,               # its slot's previous store is done
                push_next=tile.emit)
            common = dict(act_addr=tile.act_addr, wgt_addr=tile.wgt_addr, param_addr=tile.param_addr,
                          out_addr=out_buf, act_signed=act_signed, relu=requant.relu, out_bits=requant.out_bits)
            if tile.window:
                pitch, kh, kw, stride = tile.window
                commands.append(DwCompute(row_pitch=pitch, kh=kh, kw=kw, stride=stride, **common, **tokens))
            else:
                commands.append(Compute(k=tile.k, accumulate=tile.accumulate, emit=tile.emit, **common, **tokens))
            if tile.emit:
                commands.append(store(layout, tile, out_buf, pop_prev=True,
                                      push_prev=tile.out_index < emitted - slots))
    commands.append(End())
    return commands


def dma_rows(load: Load) -> list[Dma]:
    """One contiguous transfer as DMA commands of at most `MAX_ROW_BYTES` per row; a 2-D one as one command."""
    if load.stride:
        return [Dma(opcode=load.opcode, dram_addr=load.dram_addr, buf_addr=load.buf_addr, rows=load.rows,
                    row_bytes=load.nbytes // load.rows, dram_stride=load.stride)]
    rows, rest = divmod(load.nbytes, MAX_ROW_BYTES)
    commands = []
    if rows:
        commands.append(Dma(opcode=load.opcode, dram_addr=load.dram_addr, buf_addr=load.buf_addr, rows=rows,
                            row_bytes=MAX_ROW_BYTES, dram_stride=MAX_ROW_BYTES))
    if rest:
        done = rows * MAX_ROW_BYTES
        commands.append(Dma(opcode=load.opcode, dram_addr=load.dram_addr + done, buf_addr=load.buf_addr + done,
                            rows=1, row_bytes=rest))
    return commands


def store(layout: DramLayout | DepthwiseLayout, tile: TileCompute, out_buf: int, **tokens) -> Dma:
    """The STORE of an emitted tile from the output buffer to its place in the output region: one burst, or one
    row per burst (2-D) in the row-major layout."""
    p = layout.plan
    dram = layout.out_addr + layout.c_tile(tile.i, tile.j)
    if layout.row_major:
        return Dma(opcode=Opcode.STORE, dram_addr=dram, buf_addr=out_buf, rows=p.cfg.rows, row_bytes=layout.out_word,
                   dram_stride=layout.c_row_bytes, **tokens)
    return Dma(opcode=Opcode.STORE, dram_addr=dram, buf_addr=out_buf, rows=1, row_bytes=p.out_slot, **tokens)


def concatenate(programs: list[Program]) -> list:
    """The commands of ``programs`` as one program, each after the one before (their DRAM images must not overlap).

    Each program balances its own tokens and leaves its last buffer halves and output slots unguarded, since no
    command of its own follows; so at every boundary the last COMPUTE of the one before sends its loads a token
    that the first LOAD of the next waits for, and its last STORE sends the next one's first COMPUTE another. A
    unit runs its commands in order, so nothing of the next program then touches a buffer before the previous
    program is done with it, while its loads may still run under the previous program's last stores.
    """
    joined: list = []
    for n, program in enumerate(programs):
        commands = list(program.commands[:-1])                   # without END
        if n:
            first_load = next(i for i, c in enumerate(commands) if c.opcode in isa.LOADS)
            first_compute = next(i for i, c in enumerate(commands) if isinstance(c, TileCommand))
            commands[first_load] = replace(commands[first_load], pop_next=True)
            commands[first_compute] = replace(commands[first_compute], pop_next=True)
        if n < len(programs) - 1:
            last_compute = max(i for i, c in enumerate(commands) if isinstance(c, TileCommand))
            last_store = max(i for i, c in enumerate(commands) if c.opcode == Opcode.STORE)
            commands[last_compute] = replace(commands[last_compute], push_prev=True)
            commands[last_store] = replace(commands[last_store], push_prev=True)
        joined += commands
    return joined + [End()]

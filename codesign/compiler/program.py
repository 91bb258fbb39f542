"""The compiler: a GEMM and a `Mapping` become an accelerator program and the DRAM layout of its operands.

The program is a sequence of steps. A step loads one group of blocks into a buffer half (the activation block, and
with it the weight block and its parameters when the outer loop moves on; with a K split, one chunk of each) and
then runs the COMPUTEs that use them; every COMPUTE that ends a tile's reduction emits it, and a STORE follows.
Buffer halves alternate per step (the resident operand's halves per outer block), and the dependency tokens of
`codesign.hw.isa` order them: a step's loads wait for the computes two steps back, the computes for their loads, a
store for its compute and the compute that reuses an output slot for the store `out_slots` tiles back. Every token
sent is taken, so the token counters end the program at zero.

The output buffer rotates over up to `OUT_SLOTS` tile slots (at least two), not just two halves: a tile's rows
reach the buffer while the next tile computes (the array's drain overlaps the next feed), and its STORE starts only
after them, so with two slots a short tile (a depthwise layer's K = 9) would wait for the store of the tile two
back, a stall the cost model does not price (`make bench-search`: depthwise layers 8.9 % over the prediction).

The host lays the operands out tile by tile (`codesign.hw.isa` word layouts; im2col, when a convolution is lowered,
happens in this host layout: see `codesign.ir.layers`). C comes back tile by tile: one burst per array tile, which the
host re-lays for the next layer as it does every operand. ``out_layout="rows"`` writes C row-major instead, with 2-D
stores of one row per burst (when an output word is whole bus beats): convenient for a host that reads C directly,
but a burst per row is slow on a memory with latency. `Program.decode_c` undoes the layout and the channel
permutation of the mapping.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from codesign.compiler.mapping import MAX_ROW_BYTES, Gemm, Mapping, Plan, check_fits, plan, round_up
from codesign.errors import InputError
from codesign.hw import isa
from codesign.hw.config import HardwareConfig
from codesign.hw.isa import Compute, Dma, End, Opcode
from codesign.hw.reference import Requant
from codesign.hw.timing import tile_cycles

PROGRAM_BASE = 0x1000
OPERAND_BASE = 0x100000
OUT_SLOTS = 4                 # output tile slots in rotation (see the module docstring)
OUTPUT_FILL = 0xA5            # the output region starts as this pattern, so a missing store cannot pass


@dataclass
class Program:
    plan: Plan
    commands: list
    memory: list[tuple[int, bytes]] = field(repr=False)    # DRAM image: program, operands, params, output fill
    prog_addr: int
    out_addr: int
    out_bytes: int
    compute_cycles: int                                    # the array's cycles: `codesign.hw.timing` summed
    _decode: object = field(repr=False)

    @property
    def binary(self) -> bytes:
        return isa.assemble(self.commands)

    def decode_c(self, blob: bytes) -> np.ndarray:
        """The output region's bytes -> C[M, N] in the GEMM's own channel order."""
        return self._decode(blob)


def out_slots(cfg: HardwareConfig, slot_bytes: int) -> int:
    """Output tile slots the program rotates over: as many as fit, up to `OUT_SLOTS` (the fit check guarantees 2)."""
    return max(2, min(OUT_SLOTS, cfg.out_buf_bytes // slot_bytes))


def pack_lanes(values: np.ndarray, width: int) -> list[int]:
    """One word per row of ``values``: element i in bits [i * width, (i + 1) * width), two's complement."""
    lanes = np.asarray(values, dtype=np.int64) & ((1 << width) - 1)
    words = np.zeros(lanes.shape[0], dtype=object)
    for lane in range(lanes.shape[1]):
        words += lanes[:, lane].astype(object) << (lane * width)
    return [int(w) for w in words]


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


def _words_to_bytes(values: list[int], size: int, bus: int) -> bytes:
    blob = b"".join(v.to_bytes(size, "little") for v in values)
    return blob + bytes(round_up(len(blob), bus) - len(blob))


def _values(blob: bytes, width_bits: int, count: int, signed: bool) -> np.ndarray:
    word = int.from_bytes(blob, "little")
    mask = (1 << width_bits) - 1
    out = np.array([(word >> (i * width_bits)) & mask for i in range(count)], dtype=np.int64)
    return np.where(out >= 1 << (width_bits - 1), out - (1 << width_bits), out) if signed else out


def _loads(opcode: Opcode, dram: int, buf: int, nbytes: int) -> list[Dma]:
    """One contiguous transfer as DMA commands of at most `MAX_ROW_BYTES` per row."""
    rows, rest = divmod(nbytes, MAX_ROW_BYTES)
    commands = []
    if rows:
        commands.append(Dma(opcode=opcode, dram_addr=dram, buf_addr=buf, rows=rows, row_bytes=MAX_ROW_BYTES,
                            dram_stride=MAX_ROW_BYTES))
    if rest:
        done = rows * MAX_ROW_BYTES
        commands.append(Dma(opcode=opcode, dram_addr=dram + done, buf_addr=buf + done, rows=1, row_bytes=rest))
    return commands


def compile_gemm(cfg: HardwareConfig, a: np.ndarray, w: np.ndarray, bits, requant: Requant, mapping: Mapping, *,
                 act_signed: bool = False, name: str = "gemm", base: int = PROGRAM_BASE,
                 out_layout: str = "tiles") -> Program:
    """``requant(A @ W)`` with per-channel ``bits`` as a program for ``cfg`` laid out by ``mapping``."""
    m, k = a.shape
    n = w.shape[1]
    p = plan(cfg, Gemm(m, k, n, tuple(int(b) for b in bits)), mapping)
    check_fits(p, name)
    if out_layout not in ("tiles", "rows") or (out_layout == "rows" and not p.row_major_possible):
        raise InputError(f"{name} out_layout", out_layout,
                         "'tiles', or 'rows' when an output word is a whole number of bus beats")
    row_major = out_layout == "rows"
    words = isa.word_bytes(cfg)
    bus = words.bus
    perm = np.asarray(p.permutation)

    # ---- operands in the tiled DRAM layout, columns in the mapping's order
    a_pad = np.zeros((p.m_tiles * cfg.rows, k), dtype=np.int64)
    a_pad[:m] = a
    w_pad = np.zeros((k, p.n_tiles * cfg.cols), dtype=np.int64)
    w_pad[:, :n] = w[:, perm]
    col_bits = np.ones(p.n_tiles * cfg.cols, dtype=np.int64)
    col_bits[:n] = np.asarray(bits)[perm]
    real = np.zeros(p.n_tiles * cfg.cols, dtype=bool)
    real[:n] = True
    col_source = np.zeros(p.n_tiles * cfg.cols, dtype=np.int64)
    col_source[:n] = perm

    image: list[tuple[int, bytes]] = []
    cursor = base + OPERAND_BASE

    def place(blob: bytes) -> int:
        nonlocal cursor
        addr = cursor
        image.append((addr, blob))
        cursor += round_up(len(blob), max(bus, 64))
        return addr

    def region(blobs: list[bytes]) -> list[int]:
        """Contiguous slots (a block is then one transfer)."""
        joined = place(b"".join(blobs))
        offsets = np.cumsum([0] + [len(b) for b in blobs[:-1]])
        return [joined + int(o) for o in offsets]

    a_addr = {}
    for c, (k0, k1) in enumerate(p.chunks):
        addrs = region([_words_to_bytes(pack_lanes(a_pad[i * cfg.rows:(i + 1) * cfg.rows, k0:k1].T, cfg.act_bits),
                                        words.act, bus).ljust(p.act_slot, b"\0") for i in range(p.m_tiles)])
        for i, addr in enumerate(addrs):
            a_addr[i, c] = addr
    w_addr = {}
    for c, (k0, k1) in enumerate(p.chunks):
        blobs = []
        for j in range(p.n_tiles):
            cols = slice(j * cfg.cols, (j + 1) * cfg.cols)
            planes = digit_planes(cfg, w_pad[k0:k1, cols], col_bits[cols], cfg.digits(p.tile_bits[j]),
                                  filler_seed=j * 31 + c)
            blobs.append(_words_to_bytes(planes, words.wgt, bus))
        for j, addr in enumerate(region(blobs)):
            w_addr[j, c] = addr
    records = []
    for j in range(p.n_tiles):
        record = bytearray()
        for col in range(j * cfg.cols, (j + 1) * cfg.cols):
            src = col_source[col]
            record += int(requant.bias[src] if real[col] else 0).to_bytes(4, "little", signed=True)
            record += int(requant.mult[src] if real[col] else 0).to_bytes(2, "little")
            record += bytes([int(requant.shift[src]) if real[col] else 0, int(col_bits[col])])
        records.append(bytes(record).ljust(p.param_slot, b"\0"))
    p_addr = region(records)

    c_row_bytes = p.n_tiles * words.out
    out_bytes = (p.m_tiles * cfg.rows * c_row_bytes if row_major else p.m_tiles * p.n_tiles * p.out_slot)
    out_addr = place(bytes([OUTPUT_FILL]) * out_bytes)

    # ---- steps: (loads, computes), computes as (i, j, chunk)
    halves = {"act": cfg.act_buf_bytes // 2, "wgt": cfg.wgt_buf_bytes // 2, "param": cfg.param_buf_bytes // 2}
    slots = out_slots(cfg, p.out_slot)
    steps = _steps(p, a_addr, w_addr, p_addr, halves)

    commands: list = []
    compute_cycles = 0
    emitted = sum(1 for _, computes in steps for comp in computes if comp["emit"])
    e = 0
    for s, (loads, computes) in enumerate(steps):
        loads = list(loads)
        loads[0] = replace(loads[0], pop_next=s >= 2)
        loads[-1] = replace(loads[-1], push_next=True)
        commands += loads
        for t, comp in enumerate(computes):
            emit = comp["emit"]
            i, j = comp["i"], comp["j"]
            commands.append(Compute(
                act_addr=comp["act"], wgt_addr=comp["wgt"], param_addr=comp["param"],
                out_addr=(e % slots) * p.out_slot if emit else 0, k=comp["k"], act_signed=act_signed,
                accumulate=comp["accumulate"], emit=emit, relu=requant.relu, out_bits=requant.out_bits,
                pop_prev=t == 0, push_prev=t == len(computes) - 1 and s < len(steps) - 2,
                pop_next=emit and e >= slots, push_next=emit))
            compute_cycles += tile_cycles(cfg, comp["k"], p.tile_bits[j])
            if emit:
                if row_major:
                    store = Dma(opcode=Opcode.STORE, dram_addr=out_addr + i * cfg.rows * c_row_bytes + j * words.out,
                                buf_addr=(e % slots) * p.out_slot, rows=cfg.rows, row_bytes=words.out,
                                dram_stride=c_row_bytes)
                else:
                    store = Dma(opcode=Opcode.STORE, dram_addr=out_addr + (i * p.n_tiles + j) * p.out_slot,
                                buf_addr=(e % slots) * p.out_slot, rows=1, row_bytes=p.out_slot)
                commands.append(replace(store, pop_prev=True, push_prev=e < emitted - slots))
                e += 1
    commands.append(End())
    image.insert(0, (base, isa.assemble(commands)))

    def decode(blob: bytes) -> np.ndarray:
        c_out = np.zeros((p.m_tiles * cfg.rows, p.n_tiles * cfg.cols), dtype=np.int64)
        for i in range(p.m_tiles):
            for j in range(p.n_tiles):
                for r in range(cfg.rows):
                    at = ((i * cfg.rows + r) * c_row_bytes + j * words.out if row_major
                          else (i * p.n_tiles + j) * p.out_slot + r * words.out)
                    c_out[i * cfg.rows + r, j * cfg.cols:(j + 1) * cfg.cols] = _values(
                        blob[at:at + words.out], cfg.act_bits, cfg.cols, signed=not requant.relu)
        result = np.empty((m, n), dtype=np.int64)
        result[:, perm] = c_out[:m, :n]
        return result

    return Program(plan=p, commands=commands, memory=image, prog_addr=base, out_addr=out_addr, out_bytes=out_bytes,
                   compute_cycles=compute_cycles, _decode=decode)


def _steps(p: Plan, a_addr: dict, w_addr: dict, p_addr: list, halves: dict) -> list:
    """The program's steps for plan ``p``: each a list of loads and the computes that use them."""
    mp = p.mapping
    steps = []

    def compute(i, j, c, act, wgt, param, k_range, last):
        return {"i": i, "j": j, "act": act, "wgt": wgt, "param": param, "k": k_range[1] - k_range[0],
                "accumulate": c > 0, "emit": last}

    if not p.resident:                               # K split: every array tile reloads its chunks
        for j in range(p.n_tiles):
            for i in range(p.m_tiles):
                for c, k_range in enumerate(p.chunks):
                    half = len(steps) % 2
                    act, wgt, param = half * halves["act"], half * halves["wgt"], half * halves["param"]
                    loads = (_loads(Opcode.LOAD_ACT, a_addr[i, c], act, p.act_slot)
                             + _loads(Opcode.LOAD_WGT, w_addr[j, c], wgt, p.wgt_slots[j][c])
                             + _loads(Opcode.LOAD_PARAM, p_addr[j], param, p.param_slot))
                    steps.append((loads, [compute(i, j, c, act, wgt, param, k_range, c == len(p.chunks) - 1)]))
        return steps

    k_range = p.chunks[0]
    m_blocks = [range(i0, min(i0 + mp.bm, p.m_tiles)) for i0 in range(0, p.m_tiles, mp.bm)]
    n_blocks = [range(j0, min(j0 + mp.bn, p.n_tiles)) for j0 in range(0, p.n_tiles, mp.bn)]
    outer, inner = (n_blocks, m_blocks) if mp.order == "weights" else (m_blocks, n_blocks)
    for o, outer_block in enumerate(outer):
        for q, inner_block in enumerate(inner):
            s = len(steps)
            rows, cols = (inner_block, outer_block) if mp.order == "weights" else (outer_block, inner_block)
            # The resident operand's halves alternate per outer block, the streaming one's per step.
            a_half = (s if mp.order == "weights" else o) % 2
            w_half = (o if mp.order == "weights" else s) % 2
            act0, wgt0, param0 = a_half * halves["act"], w_half * halves["wgt"], w_half * halves["param"]
            wgt_offsets = np.cumsum([0] + [p.wgt_slots[j][0] for j in cols])
            loads = []
            load_acts = mp.order == "weights" or q == 0
            load_wgts = mp.order == "acts" or q == 0
            if load_acts:
                loads += _loads(Opcode.LOAD_ACT, a_addr[rows[0], 0], act0, len(rows) * p.act_slot)
            if load_wgts:
                loads += _loads(Opcode.LOAD_WGT, w_addr[cols[0], 0], wgt0, int(wgt_offsets[-1]))
                loads += _loads(Opcode.LOAD_PARAM, p_addr[cols[0]], param0, len(cols) * p.param_slot)
            computes = [compute(i, j, 0, act0 + (i - rows[0]) * p.act_slot, wgt0 + int(wgt_offsets[j - cols[0]]),
                                param0 + (j - cols[0]) * p.param_slot, k_range, True)
                        for i in rows for j in cols]
            steps.append((loads, computes))
    return steps

"""A GEMM as an accelerator program: the simple tiler that the system tests and benchmarks use.

C[M, N] = requant(A[M, K] @ W[K, N]) in tiles of ``rows`` x ``cols``, K split into chunks that fit half a buffer,
every buffer double-buffered through the dependency tokens of `codesign.isa`. The loop order is column tile, row
tile, K chunk; when K fits one chunk the weights and parameters of a column tile are loaded once and stay while
its row tiles stream through (weight-stationary), otherwise every chunk loads both operands. The host lays the
operands out in DRAM tile by tile (the layouts of `codesign.isa`); C comes back row-major when an output word is a
whole number of bus beats (2-D stores with a stride), tile by tile otherwise. The mapping space and its cost are
the compiler's business (the next issue); this tiler only has to be correct and keep the array busy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from codesign import isa
from codesign.config import HardwareConfig
from codesign.isa import Compute, Dma, End, Opcode
from codesign.reference import Requant

from .tiles import digit_planes, pack_lanes

PROGRAM_BASE = 0x1000
OUTPUT_FILL = 0xA5            # the output region starts as this pattern, so a missing store cannot pass


def _round_up(value: int, step: int) -> int:
    return -(-value // step) * step


@dataclass
class GemmProgram:
    cfg: HardwareConfig
    commands: list
    memory: list[tuple[int, bytes]]          # DRAM image: program, operands, params, output fill
    prog_addr: int
    out_addr: int
    out_bytes: int
    m: int
    n: int
    relu: bool
    decode_c: object = field(repr=False)     # output region bytes -> C[M, N]
    compute_cycles: int = 0                  # sum of the array's tile cycles (codesign.timing)

    @property
    def program(self) -> bytes:
        return isa.assemble(self.commands)


def _values(blob: bytes, width_bits: int, count: int, signed: bool) -> np.ndarray:
    word = int.from_bytes(blob, "little")
    mask = (1 << width_bits) - 1
    out = np.array([(word >> (i * width_bits)) & mask for i in range(count)], dtype=np.int64)
    return np.where(out >= 1 << (width_bits - 1), out - (1 << width_bits), out) if signed else out


def build_gemm_program(cfg: HardwareConfig, a: np.ndarray, w: np.ndarray, bits: np.ndarray, requant: Requant, *,
                       act_signed: bool = False, base: int = PROGRAM_BASE) -> GemmProgram:
    from codesign.timing import tile_cycles

    words = isa.word_bytes(cfg)
    bus = words.bus
    m, k = a.shape
    n = w.shape[1]
    m_tiles, n_tiles = -(-m // cfg.rows), -(-n // cfg.cols)
    pad_bits = np.ones(n_tiles * cfg.cols, dtype=np.int64)            # padding columns: 1-bit zero weights
    pad_bits[:n] = bits
    tile_digits = [cfg.digits(int(pad_bits[j * cfg.cols:(j + 1) * cfg.cols].max())) for j in range(n_tiles)]

    # ---- K chunk: the largest that fits half of the activation and of the weight buffer
    act_half, wgt_half = cfg.act_buf_bytes // 2, cfg.wgt_buf_bytes // 2
    chunk = min(k, cfg.max_k, act_half // words.act, wgt_half // (max(tile_digits) * words.wgt))
    while _round_up(chunk * words.act, bus) > act_half or _round_up(chunk * max(tile_digits) * words.wgt, bus) > wgt_half:
        chunk -= 1
    if chunk < 1:
        raise ValueError("the buffers are too small for one reduction step")
    chunks = [(k0, min(k0 + chunk, k)) for k0 in range(0, k, chunk)]
    resident = len(chunks) == 1                                        # weights stay across row tiles

    # ---- DRAM layout: A by row tile and chunk, W and params by column tile (and chunk), then C
    a_pad = np.zeros((m_tiles * cfg.rows, k), dtype=np.int64)
    a_pad[:m] = a
    w_pad = np.zeros((k, n_tiles * cfg.cols), dtype=np.int64)
    w_pad[:, :n] = w
    image: list[tuple[int, bytes]] = []
    cursor = base + 0x100000                                            # operands after the program's megabyte

    def place(blob: bytes) -> int:
        nonlocal cursor
        addr = cursor
        image.append((addr, blob))
        cursor += _round_up(len(blob), max(bus, 64))
        return addr

    def words_to_bytes(values: list[int], size: int) -> bytes:
        blob = b"".join(v.to_bytes(size, "little") for v in values)
        return blob + bytes(_round_up(len(blob), bus) - len(blob))

    a_addr = {(i, c): place(words_to_bytes(pack_lanes(a_pad[i * cfg.rows:(i + 1) * cfg.rows, k0:k1].T, cfg.act_bits),
                                             words.act))
              for i in range(m_tiles) for c, (k0, k1) in enumerate(chunks)}
    w_addr, p_addr = {}, {}
    for j in range(n_tiles):
        cols = slice(j * cfg.cols, (j + 1) * cfg.cols)
        for c, (k0, k1) in enumerate(chunks):
            planes = digit_planes(cfg, w_pad[k0:k1, cols], pad_bits[cols], tile_digits[j], filler_seed=j * 31 + c)
            w_addr[j, c] = place(words_to_bytes(planes, words.wgt))
        record = bytearray()
        for col in range(j * cfg.cols, (j + 1) * cfg.cols):
            real = col < n
            record += int(requant.bias[col] if real else 0).to_bytes(4, "little", signed=True)
            record += int(requant.mult[col] if real else 0).to_bytes(2, "little")
            record += bytes([int(requant.shift[col]) if real else 0, int(pad_bits[col])])
        p_addr[j] = place(bytes(record) + bytes(_round_up(words.param, bus) - len(record)))

    row_major = words.out % bus == 0 and words.out * 8 == cfg.cols * cfg.act_bits
    tile_out_bytes = _round_up(cfg.rows * words.out, bus)
    c_row_bytes = n_tiles * words.out
    out_bytes = m_tiles * cfg.rows * c_row_bytes if row_major else m_tiles * n_tiles * tile_out_bytes
    out_addr = place(bytes([OUTPUT_FILL]) * out_bytes)

    # ---- the program
    halves = {"act": act_half, "wgt": wgt_half, "param": cfg.param_buf_bytes // 2, "out": cfg.out_buf_bytes // 2}
    computes = [(j, i, c) for j in range(n_tiles) for i in range(m_tiles) for c in range(len(chunks))]
    emits = [t for t, (_, _, c) in enumerate(computes) if c == len(chunks) - 1]
    commands: list = []
    compute_cycles = 0
    for t, (j, i, c) in enumerate(computes):
        k0, k1 = chunks[c]
        kc = k1 - k0
        slot = t % 2
        group = [Dma(opcode=Opcode.LOAD_ACT, dram_addr=a_addr[i, c], buf_addr=slot * halves["act"], rows=1,
                     row_bytes=_round_up(kc * words.act, bus))]
        wgt_slot = (j if resident else t) % 2
        if not resident or i == 0:
            group += [Dma(opcode=Opcode.LOAD_WGT, dram_addr=w_addr[j, c], buf_addr=wgt_slot * halves["wgt"], rows=1,
                          row_bytes=_round_up(kc * tile_digits[j] * words.wgt, bus)),
                      Dma(opcode=Opcode.LOAD_PARAM, dram_addr=p_addr[j], buf_addr=wgt_slot * halves["param"], rows=1,
                          row_bytes=_round_up(words.param, bus))]
        # The first load waits until the compute two tiles back has freed this half; the last one hands over.
        group[0] = _with(group[0], pop_next=t >= 2)
        group[-1] = _with(group[-1], push_next=True)
        commands += group

        emit = c == len(chunks) - 1
        e = emits.index(t) if emit else -1
        commands.append(Compute(
            act_addr=slot * halves["act"], wgt_addr=wgt_slot * halves["wgt"], param_addr=wgt_slot * halves["param"],
            out_addr=(e % 2) * halves["out"] if emit else 0, k=kc, act_signed=act_signed, accumulate=c > 0,
            emit=emit, relu=requant.relu, out_bits=requant.out_bits,
            pop_prev=True, push_prev=t < len(computes) - 2,
            pop_next=emit and e >= 2, push_next=emit))
        compute_cycles += tile_cycles(cfg, kc, int(pad_bits[j * cfg.cols:(j + 1) * cfg.cols].max()), emit=emit)
        if emit:
            last_two = e >= len(emits) - 2
            if row_major:
                store = Dma(opcode=Opcode.STORE, dram_addr=out_addr + i * cfg.rows * c_row_bytes + j * words.out,
                            buf_addr=(e % 2) * halves["out"], rows=cfg.rows, row_bytes=words.out,
                            dram_stride=c_row_bytes)
            else:
                store = Dma(opcode=Opcode.STORE, dram_addr=out_addr + (i * n_tiles + j) * tile_out_bytes,
                            buf_addr=(e % 2) * halves["out"], rows=1, row_bytes=tile_out_bytes)
            commands.append(_with(store, pop_prev=True, push_prev=not last_two))
    commands.append(End())
    image.insert(0, (base, isa.assemble(commands)))

    def decode_c(blob: bytes) -> np.ndarray:
        c_out = np.zeros((m_tiles * cfg.rows, n_tiles * cfg.cols), dtype=np.int64)
        for i in range(m_tiles):
            for j in range(n_tiles):
                for r in range(cfg.rows):
                    if row_major:
                        at = (i * cfg.rows + r) * c_row_bytes + j * words.out
                    else:
                        at = (i * n_tiles + j) * tile_out_bytes + r * words.out
                    c_out[i * cfg.rows + r, j * cfg.cols:(j + 1) * cfg.cols] = _values(
                        blob[at:at + words.out], cfg.act_bits, cfg.cols, signed=not requant.relu)
        return c_out[:m, :n]

    return GemmProgram(cfg=cfg, commands=commands, memory=image, prog_addr=base, out_addr=out_addr,
                       out_bytes=out_bytes, m=m, n=n, relu=requant.relu, decode_c=decode_c,
                       compute_cycles=compute_cycles)


def _with(command, **flags):
    from dataclasses import replace
    return replace(command, **flags)

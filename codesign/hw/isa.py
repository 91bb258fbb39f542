"""The accelerator's command set: one definition, read by the compiler, the RTL decoder and the disassembler.

Every command is 128 bits (16 bytes, little-endian in memory). Its low 8 bits are the same for all: a 4-bit opcode and
four dependency flags. The rest depends on the format:

    DMA      LOAD_ACT, LOAD_WGT, LOAD_PARAM, STORE: move ``rows`` rows of ``row_bytes`` between DRAM and a buffer.
             DRAM rows start ``dram_stride`` bytes apart; in the buffer they are contiguous from ``buf_addr``.
    COMPUTE  one array pass over a tile: K activation words from ``act_addr``, K * D weight digit planes from
             ``wgt_addr``, the column tile's parameter word at ``param_addr``; with ``emit``, the requantized
             ``rows`` x ``cols`` tile goes to the output buffer at ``out_addr``.
    DW_COMPUTE  one depthwise tile: ``rows`` consecutive output pixels of one output row by ``cols`` channels, a
             ``kh`` x ``kw`` kernel at ``stride`` 1 or 2. Its input window lies in the activation buffer as pixel
             words: input row i of the window starts at ``act_addr + i * row_pitch`` and holds ``(rows - 1) *
             stride + kw`` consecutive pixels (padding included). Each input pixel is read once per kernel row
             and stride phase (`codesign.hw.timing.depthwise_inputs`); the weights are K = kh * kw digit-plane
             steps in the array's tap order (`codesign.hw.timing.depthwise_chains`); the parameter word and the
             output are a COMPUTE's. It always emits.
    END      the program ends once every command before it has finished and every write is acknowledged.

Dependencies (the scheme of VTA, Moreau et al. 2019): the controller runs three units in parallel, each in program
order, LOAD -> COMPUTE -> STORE. A unit's "prev" is the one before it in that chain and "next" the one after.
``pop_*`` waits for a token from that neighbour before the command starts; ``push_*`` sends it one when the command
has finished. A LOAD that fills a buffer half pushes next; the COMPUTE that reads it pops prev, and pushes prev when
it is done with the half so that the LOAD two tiles later (pop next) may overwrite it. That is what double buffering
needs, and nothing more.

Operand layout in the buffers and in DRAM (the compiler writes it; see `word_bytes`):

    act word    one reduction step k of a tile: ``rows`` activations of ``act_bits`` bits, row 0 in the low bits
    wgt word    one digit plane j of step k: ``cols`` digits of ``digit_bits`` bits; a tile is K * D words, step
                major, D = ceil(widest column bits / g). Weights are stored by digit planes, so a column tile of
                b-bit weights moves K * ceil(b / g) * cols * g bits: memory traffic scales with the bits.
    param word  ``cols`` records of 8 bytes: bias int32, mult u16, shift u8, weight bits u8
    out word    one row of the requantized tile: ``cols`` values of ``act_bits`` bits
    pixel word  a depthwise input pixel, ``cols`` channels of ``act_bits`` bits: an out word, so a layer's output
                tiles are the next depthwise layer's input pixels as they are

Each word is padded to a power-of-two number of bytes. DMA addresses, row lengths and strides are multiples of the
bus width; COMPUTE addresses are multiples of their word size.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields

from codesign.errors import InputError
from codesign.hw.config import HardwareConfig, ceil_div

COMMAND_BITS = 128
COMMAND_BYTES = COMMAND_BITS // 8
FETCH_BYTES = 128              # the controller fetches the program in requests of this many bytes
PARAM_RECORD_BYTES = 8


class Opcode(enum.IntEnum):
    # 0 is illegal on purpose: a controller that runs into zeroed memory stops with an error.
    LOAD_ACT = 1
    LOAD_WGT = 2
    LOAD_PARAM = 3
    COMPUTE = 4
    STORE = 5
    END = 6
    DW_COMPUTE = 7


LOADS = (Opcode.LOAD_ACT, Opcode.LOAD_WGT, Opcode.LOAD_PARAM)

#: Field tables, LSB first: (name, width). The RTL builds its decode layouts from these.
HEADER_FIELDS = (("opcode", 4), ("pop_prev", 1), ("pop_next", 1), ("push_prev", 1), ("push_next", 1))
DMA_FIELDS = HEADER_FIELDS + (("dram_addr", 32), ("buf_addr", 24), ("rows", 16), ("row_bytes", 16),
                              ("dram_stride", 32))
COMPUTE_FIELDS = HEADER_FIELDS + (("act_addr", 24), ("wgt_addr", 24), ("out_addr", 24), ("param_addr", 16),
                                  ("k", 16), ("act_signed", 1), ("accumulate", 1), ("emit", 1), ("relu", 1),
                                  ("out_bits", 5))
DW_FIELDS = HEADER_FIELDS + (("act_addr", 24), ("wgt_addr", 24), ("out_addr", 24), ("param_addr", 16),
                             ("row_pitch", 16), ("kh", 3), ("kw", 3), ("stride", 2), ("act_signed", 1), ("relu", 1),
                             ("out_bits", 5))
assert all(sum(w for _, w in table) <= COMMAND_BITS for table in (DMA_FIELDS, COMPUTE_FIELDS, DW_FIELDS))


@dataclass(frozen=True)
class Command:
    """Common part of every command: its dependency flags."""
    pop_prev: bool = False
    pop_next: bool = False
    push_prev: bool = False
    push_next: bool = False


@dataclass(frozen=True)
class Dma(Command):
    """LOAD_ACT / LOAD_WGT / LOAD_PARAM (DRAM -> buffer) or STORE (output buffer -> DRAM)."""
    opcode: Opcode = Opcode.LOAD_ACT
    dram_addr: int = 0
    buf_addr: int = 0
    rows: int = 1
    row_bytes: int = 0
    dram_stride: int = 0

    @property
    def bytes(self) -> int:
        return self.rows * self.row_bytes


@dataclass(frozen=True)
class TileCommand(Command):
    """What COMPUTE and DW_COMPUTE share: one array tile's buffer addresses and its output format."""
    act_addr: int = 0
    wgt_addr: int = 0
    out_addr: int = 0
    param_addr: int = 0
    act_signed: bool = False
    relu: bool = False
    out_bits: int = 8


@dataclass(frozen=True)
class Compute(TileCommand):
    opcode: Opcode = Opcode.COMPUTE
    k: int = 1
    accumulate: bool = False
    emit: bool = True


@dataclass(frozen=True)
class DwCompute(TileCommand):
    opcode: Opcode = Opcode.DW_COMPUTE
    row_pitch: int = 0
    kh: int = 3
    kw: int = 3
    stride: int = 1


@dataclass(frozen=True)
class End(Command):
    opcode: Opcode = Opcode.END


def _table(opcode: Opcode):
    if opcode == Opcode.COMPUTE:
        return COMPUTE_FIELDS, Compute
    if opcode == Opcode.DW_COMPUTE:
        return DW_FIELDS, DwCompute
    if opcode == Opcode.END:
        return HEADER_FIELDS, End
    return DMA_FIELDS, Dma


def encode(command: Command) -> int:
    """The 128-bit word of ``command``; a field that does not fit its width is refused."""
    table, _ = _table(command.opcode)
    word, lsb = 0, 0
    for name, width in table:
        value = int(getattr(command, name))
        if not 0 <= value < (1 << width):
            raise InputError(f"{command.opcode.name}.{name}", value, f"an integer from 0 to {(1 << width) - 1}")
        word |= value << lsb
        lsb += width
    return word


def decode(word: int) -> Command:
    opcode_value = word & 0xF
    try:
        opcode = Opcode(opcode_value)
    except ValueError:
        raise InputError("opcode", opcode_value, f"one of {[f'{o.value} ({o.name})' for o in Opcode]}") from None
    table, cls = _table(opcode)
    values, lsb = {}, 0
    for name, width in table:
        values[name] = (word >> lsb) & ((1 << width) - 1)
        lsb += width
    kinds = {f.name: f.type for f in fields(cls)}
    values = {k: (bool(v) if kinds.get(k) in (bool, "bool") else v) for k, v in values.items()}
    values["opcode"] = opcode
    return cls(**values)


def assemble(commands: list[Command]) -> bytes:
    """A program as it lies in memory."""
    return b"".join(encode(c).to_bytes(COMMAND_BYTES, "little") for c in commands)


def disassemble_bytes(blob: bytes) -> list[Command]:
    if len(blob) % COMMAND_BYTES:
        raise InputError("program", f"{len(blob)} bytes", f"a multiple of {COMMAND_BYTES} bytes")
    commands = []
    for index, at in enumerate(range(0, len(blob), COMMAND_BYTES)):
        try:
            commands.append(decode(int.from_bytes(blob[at:at + COMMAND_BYTES], "little")))
        except InputError as exc:       # name the word: a program is thousands of them
            raise exc.within(f"command {index} (byte {at})") from None
    return commands


def format_command(command: Command) -> str:
    """One readable line: ``LOAD_WGT  dram=0x1000 -> buf=0x0 2x64B stride=64  [push_next]``."""
    deps = [f.name for f in fields(Command) if getattr(command, f.name)]
    dep_text = f"  [{' '.join(deps)}]" if deps else ""
    op = command.opcode.name.ljust(10)
    if isinstance(command, Dma):
        arrow = f"buf=0x{command.buf_addr:x} -> dram=0x{command.dram_addr:x}" if command.opcode == Opcode.STORE \
            else f"dram=0x{command.dram_addr:x} -> buf=0x{command.buf_addr:x}"
        body = f"{arrow} {command.rows}x{command.row_bytes}B stride={command.dram_stride}"
    elif isinstance(command, Compute):
        flags = [n for n in ("act_signed", "accumulate", "emit", "relu") if getattr(command, n)]
        body = (f"act=0x{command.act_addr:x} wgt=0x{command.wgt_addr:x} param=0x{command.param_addr:x} "
                f"out=0x{command.out_addr:x} k={command.k} out_bits={command.out_bits}"
                + (f" {','.join(flags)}" if flags else ""))
    elif isinstance(command, DwCompute):
        flags = [n for n in ("act_signed", "relu") if getattr(command, n)]
        body = (f"act=0x{command.act_addr:x} pitch={command.row_pitch} wgt=0x{command.wgt_addr:x} "
                f"param=0x{command.param_addr:x} out=0x{command.out_addr:x} {command.kh}x{command.kw}/"
                f"{command.stride} out_bits={command.out_bits}" + (f" {','.join(flags)}" if flags else ""))
    else:
        body = ""
    return f"{op}{body}{dep_text}".rstrip()


def disassemble(blob: bytes) -> str:
    return "".join(f"{i:5d}: {format_command(c)}\n" for i, c in enumerate(disassemble_bytes(blob)))


# ---- operand layout
def _pow2_bytes(bits: int) -> int:
    nbytes = max(1, ceil_div(bits, 8))
    return 1 << (nbytes - 1).bit_length()


@dataclass(frozen=True)
class WordBytes:
    """Bytes per buffer word of each operand, and of one bus beat."""
    act: int
    wgt: int
    param: int
    out: int
    bus: int


def word_bytes(cfg: HardwareConfig) -> WordBytes:
    return WordBytes(
        act=_pow2_bytes(cfg.rows * cfg.act_bits),
        wgt=_pow2_bytes(cfg.cols * cfg.digit_bits),
        param=_pow2_bytes(cfg.cols * PARAM_RECORD_BYTES * 8),
        out=_pow2_bytes(cfg.cols * cfg.act_bits),
        bus=cfg.axi_data_bits // 8,
    )

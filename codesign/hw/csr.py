"""The accelerator's AXI4-Lite register map and error codes: one definition for the RTL, the C header and the driver.

All registers are 32 bits wide at word-aligned byte offsets. Each counter (`COUNTER_BITS` wide) reads as a
zero-extended _LO / _HI word pair; read _LO first, which latches _HI, so that the pair is consistent while the
counter runs.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from codesign.hw.config import HardwareConfig

ID_VALUE = 0x43445341          # "CDSA", codesign systolic accelerator
VERSION = 0x00010000           # major.minor in the high and low 16 bits
ADDR_BITS = 8                  # register offsets 0x00 .. 0xFC
ERROR_SHIFT = 8                # STATUS bits 8..15 hold the `Error` code


class Error(enum.IntEnum):
    """STATUS.error: why a program stopped. The core stops cleanly: it lets every AXI burst already issued finish."""
    NONE = 0
    ILLEGAL_OPCODE = 1         # the opcode field is not an `Opcode`
    BUFFER_RANGE = 2           # a buffer access runs past the end of its buffer
    ALIGNMENT = 3              # a DMA address / length / stride not a multiple of the bus width, or a COMPUTE
                               # address not a multiple of its word size
    BAD_FIELD = 4              # k, out_bits or a parameter record (weight bits, shift, bias) out of range
    READ_RESPONSE = 5          # SLVERR or DECERR on the read channel
    WRITE_RESPONSE = 6         # SLVERR or DECERR on the write response channel
    PROGRAM_OVERRUN = 7        # the program length ran out before END


class Control(enum.IntFlag):
    START = 1                  # self-clearing: fetch and run the program at PROG_ADDR
    SOFT_RESET = 2             # self-clearing: return to idle and clear status; use it only when not busy


class Status(enum.IntFlag):
    BUSY = 1
    DONE = 2                   # set when a program ends (with or without an error), cleared by START


@dataclass(frozen=True)
class Register:
    name: str
    offset: int
    access: str                # "ro", "rw" or "wo"
    doc: str


def _config_registers() -> list[Register]:
    names = ("rows", "cols", "act_bits", "weight_bits_max", "digit_bits", "acc_bits", "max_k", "mult_bits",
             "act_buf_bytes", "wgt_buf_bytes", "out_buf_bytes", "param_buf_bytes", "axi_data_bits")
    return [Register(f"CFG_{n.upper()}", 0x40 + 4 * i, "ro", f"HardwareConfig.{n}") for i, n in enumerate(names)]


COUNTERS = ("cycles", "compute_cycles", "stall_cycles", "bytes_read", "bytes_written")
COUNTER_BITS = 48               # each counter's width in the RTL; its _LO / _HI pair reads it zero-extended
_COUNTER_DOCS = {
    "cycles": "cycles from START to DONE",
    "compute_cycles": "cycles the systolic array takes operands (a tile's feed; its skew and drain overlap the next "
                      "tiles)",
    "stall_cycles": "cycles the compute unit holds a command but waits for a DMA token (data not loaded yet, or "
                    "its output half not yet stored)",
    "bytes_read": "bytes read over AXI (program and operands)",
    "bytes_written": "bytes written over AXI",
}

REGISTERS: tuple[Register, ...] = tuple(
    [
        Register("ID", 0x00, "ro", f"0x{ID_VALUE:08X}"),
        Register("VERSION", 0x04, "ro", "major << 16 | minor"),
        Register("CONTROL", 0x08, "wo", "bit 0 START, bit 1 SOFT_RESET (both self-clearing)"),
        Register("STATUS", 0x0C, "ro", "bit 0 BUSY, bit 1 DONE, bits 8..15 error code"),
        Register("PROG_ADDR", 0x10, "rw", "byte address of the program in memory (16-byte aligned)"),
        Register("PROG_LEN", 0x14, "rw", "number of 16-byte commands the program may hold, END included"),
        Register("ERROR_PC", 0x18, "ro", "index of the command that raised the error"),
    ]
    + _config_registers()
    + [Register(f"{name.upper()}_{half}", 0x80 + 8 * i + 4 * j, "ro", _COUNTER_DOCS[name] + f" ({half.lower()} word)")
       for i, name in enumerate(COUNTERS) for j, half in enumerate(("LO", "HI"))]
)

OFFSETS = {r.name: r.offset for r in REGISTERS}


def config_values(cfg: HardwareConfig) -> dict[str, int]:
    """The value of each CFG_* register for ``cfg``."""
    return {r.name: getattr(cfg, r.name[4:].lower()) for r in REGISTERS if r.name.startswith("CFG_")}

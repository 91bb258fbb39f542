"""Collateral that ships with the accelerator's Verilog: a C header, a FuseSoC core file, a datasheet and the
Verilator waivers for the idioms of Amaranth's Verilog (`rtl_gen.emit.verilator_waivers`), which the core's lint
target reads.

The first three are rendered from `codesign.hw.csr`, `codesign.hw.isa` and the `HardwareConfig` the RTL is built
from, so none of them is a second definition that could drift from the hardware.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import re
from pathlib import Path

from amaranth.lib import wiring

import codesign
import templates
from codesign.files import atomic_write_text
from codesign.hw import csr, isa
from codesign.hw.config import HardwareConfig
from rtl_gen.emit import port_list, verilator_waivers

# The command class that `isa.decode` returns for an opcode -> the field table of that format.
_FORMATS = {isa.Dma: ("DMA", isa.DMA_FIELDS), isa.Compute: ("COMPUTE", isa.COMPUTE_FIELDS),
            isa.DwCompute: ("DW_COMPUTE", isa.DW_FIELDS), isa.End: ("END", isa.HEADER_FIELDS)}
_MEMBER_LINE = re.compile(r"^\s*(\w+)\s*=[^#]*#\s?(.*)$")


# The suffixes of the files that `write_collateral` writes beside ``<top>.v``, in its order.
SUFFIXES = ("h", "core", "md", "vlt")


def write_collateral(cfg: HardwareConfig, component: wiring.Component, top: str, out_dir: str | Path) -> list[Path]:
    """Write ``<top>.h``, ``<top>.core``, ``<top>.md`` and ``<top>.vlt`` (`SUFFIXES`) for the accelerator
    ``component`` of ``cfg``, whose Verilog is ``<top>.v`` in ``out_dir``; return their paths."""
    context = _context(cfg, component, top)
    texts = {suffix: templates.render(template, **context)
             for suffix, template in (("h", "accelerator.h.j2"), ("core", "accelerator.core.j2"),
                                      ("md", "datasheet.md.j2"))}
    texts["vlt"] = verilator_waivers(context["verilog"])
    return [atomic_write_text(Path(out_dir) / f"{top}.{suffix}", texts[suffix]) for suffix in SUFFIXES]


def _context(cfg: HardwareConfig, component: wiring.Component, top: str) -> dict:
    registers = {r.name: r for r in csr.REGISTERS}
    return {
        "top": top,
        "verilog": f"{top}.v",
        "waivers": f"{top}.vlt",
        "generator_version": codesign.__version__,
        "cfg": cfg.to_dict(),
        "digest": cfg.digest(),
        "id_value": csr.ID_VALUE,
        "csr_version": csr.VERSION,
        "csr_doc": _body(csr.__doc__),
        "registers": csr.REGISTERS,
        "control": _members(csr.Control),
        "status": _members(csr.Status),
        "error_shift": csr.ERROR_SHIFT,
        "error_doc": inspect.getdoc(csr.Error),
        "errors": _members(csr.Error),
        "config_values": csr.config_values(cfg),
        "counter_bits": csr.COUNTER_BITS,
        "counters": [_counter(name, registers) for name in csr.COUNTERS],
        "isa_doc": _body(isa.__doc__),
        "command_bits": isa.COMMAND_BITS,
        "command_bytes": isa.COMMAND_BYTES,
        "opcodes": [{"name": op.name, "value": op.value, "format": _FORMATS[type(isa.decode(op))][0]}
                    for op in isa.Opcode],
        "header_fields": _layout(isa.HEADER_FIELDS),
        "formats": [{"name": name, "fields": _layout(table),
                     "opcodes": [op.name for op in isa.Opcode if type(isa.decode(op)) is cls]}
                    for cls, (name, table) in _FORMATS.items()],
        "word_bytes": dataclasses.asdict(isa.word_bytes(cfg)),
        "param_record_bytes": isa.PARAM_RECORD_BYTES,
        "ports": port_list(component),
    }


def _counter(name: str, registers: dict[str, csr.Register]) -> dict:
    lo, hi = registers[f"{name.upper()}_LO"], registers[f"{name.upper()}_HI"]
    return {"name": name, "lo": lo.offset, "hi": hi.offset, "doc": lo.doc.removesuffix(" (lo word)")}


def _body(docstring: str) -> str:
    """A module docstring without its summary line: the reference text the datasheet quotes."""
    return inspect.cleandoc(docstring).partition("\n\n")[2]


def _layout(table: tuple[tuple[str, int], ...]) -> list[dict]:
    """Name, LSB and width of each field of an `isa` field table (listed LSB first)."""
    lsbs = [sum(width for _, width in table[:i]) for i in range(len(table))]
    return [{"name": name, "lsb": lsb, "width": width} for (name, width), lsb in zip(table, lsbs)]


def _members(enum_class: type[enum.Enum]) -> list[dict]:
    """Name, value and source comment of each member. `codesign.hw.csr` documents members with a trailing ``#``
    comment, continued on comment-only lines that start in the same column; reading it from the source keeps the
    header and the datasheet word for word with it."""
    comments, member, column = {}, None, -1
    for line in inspect.getsource(enum_class).splitlines():
        match = _MEMBER_LINE.match(line)
        if match and match[1] in enum_class.__members__:
            member, column = match[1], line.index("#")
            comments[member] = match[2].strip()
        elif member and line.lstrip().startswith("#") and line.index("#") == column:
            comments[member] += " " + line.strip().lstrip("#").strip()
        else:
            member = None
    return [{"name": m.name, "value": m.value, "doc": comments.get(m.name, "")} for m in enum_class]

"""Amaranth views of the ISA's command formats, built from the field tables in `codesign.hw.isa` (the one
definition)."""

from amaranth.lib import data

from codesign.hw import isa


def _layout(table) -> data.StructLayout:
    used = sum(width for _, width in table)
    return data.StructLayout({**{name: width for name, width in table}, "_reserved": isa.COMMAND_BITS - used})


HEADER = _layout(isa.HEADER_FIELDS)
DMA = _layout(isa.DMA_FIELDS)
COMPUTE = _layout(isa.COMPUTE_FIELDS)

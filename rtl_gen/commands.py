"""Amaranth views of the ISA's command formats, built from the field tables in `codesign.hw.isa` (the one
definition)."""

from amaranth.lib import data

from codesign.hw import isa


def _layout(table) -> data.StructLayout:
    """The fields of ``table``, LSB first, then the reserved bits up to `isa.COMMAND_BITS` where any are left (a
    zero-width field would be a ``[-1:0]`` wire in the Verilog)."""
    reserved = isa.COMMAND_BITS - sum(width for _, width in table)
    return data.StructLayout({**dict(table), **({"_reserved": reserved} if reserved else {})})


HEADER = _layout(isa.HEADER_FIELDS)
DMA = _layout(isa.DMA_FIELDS)
COMPUTE = _layout(isa.COMPUTE_FIELDS)
DW_COMPUTE = _layout(isa.DW_FIELDS)

"""Verilog emission of Amaranth components, reproducible (no source paths) and named."""

from amaranth.back import verilog
from amaranth.lib import wiring


def to_verilog(component: wiring.Component, name: str) -> str:
    """Verilog text of ``component`` with top module ``name``; ``emit_src=False`` keeps checkout paths out of it."""
    return verilog.convert(component, name=name, emit_src=False)

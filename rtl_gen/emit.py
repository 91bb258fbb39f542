"""Verilog emission of Amaranth components, reproducible (no source paths) and named."""

import re

from amaranth.back import verilog
from amaranth.hdl._ir import PortDirection
from amaranth.lib import wiring

# Yosys declares one `reg <name> = 0;` per module and reads it in every `always @*` block, so that the blocks run at
# time zero. Icarus creates no event for a declaration initializer: the blocks whose inputs never change (an FSM
# that stays in its reset state, say) keep X forever. An explicit #0 assignment gives Icarus the event.
_ZERO_TIME_TRIGGER = re.compile(r"^(\s*)reg (\\\$auto\$verilog_backend\.cc:\d+:dump_module\$\d+ ) = 0;$", re.M)


def to_verilog(component: wiring.Component, name: str, *, icarus: bool = False) -> str:
    """Verilog text of ``component`` with top module ``name``; ``emit_src=False`` keeps checkout paths out of it.

    ``icarus`` adds the time-zero events that Icarus needs to evaluate combinational blocks (see above); the
    output for Verilator and synthesis is Amaranth's, untouched.
    """
    text = verilog.convert(component, name=name, emit_src=False, ports=_ports(component))
    if icarus:
        text = _ZERO_TIME_TRIGGER.sub(r"\1reg \2 = 0;\n\1initial #0 \2 = 1;", text)
    return text


def _ports(component: wiring.Component) -> dict:
    """Verilog port name -> (signal, direction). Amaranth joins a member's path with ``__``; a component whose
    ``port_separator`` says otherwise (the accelerator: ``m_axi_araddr``, as vendor tools expect) gets its own."""
    separator = getattr(component, "port_separator", "__")
    ports = {}
    for path, member, value in component.signature.flatten(component):
        direction = PortDirection.Input if member.flow == wiring.In else PortDirection.Output
        ports[separator.join(map(str, path))] = (value.as_value() if hasattr(value, "as_value") else value, direction)
    return ports


def port_list(component: wiring.Component) -> list[dict]:
    """The Verilog ports of ``component``: name, direction and width."""
    ports = [{"name": name, "direction": "input" if direction == PortDirection.Input else "output",
              "width": len(value)} for name, (value, direction) in _ports(component).items()]
    return ports + [{"name": "clk", "direction": "input", "width": 1},
                    {"name": "rst", "direction": "input", "width": 1}]

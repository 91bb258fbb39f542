"""Verilog emission of Amaranth components, reproducible (no source paths) and named, and the Verilator waivers
for the idioms of that Verilog."""

import re

from amaranth.back import verilog
from amaranth.hdl._ir import PortDirection
from amaranth.lib import wiring

import codesign
import templates

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


# Verilator rules that Amaranth's Verilog breaks by construction (measured on the accelerator with
# `verilator --lint-only -Wall`), each with the reason it is an idiom of the emitter rather than a defect. The first
# four are on by default, the others come with -Wall.
VERILATOR_WAIVERS = {
    "WIDTHEXPAND": "Amaranth's arithmetic has its own width rules (operands extended to the result, constants as wide "
                   "as their value); Yosys writes the operands at their own widths and leaves the extension to "
                   "Verilog's context-determined sizing, which computes the same value.",
    "WIDTHTRUNC": "the converse: an assignment keeps the low bits of a wider Amaranth expression, and '!x' / 'x ? :' "
                  "test a multi-bit value, as Amaranth's semantics define.",
    "CASEINCOMPLETE": "each always @* block drives one signal: it assigns the signal's default first, then a case "
                      "over a Switch or FSM state that lists only the arms that assign that signal (a Default arm "
                      "that assigns nothing is dropped too), so the omitted values keep the default and make no "
                      "latch.",
    "ASCRANGE": "a zero-width Amaranth signal (the row counter of a one-row array, a range(1)) is declared [-1:0].",
    "PROCASSINIT": "a register's reset value is its declaration's initial value ('reg x = 0;'), which the always "
                   "blocks then assign.",
    "UNUSEDSIGNAL": "every named Amaranth signal is kept, including the fields of a command or bus that a unit "
                    "does not read and the internal copies of a submodule's ports.",
    "DECLFILENAME": "one file holds the top and every submodule, named by its hierarchy ('accelerator.core').",
}


def verilator_waivers(verilog_name: str) -> str:
    """A Verilator configuration file (``.vlt``, given before the Verilog) that waives `VERILATOR_WAIVERS` in the
    file named ``verilog_name`` (matched as ``*<verilog_name>``, so it holds wherever a build copies it)."""
    return templates.render("verilator.vlt.j2", verilog=verilog_name, stem=verilog_name.rpartition(".")[0],
                            generator_version=codesign.__version__, waivers=VERILATOR_WAIVERS)


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

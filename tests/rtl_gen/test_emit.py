"""Verilog emission: deterministic, Icarus-only additions, the port list."""

from codesign.hw.config import HardwareConfig
from rtl_gen.array_core import ArrayCore
from rtl_gen.emit import port_list, to_verilog


def test_emission_is_deterministic():
    cfg = HardwareConfig(rows=2, cols=2)
    assert to_verilog(ArrayCore(cfg), "array_core") == to_verilog(ArrayCore(cfg), "array_core")


def test_icarus_variant_only_adds_time_zero_events():
    core = ArrayCore(HardwareConfig(rows=1, cols=2))
    plain, icarus = to_verilog(core, "x"), to_verilog(core, "x", icarus=True)
    added = [line for line in icarus.splitlines() if line not in plain.splitlines()]
    assert added and all(line.strip().startswith("initial #0 ") for line in added)


def test_port_list_covers_clock_reset_and_streams():
    core = ArrayCore(HardwareConfig(rows=1, cols=1))
    names = {p["name"] for p in port_list(core)}
    assert {"clk", "rst", "cmd__valid", "cmd__ready", "out__valid", "busy", "cycles"} <= names
    verilog = to_verilog(core, "array_core")
    assert all(name in verilog for name in names)

import hashlib
import json

from codesign.hw.config import HardwareConfig
from rtl_gen.array_core import ArrayCore
from rtl_gen.emit import port_list, to_verilog, write_rtl


def test_write_rtl_writes_the_accelerator_its_collateral_and_a_true_manifest(tmp_path):
    cfg = HardwareConfig(rows=2, cols=3, digit_bits=4, axi_data_bits=128)
    manifest = write_rtl(cfg, tmp_path)
    verilog = (tmp_path / "accelerator.v").read_text()
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest
    assert manifest["sha256"] == hashlib.sha256(verilog.encode()).hexdigest()
    assert HardwareConfig.from_dict(manifest["config"]) == cfg
    assert manifest["collateral"] == ["accelerator.h", "accelerator.core", "accelerator.md"]
    assert all((tmp_path / name).is_file() for name in manifest["collateral"])
    assert "module accelerator(" in verilog
    assert str(tmp_path.parent) not in verilog and "/work/" not in verilog   # no source paths
    ports = {p["name"]: p for p in manifest["ports"]}
    # Vendor-style interface names, so IP integrators infer the AXI interfaces.
    assert ports["m_axi_rdata"] == {"name": "m_axi_rdata", "direction": "input", "width": 128}
    assert ports["m_axi_araddr"]["direction"] == "output" and ports["s_axil_awaddr"]["direction"] == "input"
    assert ports["irq"]["direction"] == "output"
    for port in ports:
        assert f" {port};" in verilog or f" {port} ;" in verilog or f"] {port};" in verilog
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*"))


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

"""`write_rtl`: the Verilog, its collateral and a manifest that tells the truth about them."""

import hashlib
import json

from codesign.hw.config import HardwareConfig
from rtl_gen.ip import write_rtl


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

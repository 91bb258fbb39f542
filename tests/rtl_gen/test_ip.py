"""`write_rtl`: the Verilog, its collateral and a manifest that tells the truth about them, written as one folder."""

import hashlib
import json

import pytest

import rtl_gen.ip
from codesign.errors import InputError
from codesign.hw.config import HardwareConfig
from rtl_gen.ip import IP_FILES, write_rtl

SMALL = HardwareConfig(rows=2, cols=2)


def test_write_rtl_writes_the_accelerator_its_collateral_and_a_true_manifest(tmp_path):
    cfg = HardwareConfig(rows=2, cols=3, digit_bits=4, axi_data_bits=128)
    manifest = write_rtl(cfg, tmp_path)
    verilog = (tmp_path / "accelerator.v").read_text()
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest
    assert manifest["sha256"] == hashlib.sha256(verilog.encode()).hexdigest()
    assert HardwareConfig.from_dict(manifest["config"]) == cfg
    assert manifest["collateral"] == ["accelerator.h", "accelerator.core", "accelerator.md", "accelerator.vlt"]
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
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(IP_FILES)      # nothing else, no temporaries


def test_a_new_configuration_replaces_the_whole_folder(tmp_path):
    out = tmp_path / "rtl"
    write_rtl(HardwareConfig(rows=1, cols=2), out)
    manifest = write_rtl(SMALL, out)
    assert json.loads((out / "manifest.json").read_text()) == manifest and manifest["config"] == SMALL.to_dict()
    assert SMALL.digest() in (out / "accelerator.h").read_text()
    assert sorted(p.name for p in out.iterdir()) == sorted(IP_FILES)
    assert [p.name for p in tmp_path.iterdir()] == ["rtl"]                   # no temporary or old folder beside it


@pytest.mark.parametrize("writer", ["write_collateral", "atomic_write_json"])
def test_a_failed_write_leaves_the_previous_folder_intact(tmp_path, monkeypatch, writer):
    # The manifest is written last, after the Verilog and the collateral of the new configuration: a failure there
    # is the one that would have left a mix of the two configurations in a file-by-file write.
    out = tmp_path / "rtl"
    write_rtl(HardwareConfig(rows=1, cols=2), out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(rtl_gen.ip, writer, fail)
    with pytest.raises(OSError, match="disk full"):
        write_rtl(SMALL, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["rtl"]


def test_a_failed_first_write_leaves_no_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(rtl_gen.ip, "atomic_write_json", lambda *args: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        write_rtl(SMALL, tmp_path / "rtl")
    assert list(tmp_path.iterdir()) == []


def test_a_folder_with_other_files_is_refused_untouched(tmp_path):
    (tmp_path / "accelerator.v").write_text("old")
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="notes.txt"):
        write_rtl(SMALL, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["accelerator.v", "notes.txt"]
    assert (tmp_path / "accelerator.v").read_text() == "old"

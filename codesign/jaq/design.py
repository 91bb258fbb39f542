"""`design.json`: what `make search` chose, with the figures it is judged by, and the files that go with it.

Keys (besides the design itself: ``network``, ``bits``, ``hardware``, ``mappings``):

- ``acc``: test accuracy of the chosen design, in integer mode (the exported integer model's);
- ``cycles``, ``energy_pj``, ``dram_bytes``: the chosen network on the chosen hardware, predicted by the calibrated
  cost model for the mappings the compiler will use, per batch of ``batch`` images (one accelerator run, as
  `make verify` runs it; ``cycles_per_image`` divides); ``area_luts`` (PE array), ``brams``;
- ``acc_int8`` / ``cycles_int8``: the same network at uniform 8-bit on the same hardware, retrained alike;
  ``cycles_ratio_vs_int8`` = cycles / cycles_int8 (the target is <= 0.70 at no more than 1 point lower accuracy);
- ``baselines``: uniform 4-bit, the fixed-hardware search and random search, each retrained and priced alike;
- ``files``: the trained quantized model (``model.pt``), its integer model (``integer_model.json``, the compiler's
  and `make verify`'s input), the hardware config (``hardware.json``, `make rtl`'s input) and the report. Each is
  a path relative to the design's folder and must stay inside it (`design_file` resolves them), so a design.json
  from elsewhere cannot point a command at other files.
"""

from __future__ import annotations

import time
from pathlib import Path

from codesign.errors import InputError
from codesign.files import atomic_write_json, atomic_write_text, inside, read_json, shown
from codesign.hw.config import HardwareConfig

DESIGN_VERSION = 1
TARGET_CYCLES_RATIO = 0.70
TARGET_ACC_LOSS = 0.01
SUMMARY_KEYS = ("acc", "acc_val", "cycles", "energy_pj", "dram_bytes", "area_luts", "brams", "hardware_name",
                "mean_weight_bits", "train_seconds")


def build_design(run, seconds: float) -> dict:
    """The design document of a finished `codesign.jaq.search.SearchRun`."""
    results = run.state["results"]
    retrained = results["retrained"]
    chosen, derived = retrained["chosen"], results["search_derived"]
    int8 = retrained["int8"]
    ratio = chosen["cycles"] / int8["cycles"]
    acc_loss = int8["acc"] - chosen["acc"]
    return {
        "version": DESIGN_VERSION, "dataset": "digits",
        "network": {"arch": derived["arch"], "subnet": chosen["subnet"]},
        "bits": derived["bits"], "hardware": chosen["hardware"], "hardware_name": chosen["hardware_name"],
        "mappings": chosen["layers"],
        **{key: chosen[key] for key in SUMMARY_KEYS},
        "batch": run.settings.batch, "cycles_per_image": chosen["cycles"] / run.settings.batch,
        "acc_int8": int8["acc"], "cycles_int8": int8["cycles"], "cycles_ratio_vs_int8": ratio,
        "acc_int4": retrained["int4"]["acc"], "cycles_int4": retrained["int4"]["cycles"],
        "baselines": {tag: {key: value[key] for key in SUMMARY_KEYS}
                      for tag, value in retrained.items() if tag != "chosen"},
        "targets": {"cycles_ratio_vs_int8": {"value": ratio, "at_most": TARGET_CYCLES_RATIO,
                                             "met": ratio <= TARGET_CYCLES_RATIO},
                    "acc_loss_vs_int8": {"value": acc_loss, "at_most": TARGET_ACC_LOSS,
                                         "met": acc_loss <= TARGET_ACC_LOSS}},
        "budgets": {"max_luts": run.settings.max_luts, "max_cycles": run.settings.max_cycles, "met": True},
        "hardware_choice": derived["note"] or "the hardware generation network's most probable candidate",
        "latency": run.settings.latency, "calibrated": run.constants.calibrated,
        "settings": run.settings.to_dict(), "seconds": seconds, "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "files": {"model": "model.pt", "integer_model": "integer_model.json", "hardware": "hardware.json",
                  "report": "report.md"},
    }


def write_design(out: str | Path, design: dict) -> Path:
    out = Path(out)
    atomic_write_text(out / "hardware.json", HardwareConfig.from_dict(design["hardware"]).to_json())
    return atomic_write_json(out / "design.json", design)


def load_design(path: str | Path) -> dict:
    """A design file, checked: a damaged or foreign file is an error naming it, never half-used. Every entry of
    ``files`` must lie inside the design's folder (`design_file`)."""
    path = Path(path)
    design = read_json(path, "design", "design.json written by `codesign search`")
    if not isinstance(design, dict) or design.get("version") != DESIGN_VERSION:
        raise InputError("design", str(path), f"a design.json of version {DESIGN_VERSION}")
    missing = [key for key in ("hardware", "bits", "network", "cycles", "acc", "files") if key not in design]
    if missing:
        raise InputError("design", str(path), f"the keys {missing}")
    files = design["files"]
    if not isinstance(files, dict) or not files:
        raise InputError(f"{path} files", shown(files), "an object of role -> file name in the design's folder")
    for role in files:
        design_file(path, design, role)
    HardwareConfig.from_dict(design["hardware"])         # raises, naming the field
    return design


def design_file(path: str | Path, design: dict, role: str) -> Path:
    """The file ``design["files"][role]`` of the design.json at ``path``: a relative path inside its folder. An
    absolute path, a '..' or a symbolic link out of the folder is an `InputError` naming the file and the key."""
    files = design.get("files")
    if not isinstance(files, dict) or role not in files:
        raise InputError(f"{path} files.{role}", "missing", "the design's file of that role")
    return inside(Path(path).parent, files[role], f"{path} files.{role}")

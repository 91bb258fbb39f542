"""Build the whole `Accelerator` for a configuration and replay host sessions on it (`sim.system.testbench`)."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import rtl_gen
from codesign.hw.config import HardwareConfig
from codesign.sources import HARDWARE_CONTRACT
from rtl_gen.accelerator import Accelerator
from sim.build import DEFAULT_BUILD_ROOT, Model, build, source_fingerprint

TOP = "accelerator"


def model_for(cfg: HardwareConfig, simulator: str = "verilator", build_root: Path = DEFAULT_BUILD_ROOT) -> Model:
    key = hashlib.sha256(json.dumps({
        # The parts of `codesign` that the generator reads: the rest (compiler, search, ...) changes no Verilog.
        "config": cfg.to_dict(),
        "sources": source_fingerprint(rtl_gen, *HARDWARE_CONTRACT),
    }, sort_keys=True).encode()).hexdigest()
    return build(lambda: Accelerator(cfg), TOP, simulator, build_root, key=key)


def run_session(cfg: HardwareConfig, jobs: list[dict], *, simulator: str = "verilator",
                build_root: Path = DEFAULT_BUILD_ROOT) -> list[list]:
    """Run ``jobs`` (see `sim.system.testbench`) in one simulation; return each job's step outputs."""
    model = model_for(cfg, simulator, build_root)
    with tempfile.TemporaryDirectory(dir=model.build_dir, prefix="jobs_") as tmp:
        jobs_path, results_path = Path(tmp) / "jobs.json", Path(tmp) / "results.json"
        jobs_path.write_text(json.dumps(jobs))
        model.run("sim.system.testbench", {"CODESIGN_SYSTEM_JOBS": str(jobs_path),
                                    "CODESIGN_SYSTEM_RESULTS": str(results_path)})
        return json.loads(results_path.read_text())

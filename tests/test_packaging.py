"""The package installs without -e too: the wheel carries every package, the templates and the committed data."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import codesign

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(out), str(ROOT)], check=True)
    return zipfile.ZipFile(next(out.glob("codesign-*.whl")))


def test_wheel_ships_packages_templates_and_data(wheel):
    names = set(wheel.namelist())
    for package in ("codesign", "rtl_gen", "sim", "templates", "codesign/data"):
        assert f"{package}/__init__.py" in names
    shipped = {Path(n).name for n in names if n.startswith("templates/")}
    on_disk = {p.name for p in (ROOT / "templates").iterdir() if p.suffix in (".j2", ".ys", ".md")}
    assert on_disk <= shipped
    data = {Path(n).name for n in names if n.startswith("codesign/data/")}
    assert {p.name for p in (ROOT / "codesign" / "data").glob("*.json")} <= data
    assert any(n.endswith("entry_points.txt") for n in names)


def test_wheel_ships_every_package_and_module(wheel):
    """`packages.find` in pyproject.toml: a new subpackage cannot drop out of the wheel unnoticed."""
    names = set(wheel.namelist())
    sources = {p.relative_to(ROOT).as_posix() for top in ("codesign", "rtl_gen", "sim", "templates")
               for p in (ROOT / top).rglob("*.py") if "__pycache__" not in p.parts}
    assert len(sources) > 80
    assert sources <= names, sorted(sources - names)


def test_one_version(wheel):
    metadata = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    assert f"Version: {codesign.__version__}" in wheel.read(metadata).decode().splitlines()

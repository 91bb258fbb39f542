"""`source_digest`: stable for the same sources, changed by any edit, addition or rename, subpackages included."""

import importlib
import sys
import types

import pytest

import codesign.hw
from codesign.sources import HARDWARE_CONTRACT, source_digest, source_files


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A throwaway package ``srcpkg`` with a subpackage, importable from sys.path."""
    root = tmp_path / "srcpkg"
    (root / "sub" / "deep").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "top.py").write_text("X = 1\n")
    (root / "sub" / "__init__.py").write_text("")
    (root / "sub" / "leaf.py").write_text("Y = 2\n")
    (root / "sub" / "deep" / "__init__.py").write_text("")
    (root / "sub" / "deep" / "bottom.py").write_text("Z = 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [n for n in sys.modules if n.split(".")[0] == "srcpkg"]:
        monkeypatch.delitem(sys.modules, name)
    importlib.invalidate_caches()
    return importlib.import_module("srcpkg"), root


def test_a_package_counts_every_file_below_it_by_relative_name(package):
    module, root = package
    (root / "sub" / "__pycache__").mkdir()
    (root / "sub" / "__pycache__" / "stale.py").write_text("ignored")
    names = [name for name, _ in source_files(module)]
    assert names == ["srcpkg/__init__.py", "srcpkg/sub/__init__.py", "srcpkg/sub/deep/__init__.py",
                     "srcpkg/sub/deep/bottom.py", "srcpkg/sub/leaf.py", "srcpkg/top.py"]
    assert source_digest(module) == source_digest(module)                # stable


@pytest.mark.parametrize("change", ["edit", "add", "rename", "remove"])
def test_a_change_in_a_subpackage_changes_the_digest(package, change):
    module, root = package
    before = source_digest(module)
    deep = root / "sub" / "deep"
    if change == "edit":
        (deep / "bottom.py").write_text("Z = 4\n")
    elif change == "add":
        (deep / "new.py").write_text("")
    elif change == "rename":
        (deep / "bottom.py").rename(deep / "renamed.py")
    else:
        (deep / "bottom.py").unlink()
    assert source_digest(module) != before


def test_a_plain_module_counts_alone_and_order_matters(package):
    module, root = package
    top = importlib.import_module("srcpkg.top")
    assert [name for name, _ in source_files(top)] == ["srcpkg.top"]
    leaf = importlib.import_module("srcpkg.sub.leaf")
    assert source_digest(top, leaf) != source_digest(leaf, top)
    before = source_digest(top)
    (root / "sub" / "leaf.py").write_text("Y = 5\n")                     # not part of top
    assert source_digest(top) == before


def test_the_digest_does_not_depend_on_where_the_checkout_is(tmp_path):
    digests = []
    for place in ("one", "two"):
        (tmp_path / place).mkdir()
        path = tmp_path / place / "mod.py"
        path.write_text("A = 1\n")
        module = types.ModuleType("mod")
        module.__file__ = str(path)
        digests.append(source_digest(module))
    assert digests[0] == digests[1]


def test_the_hardware_contract_is_the_hw_package():
    names = {module.__name__ for module in HARDWARE_CONTRACT}
    files = {path.stem for _, path in source_files(codesign.hw)} - {"__init__"}
    assert names == {f"codesign.hw.{stem}" for stem in files}

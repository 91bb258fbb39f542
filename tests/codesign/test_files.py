import os
import stat

import pytest

from codesign.errors import InputError
from codesign.files import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    check_file_name,
    check_readable,
    inside,
    json_key,
    json_object,
    read_bytes,
    read_json,
    read_text,
    replace_dir,
)


def test_atomic_write_replaces_whole_file_with_normal_mode(tmp_path):
    path = tmp_path / "sub" / "out.json"
    atomic_write_json(path, {"a": 1})
    atomic_write_text(path, "second\n")
    assert path.read_text() == "second\n"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in path.parent.iterdir()] == ["out.json"]


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.txt"
    atomic_write_text(path, "old\n")
    with pytest.raises(TypeError):
        atomic_write_bytes(path, 123)         # fails inside the write, after the temporary file exists
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_json_is_written_strictly(tmp_path):
    path = tmp_path / "out.json"
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError):
            atomic_write_json(path, {"x": bad})
    assert list(tmp_path.iterdir()) == []                 # nothing, not even a temporary


def test_every_way_a_file_can_be_bad_is_one_input_error_naming_it(tmp_path):
    (tmp_path / "adir").mkdir()
    (tmp_path / "latin1.json").write_bytes(b'{"a": "\xff"}')
    (tmp_path / "broken.json").write_text('{\n  "secret": 1,\n  "a" 2}')
    (tmp_path / "nan.json").write_text('{"a": NaN}')
    cases = [("missing.json", "an existing JSON file"), ("adir", "not a directory"),
             ("latin1.json", "a UTF-8 JSON file (byte 7 is not UTF-8)"),
             ("broken.json", "a valid JSON file (line 3, column 7: Expecting ':' delimiter)"),
             ("nan.json", "JSON has no NaN")]
    for name, allowed in cases:
        with pytest.raises(InputError) as info:
            read_json(tmp_path / name, "--config")
        assert (info.value.field, info.value.value) == ("--config", str(tmp_path / name))
        assert allowed in info.value.allowed and "secret" not in str(info.value)
    with pytest.raises(InputError, match="missing.bin' is not allowed; expected an existing program"):
        read_bytes(tmp_path / "missing.bin", "PROGRAM", "program")
    assert read_text(tmp_path / "broken.json", "x").startswith("{")
    assert check_readable(tmp_path / "broken.json", "x") == tmp_path / "broken.json"
    with pytest.raises(InputError, match="not a directory"):
        check_readable(tmp_path / "adir", "x")


def test_json_key_names_the_file_and_key_and_hides_big_values():
    data = {"shape": [1, 2], "weights": list(range(1000))}
    assert json_key(data, "shape", "m.json ", "2 integers", lambda v: len(v) == 2) == [1, 2]
    with pytest.raises(InputError, match=r"^m.json input_shape: 'missing' is not allowed; expected C, H, W$"):
        json_key(data, "input_shape", "m.json ", "C, H, W")
    with pytest.raises(InputError, match=r"^m.json layers\[0\].weights: 'list of 1000' is not allowed"):
        json_key(data, "weights", "m.json layers[0].", "10 integers", lambda v: len(v) == 10)
    with pytest.raises(InputError, match="'str of 100' is not allowed"):
        json_object("x" * 100, "m.json", "an object")


@pytest.mark.parametrize("name", ["../escape", "a/b", "", ".hidden", "x" * 65, "sp ace", 3, None, "é"])
def test_unsafe_file_names_are_refused(name):
    with pytest.raises(InputError, match="^layer.name: .* expected 1 to 64 characters"):
        check_file_name("layer.name", name)


def test_safe_file_names_pass():
    for name in ("stem", "blocks.0.expand", "a-b_c", "x" * 64):
        assert check_file_name("layer.name", name) == name


def test_inside_keeps_paths_in_the_folder(tmp_path):
    folder = tmp_path / "design"
    folder.mkdir()
    (folder / "model.json").write_text("{}")
    (tmp_path / "outside.json").write_text("{}")
    (folder / "link.json").symlink_to(tmp_path / "outside.json")
    (folder / "inner.json").symlink_to(folder / "model.json")
    assert inside(folder, "model.json", "files.model") == folder / "model.json"
    assert inside(folder, "inner.json", "files.model") == folder / "inner.json"     # a link that stays inside
    for bad in ("/etc/passwd", "../outside.json", "sub/../../outside.json", "link.json", ".", "", 3, None):
        with pytest.raises(InputError, match="^files.model: .* expected a relative path inside"):
            inside(folder, bad, "files.model")


def test_replace_dir_swaps_the_folder_whole_or_not_at_all(tmp_path):
    out = tmp_path / "ip"
    with replace_dir(out, {"a.v", "b.h"}, field="--out") as tmp:
        atomic_write_text(tmp / "a.v", "one")
    assert sorted(p.name for p in out.iterdir()) == ["a.v"]
    with pytest.raises(RuntimeError), replace_dir(out, {"a.v", "b.h"}, field="--out") as tmp:
        atomic_write_text(tmp / "b.h", "two")
        raise RuntimeError("the generator failed")
    assert sorted(p.name for p in out.iterdir()) == ["a.v"] and (out / "a.v").read_text() == "one"
    assert [p.name for p in tmp_path.iterdir()] == ["ip"]            # no temporary folder left beside it
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match=r"^--out: .* not one with notes.txt"), \
            replace_dir(out, {"a.v"}, field="--out"):
        pass
    with pytest.raises(InputError, match="^--out: .* a folder, not an existing file"), \
            replace_dir(out / "a.v", {"a.v"}, field="--out"):
        pass

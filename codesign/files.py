"""File input and output in one place.

Output is atomic: a reader never sees a half-written file (or folder: `replace_dir`), and a failed run leaves no
partial output. JSON is written strictly (no NaN or infinity, which other readers refuse).

Input goes through `read_bytes` / `read_text` / `read_json`, so that every way a file can be bad (missing, a
directory, unreadable, not UTF-8, not JSON) is one `InputError` naming the file and what was expected, never a
traceback; `json_key` does the same for a missing key or a wrong type inside a JSON document. `check_file_name`
is the rule for names that become file names (layer names in `codesign.compiler.network.write_programs`).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

from codesign.errors import InputError

FILE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
FILE_NAME_RULE = "1 to 64 characters from A-Z a-z 0-9 _ . -, not starting with '.'"


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``."""
    return atomic_write_bytes(path, text.encode())


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o666 & ~_umask())   # mkstemp makes 0600; give the file the mode open() would have
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_save_figure(path: str | Path, fig, *, dpi: int) -> Path:
    """A matplotlib figure as a PNG, laid out, written atomically and closed."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return atomic_write_bytes(path, buffer.getvalue())


def json_text(data) -> str:
    """``data`` as the project writes JSON: indented, keys sorted, strict. A NaN or an infinity is a bug upstream:
    ValueError."""
    return json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n"


def atomic_write_json(path: str | Path, data) -> Path:
    """``data`` as `json_text`; on a ValueError nothing is written."""
    return atomic_write_text(path, json_text(data))


# ---- input


def read_bytes(path: str | Path, what: str, kind: str = "file") -> bytes:
    """The contents of ``path``. A missing path, a directory or an unreadable file is an `InputError`: field
    ``what`` (the flag or role of the file), the path, and "an existing ``kind``"."""
    return _opened(path, what, kind, lambda handle: handle.read())


def check_readable(path: str | Path, what: str, kind: str = "file") -> Path:
    """``path`` when `read_bytes` would read it, without reading it (for large files another reader opens)."""
    _opened(path, what, kind, lambda handle: None)
    return Path(path)


def _opened(path: str | Path, what: str, kind: str, use: Callable):
    path = Path(path)
    try:
        with path.open("rb") as handle:
            return use(handle)
    except FileNotFoundError:
        raise InputError(what, str(path), f"an existing {kind}") from None
    except IsADirectoryError:
        raise InputError(what, str(path), f"an existing {kind}, not a directory") from None
    except OSError as exc:          # permissions, a FIFO gone away, an I/O error
        raise InputError(what, str(path), f"a readable {kind} ({exc.strerror or type(exc).__name__})") from None


def read_text(path: str | Path, what: str, kind: str = "file") -> str:
    """`read_bytes`, decoded as UTF-8; other bytes are an `InputError` naming the file and the offset."""
    data = read_bytes(path, what, kind)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(what, str(path), f"a UTF-8 {kind} (byte {exc.start} is not UTF-8)") from None


def read_json(path: str | Path, what: str, kind: str = "JSON file") -> object:
    """`read_text`, parsed as strict JSON (no NaN or Infinity). A syntax error names the file, the line and the
    column, never the content."""
    text = read_text(path, what, kind)

    def refuse(constant: str):
        raise InputError(what, str(path), f"a valid {kind} (JSON has no {constant})")

    try:
        return json.loads(text, parse_constant=refuse)
    except json.JSONDecodeError as exc:
        raise InputError(what, str(path), f"a valid {kind} (line {exc.lineno}, column {exc.colno}: "
                                          f"{exc.msg})") from None
    except RecursionError:
        raise InputError(what, str(path), f"a valid {kind} (nested too deeply)") from None


def shown(value: object) -> object:
    """``value`` as an error message shows it: itself when short, else its type and size (a weight array in a
    model file is megabytes)."""
    if len(repr(value)) <= 60:
        return value
    size = f" of {len(value)}" if isinstance(value, (list, dict, str)) else ""
    return f"{type(value).__name__}{size}"


def json_key(data: dict, key: str, prefix: str, expected: str,
             ok: Callable[[object], bool] = lambda value: True) -> object:
    """``data[key]``; a missing key, or a value ``ok`` refuses, is an `InputError` whose field is ``prefix + key``
    (``prefix`` names the file and where in it: ``"model.json layers[2]."``) and whose allowed is ``expected``."""
    if key not in data:
        raise InputError(prefix + key, "missing", expected)
    value = data[key]
    try:
        good = ok(value)
    except (TypeError, ValueError):
        good = False
    if not good:
        raise InputError(prefix + key, shown(value), expected)
    return value


def json_object(data: object, field: str, expected: str) -> dict:
    """``data`` when it is a JSON object, else an `InputError` naming ``field``."""
    if not isinstance(data, dict):
        raise InputError(field, shown(data), expected)
    return data


def check_file_name(field: str, name: object) -> str:
    """``name`` when it can be a file name on any system as it is (`FILE_NAME`, no leading '.': no hidden files,
    no '..', no path separators), else an `InputError` naming ``field``."""
    if not isinstance(name, str) or not FILE_NAME.fullmatch(name) or name.startswith("."):
        raise InputError(field, shown(name), FILE_NAME_RULE)
    return name


def inside(folder: str | Path, relative: object, field: str) -> Path:
    """``folder / relative`` when it stays inside ``folder``: a relative path with no '..' and no symbolic link
    that leads out. Anything else is an `InputError` naming ``field``."""
    expected = f"a relative path inside {folder} (no absolute path, no '..', no link out of it)"
    if not isinstance(relative, str) or not relative or "\0" in relative:
        raise InputError(field, shown(relative), expected)
    rel = Path(relative)
    if rel.is_absolute() or ".." in rel.parts:
        raise InputError(field, relative, expected)
    root = Path(folder).resolve()
    target = (Path(folder) / rel).resolve()
    if root not in target.parents:
        raise InputError(field, relative, expected)
    return Path(folder) / rel


@contextmanager
def replace_dir(path: str | Path, owned: Collection[str], *, field: str = "path") -> Iterator[Path]:
    """A new, empty folder beside ``path`` to write into; when the block succeeds it takes the place of ``path`` (the
    old folder is renamed away, the new one renamed in, the old one deleted), when it fails it is deleted and
    ``path`` is left as it was. Readers of ``path`` see the old contents or the new, never a mix of the two.

    ``path`` (a symbolic link is followed) must not exist, or be a folder of nothing but entries named in ``owned``
    (and the hidden temporaries of `atomic_write_bytes`): a folder that holds anything else is refused with
    `InputError`, since the swap would delete it.
    """
    given, path = Path(path), Path(path).resolve()
    if path.exists():
        if not path.is_dir():
            raise InputError(field, str(given), "a folder, not an existing file")
        foreign = sorted(entry.name for entry in path.iterdir() if not _owned(entry.name, owned))
        if foreign:
            raise InputError(field, str(given), "a new or empty folder, or one that holds only the files written "
                             f"here (it is replaced whole), not one with {', '.join(foreign[:5])}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())    # mkdtemp makes 0700; give the folder the mode mkdir would have
        if not path.exists():
            os.rename(tmp, path)
            return
        old = tmp.with_suffix(".old")
        os.rename(path, old)
        try:
            os.rename(tmp, path)
        except BaseException:
            os.rename(old, path)
            raise
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _owned(name: str, owned: Collection[str]) -> bool:
    """Whether ``name`` is one of ``owned`` or a temporary `atomic_write_bytes` left (``.<name>.*.tmp``)."""
    return name in owned or (name.startswith(".") and name.endswith(".tmp")
                             and any(name.startswith(f".{file}.") for file in owned))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask

"""The options several commands share, each defined once with one validation.

`--latency` used to be declared per command with its own type and range (and `codesign sim layer` did not check it);
`--simulator` repeated its choices. Here each shared flag is one function that adds it, so its type, range, help and
error message are the same everywhere; only the default differs per command where it always has.

Range checks run while argparse reads the flag (`Checked`), and raise `InputError`: argparse lets anything but its
own errors through, so `codesign.cli.main.main` reports it like a handler's bad input, one line on stderr naming the
flag, the value and what is allowed, exit code 2. Float flags are checked finite as well (`finite_range`): argparse's
``float`` takes ``nan`` and ``inf``, which would pass every comparison-based range check or poison a budget.

Outputs are checked the same way, first thing in each handler (`output_file`, `output_dir`): a place that cannot be
written is refused before any work, not after minutes of it, and the check itself leaves no file behind.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from codesign.errors import InputError
from codesign.files import atomic_write_json, json_text
from codesign.hw.config import HardwareConfig
from sim import SIMULATORS

LATENCY_MAX = 10_000
DEVICES = ("cpu", "cuda")


class Checked(argparse.Action):
    """Stores ``check(flag, value)``, a value already converted by ``type=``.

    An `InputError` from the check leaves `parse_args` as it is, carrying ``prog`` (e.g. ``codesign sim layer``)
    for the one-line message `main` prints; argparse's own errors (not an integer, not a choice) stay argparse's.
    """

    def __init__(self, option_strings, dest, *, check: Callable[[str, object], object], **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.check = check

    def __call__(self, parser, namespace, values, option_string=None):
        try:
            value = self.check(option_string or self.dest, values)
        except InputError as exc:
            exc.prog = parser.prog
            raise
        setattr(namespace, self.dest, value)


def int_range(low: int, high: int | None = None, allowed: str | None = None) -> Callable[[str, int], int]:
    """A check for `Checked`: an integer from ``low`` to ``high`` (no upper bound when None)."""
    if allowed is None:
        allowed = f"an integer from {low} to {high}" if high is not None else f"an integer >= {low}"

    def check(flag: str, value: int) -> int:
        if value < low or (high is not None and value > high):
            raise InputError(flag, value, allowed)
        return value

    return check


positive = int_range(1, allowed="a positive integer")
non_negative = int_range(0, allowed="a non-negative integer")


def finite_range(low: float | None = None, high: float | None = None, allowed: str | None = None, *,
                 low_open: bool = False) -> Callable[[str, float], float]:
    """A check for `Checked` on a float flag: a finite number from ``low`` (excluded when ``low_open``) to ``high``;
    no bound where None. ``nan`` fails every comparison, so it is refused explicitly, as is ``inf``."""
    if allowed is None:
        bounds = [f"{'>' if low_open else '>='} {low:g}" if low is not None else "",
                  f"<= {high:g}" if high is not None else ""]
        allowed = " ".join(["a finite number", " and ".join(b for b in bounds if b)]).strip()

    def check(flag: str, value: float) -> float:
        below = low is not None and (value <= low if low_open else value < low)
        if not math.isfinite(value) or below or (high is not None and value > high):
            raise InputError(flag, value, allowed)
        return value

    return check


positive_number = finite_range(0, low_open=True, allowed="a finite number > 0")
non_negative_number = finite_range(0, allowed="a finite number >= 0")
fraction = finite_range(0, 1, low_open=True, allowed="a fraction in (0, 1]")


def add_seed(parser: argparse.ArgumentParser, default: int | None = 0, help: str | None = None) -> None:
    """``--seed S``: a random seed, an integer >= 0 (numpy and torch refuse negative seeds, mid-run)."""
    parser.add_argument("--seed", type=int, default=default, metavar="S", action=Checked,
                        check=int_range(0, allowed="an integer >= 0"),
                        help=help or f"random seed, an integer >= 0 (default {default})")


def add_threads(parser: argparse.ArgumentParser, default: int | None,
                help: str = "torch CPU threads (default: torch's choice)") -> None:
    """``--threads N``: torch CPU threads, a positive integer."""
    parser.add_argument("--threads", type=int, default=default, metavar="N", action=Checked, check=positive,
                        help=help)


def add_config(parser: argparse.ArgumentParser, *aliases: str,
               help: str = "HardwareConfig JSON (default: the built-in default)") -> None:
    """``--config HW.json``: a `HardwareConfig` file, validated by `load_config` when the command runs."""
    parser.add_argument("--config", *aliases, dest="config", metavar="HW.json", help=help)


def load_config(args) -> HardwareConfig:
    """The ``--config`` file's configuration (InputError naming the field when it is invalid), else the default."""
    return HardwareConfig.load(args.config) if args.config else HardwareConfig()


def add_latency(parser: argparse.ArgumentParser, default: int, *, when: str = "") -> None:
    """``--latency L``: the DRAM model's memory latency in cycles, an integer from 0 to `LATENCY_MAX`."""
    parser.add_argument("--latency", type=int, default=default, metavar="L", action=Checked,
                        check=int_range(0, LATENCY_MAX, f"an integer from 0 to {LATENCY_MAX} cycles"),
                        help=f"{when}memory latency in cycles, 0 to {LATENCY_MAX} (default {default})")


def add_simulator(parser: argparse.ArgumentParser) -> None:
    """``--simulator``: one of `sim.SIMULATORS`, the simulators the runner builds for."""
    parser.add_argument("--simulator", choices=SIMULATORS, default=SIMULATORS[0],
                        help=f"the HDL simulator (default {SIMULATORS[0]})")


def add_device(parser: argparse.ArgumentParser, default: str | None = "cpu", help: str | None = None) -> None:
    """``--device``: where torch runs."""
    parser.add_argument("--device", choices=DEVICES, default=default, help=help)


def ints(flag: str, text: str) -> list[int]:
    """``"2,4,8"`` as integers, or an `InputError` naming ``flag``."""
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise InputError(flag, text, "comma-separated integers") from None


def floats(flag: str, text: str) -> list[float]:
    """``"0.5,0.7"`` as finite numbers, or an `InputError` naming ``flag``."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if not values or not all(math.isfinite(v) for v in values):
        raise InputError(flag, text, "comma-separated finite numbers")
    return values


def progress_to_stderr():
    """While the library works, what it prints (progress: epochs, measured configurations, benchmark phases) goes
    to stderr, so that stdout holds the command's result only; the handler prints that afterwards."""
    return contextlib.redirect_stdout(sys.stderr)


# ---- outputs: checked before any work, written atomically; "-" is stdout where a command allows it
STDOUT = "-"


def output_file(flag: str, path: str | Path, *, stdout: bool = False) -> str | Path:
    """``path`` if a file can be written there: not an existing directory, not below a regular file, in a
    directory this process may write (probed with a temporary file, removed at once). With ``stdout``, ``-`` means
    standard output and is returned as is. Nothing is created: a later error leaves no trace of the check."""
    if stdout and str(path) == STDOUT:
        return STDOUT
    path = Path(path)
    if str(path) in ("", ".") or path.is_dir():
        raise InputError(flag, str(path), "a file path, not an existing directory"
                         + (" (or - for standard output)" if stdout else ""))
    _probe(flag, path, path.parent, "a file")
    return path


def output_dir(flag: str, path: str | Path) -> Path:
    """``path`` if it is, or can become, a directory this process may write into; see `output_file`."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(flag, str(path), "a directory, not an existing file")
    _probe(flag, path, path, "a directory")
    return path


def _probe(flag: str, path: Path, folder: Path, what: str) -> None:
    """Whether the nearest existing one of ``folder`` and its parents is a directory that takes a new file."""
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        raise InputError(flag, str(path), f"{what} below a directory, not below the file {existing}")
    try:
        handle, probe = tempfile.mkstemp(dir=existing, prefix=".codesign-probe-")
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise InputError(flag, str(path), f"{what} in a writable place ({existing}: {exc.strerror})") from None


def write_json(path: str | Path, data) -> None:
    """A JSON result to ``path`` atomically, or to standard output for ``-`` (checked by `output_file`)."""
    if str(path) == STDOUT:
        sys.stdout.write(json_text(data))
    else:
        atomic_write_json(path, data)

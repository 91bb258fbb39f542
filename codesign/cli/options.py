"""The options several commands share, each defined once with one validation.

`--latency` used to be declared per command with its own type and range (and `codesign sim layer` did not check it);
`--simulator` repeated its choices. Here each shared flag is one function that adds it, so its type, range, help and
error message are the same everywhere; only the default differs per command where it always has.

Range checks run while argparse reads the flag (`Checked`), and raise `InputError`: argparse lets anything but its
own errors through, so `codesign.cli.main.main` reports it like a handler's bad input, one line on stderr naming the
flag, the value and what is allowed, exit code 2.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from codesign.errors import InputError
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
    """``"0.5,0.7"`` as numbers, or an `InputError` naming ``flag``."""
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise InputError(flag, text, "comma-separated numbers") from None

"""`codesign`: the one command-line entry point.

The application shell on top of the three packages, and the only part of `codesign` that reaches into `rtl_gen` and
`sim`, so the library keeps its one-way dependency (`codesign` <- `rtl_gen` <- `sim`). Each command family is a module
of this package with its flags beside its handler (`register(commands)` adds its parsers); the options several
commands share are `codesign.cli.options`. Everything the Makefile runs is a subcommand, the benchmarks included.

Bad input raises `InputError`, from a handler or from a shared option's check while parsing, and becomes one line on
stderr and exit code 2; argparse's own errors (a missing flag, not an integer) are one line too (`Parser`). Each leaf
parser sets ``prog`` (``codesign sim layer``), so the line names the command that refused. Outputs are checked before
any work and written atomically; stdout holds the result only, progress goes to stderr.
"""

from __future__ import annotations

import argparse
import signal
import sys

from codesign.cli import bench, hardware, measure, ohq, search, simulate
from codesign.cli import compile as compiler
from codesign.errors import InputError

# The order of `codesign --help`.
FAMILIES = (hardware, compiler, search, ohq, simulate, measure, bench)


class Parser(argparse.ArgumentParser):
    """argparse's usage-then-error, as the one line every other bad input gets; subparsers inherit the class."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="codesign", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for family in FAMILIES:
        family.register(commands)
    return parser


INTERRUPTED = 130        # the shell's code for a command ended by SIGINT (128 + 2)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except InputError as exc:                    # a shared option's range check (`codesign.cli.options.Checked`)
        print(f"{getattr(exc, 'prog', parser.prog)}: error: {exc}", file=sys.stderr)
        return 2
    prog = getattr(args, "prog", f"codesign {args.command}")
    previous = _terminate_as_interrupt()
    try:
        return args.handler(args)
    except InputError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Checkpoints and outputs are written atomically, so whatever was last written is whole: say so, in one line.
        print(f"\n{prog}: interrupted; run the same command again to resume", file=sys.stderr)
        return INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)


def _terminate_as_interrupt():
    """SIGTERM (a batch scheduler's or `kill`'s) ends a command the way Ctrl-C does; returns the handler it
    replaced."""
    def handler(signum, frame):
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, handler)


if __name__ == "__main__":
    sys.exit(main())

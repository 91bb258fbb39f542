"""Flows as lists of named steps, as FINN's build steps and ZigZag's stages: one driver runs them all.

A flow (the JAQ search's phases, OHQ's stages) is a list of `Step`: a name and a function of the flow's state.
`Flow` runs them in order, times each, writes a checkpoint after each (and whenever a step asks, e.g. between its
own epochs), and on a rerun starts at the step its record names, so a finished step is never run again. The
bookkeeping (where a run stands, what each step took, atomic checkpoints) is written and tested once here, and a
flow reads as its list of steps.

The record is a JSON-able dict the flow's state owns (and its checkpoint keeps): ``phase`` names the step to run
next (`DONE` after the last), ``step_seconds`` the wall seconds each step took, summed over resumes up to its last
checkpoint. What else a checkpoint holds, and how it is read back, is the flow's business: `Flow` writes the bytes
its ``dump`` returns with `codesign.files.atomic_write_bytes`, so an interrupted write leaves the previous
checkpoint whole.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from codesign.files import atomic_write_bytes

S = TypeVar("S")
DONE = "done"


@dataclass(frozen=True)
class Step(Generic[S]):
    """One named step: ``run(state)`` does its work on the state and may return a one-line summary, which the
    flow logs with the step's seconds."""

    name: str
    run: Callable[[S], str | None]


class Flow(Generic[S]):
    """Runs ``steps`` over a state, resuming where ``record`` says; see the module docstring."""

    def __init__(self, steps: Sequence[Step[S]], record: dict | None = None, *, checkpoint: str | Path | None = None,
                 dump: Callable[[], bytes] | None = None, log: Callable[[str], None] | None = None):
        names = [step.name for step in steps]
        if len(set(names)) != len(names) or DONE in names:
            raise ValueError(f"step names must be distinct and not {DONE!r}: {names}")
        if (checkpoint is None) != (dump is None):
            raise ValueError("a checkpoint needs both its path and its dump")
        self.steps = tuple(steps)
        self.record = {} if record is None else record
        self.path = None if checkpoint is None else Path(checkpoint)
        self._dump, self._log = dump, log
        self._running: tuple[str, float, float] | None = None     # step, its start, its seconds before this run

    @property
    def names(self) -> list[str]:
        return [step.name for step in self.steps]

    @property
    def phase(self) -> str:
        """The step to run next, `DONE` when every step has finished."""
        return self.record.get("phase", self.steps[0].name if self.steps else DONE)

    @property
    def seconds(self) -> dict[str, float]:
        """Wall seconds per step, summed over resumes."""
        return self.record.setdefault("step_seconds", {})

    def run(self, state: S) -> dict[str, float]:
        """Run the steps from the record's phase to the last; returns the seconds per step."""
        phase = self.phase
        if phase != DONE and phase not in self.names:
            raise ValueError(f"the record's phase {phase!r} is none of this flow's steps {self.names}")
        first = len(self.steps) if phase == DONE else self.names.index(phase)
        for index in range(first, len(self.steps)):
            step = self.steps[index]
            self.record["phase"] = step.name
            self._running = (step.name, time.perf_counter(), self.seconds.get(step.name, 0.0))
            try:
                line = step.run(state)
            finally:
                self._stamp()
                self._running = None
            self.record["phase"] = self.steps[index + 1].name if index + 1 < len(self.steps) else DONE
            self.checkpoint()
            if line is not None and self._log is not None:
                self._log(f"{line} ({self.seconds[step.name]:.1f} s)")
        return dict(self.seconds)

    def checkpoint(self) -> None:
        """Write the checkpoint now (after a step, or a step between its epochs), the running step's seconds so far
        in the record; nothing without a checkpoint path."""
        self._stamp()
        if self.path is not None:
            atomic_write_bytes(self.path, self._dump())

    def _stamp(self) -> None:
        if self._running is not None:
            name, start, before = self._running
            self.seconds[name] = before + time.perf_counter() - start

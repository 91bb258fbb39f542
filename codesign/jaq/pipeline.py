"""`make search` as a list of named steps: JAQ's phases, run by the one driver (`codesign.steps.Flow`).

    warmup -> search -> [search_fixed_hw -> random] -> retrain        (the bracket: with baselines)

Each step is a function of the run (`codesign.jaq.search.SearchRun`); the driver times each, checkpoints after
each and resumes at the first unfinished one (the checkpoint's ``phase``). This module is where the search
(`codesign.jaq.search`) meets its baselines (`codesign.jaq.baselines`), so neither imports the other's user; the
outputs (``design.json``, ``hardware.json``, the report) are written after the steps, from the finished run.
"""

from __future__ import annotations

import sys
from pathlib import Path

from codesign.jaq import baselines
from codesign.jaq.design import build_design, write_design
from codesign.jaq.report import write_report
from codesign.jaq.search import CHECKPOINT, SearchRun, SearchSettings
from codesign.steps import Step


def warmup(run: SearchRun) -> None:
    run.warm_up()


def search(run: SearchRun) -> None:
    run.search("search", None)


def search_fixed_hw(run: SearchRun) -> None:
    run.search("search_fixed_hw", run.default_index())


def random(run: SearchRun) -> None:
    run.state["results"]["random_derived"] = baselines.random_search(run)


def retrain(run: SearchRun) -> None:
    baselines.retrain_all(run)


def search_steps(settings: SearchSettings) -> list[Step[SearchRun]]:
    """The phases of a run with ``settings``, in order (the baselines' only when ``settings.baselines``)."""
    steps = [Step("warmup", warmup), Step("search", search)]
    if settings.baselines:
        steps += [Step("search_fixed_hw", search_fixed_hw), Step("random", random)]
    return [*steps, Step("retrain", retrain)]


def run_search(settings: SearchSettings, out: str | Path, *, restart: bool = False, progress: bool = True) -> dict:
    """A whole `make search`: the steps (resumed from the checkpoint unless ``restart``), then ``design.json``
    (with each step's seconds), ``hardware.json`` and the report. Raises `codesign.jaq.search.BudgetError` when no
    design meets the budgets."""
    out = Path(out)
    if restart:
        (out / CHECKPOINT).unlink(missing_ok=True)
    run = SearchRun(settings, out, progress=progress, steps=search_steps(settings))
    if run.checkpoint_path.exists():                # even when quiet: it explains a run that ends early
        print(f"resuming {run.checkpoint_path} (pass --restart to start over)", file=sys.stderr, flush=True)
    run.load()
    for note in run.notes:
        print(f"codesign search: {note}", file=sys.stderr, flush=True)
    run.run()
    design = build_design(run, run.state["seconds"])
    design["step_seconds"] = dict(run.state["step_seconds"])
    write_report(out, design, run.state, run.configs)
    write_design(out, design)
    return design

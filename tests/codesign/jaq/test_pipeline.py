"""`make search` as named steps: the step lists, where the search meets its baselines, and a run that records each
step's seconds and is not repeated once finished."""

import ast
import json
from pathlib import Path

import torch

import codesign
from codesign.jaq import baselines
from codesign.jaq.hwspace import HardwareSpace
from codesign.jaq.pipeline import run_search, search_steps
from codesign.jaq.search import SearchSettings

SPACE = HardwareSpace(rows=(8,), cols=(8,), digit_bits=(2, 8), act_buf_bytes=(16384,), wgt_buf_bytes=(16384,))
TINY = dict(warmup_epochs=0, search_epochs=1, retrain_fp_epochs=0, retrain_qat_epochs=1, batch=2, batch_size=256,
            space=SPACE)
JAQ = Path(codesign.__file__).parent / "jaq"


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            found |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return found


def test_the_phases_with_and_without_baselines():
    assert [s.name for s in search_steps(SearchSettings(**TINY))] == \
        ["warmup", "search", "search_fixed_hw", "random", "retrain"]
    assert [s.name for s in search_steps(SearchSettings(**TINY, baselines=False))] == ["warmup", "search", "retrain"]


def test_the_search_and_its_baselines_meet_only_in_the_pipeline():
    search, base = _imports(JAQ / "search.py"), _imports(JAQ / "baselines.py")
    assert not {m for m in search if m.startswith(("codesign.jaq.baselines", "codesign.jaq.pipeline"))}
    assert "codesign.jaq.search" in base and not {m for m in base if m.startswith("codesign.jaq.pipeline")}
    assert {"codesign.jaq.search", "codesign.jaq.baselines"} <= _imports(JAQ / "pipeline.py")


def test_a_run_records_each_step_and_a_finished_run_is_not_repeated(tmp_path, monkeypatch):
    torch.set_num_threads(1)
    settings = SearchSettings(**TINY, baselines=False)
    design = run_search(settings, tmp_path, progress=False)
    assert list(design["step_seconds"]) == ["warmup", "search", "retrain"]
    assert all(s > 0 for s in design["step_seconds"].values())
    assert json.loads((tmp_path / "design.json").read_text())["step_seconds"] == design["step_seconds"]
    assert set(design["baselines"]) == {"int8", "int4"}
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["state"]
    assert state["phase"] == "done" and state["step_seconds"] == design["step_seconds"]

    def rerun(run):
        raise AssertionError("a finished step ran again")

    monkeypatch.setattr(baselines, "retrain_all", rerun)
    again = run_search(settings, tmp_path, progress=False)
    assert again["step_seconds"] == design["step_seconds"] and again["cycles"] == design["cycles"]

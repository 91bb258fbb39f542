"""A tiny co-search end to end: outputs, budgets, checkpoints and resumption (between phases, inside the retraining
and inside the warm-up), bad input."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from codesign.cli.main import main
from codesign.compiler.mapper import map_layers
from codesign.errors import InputError
from codesign.hw.config import HardwareConfig
from codesign.ir.layers import from_integer_model
from codesign.jaq import baselines
from codesign.jaq.design import load_design
from codesign.jaq.hwspace import HardwareSpace
from codesign.jaq.pipeline import run_search, search, warmup
from codesign.jaq.search import BudgetError, SearchRun, SearchSettings
from codesign.quant.datasets import DataSplit, ImageSet, load_digits
from codesign.quant.export import IntegerModel
from codesign.quant.supernet import ArchChoice
from codesign.steps import Step

# Two candidates whose Verilator models the system tests build anyway: 8x8 with g = 2 (the default) and g = 8.
SPACE = HardwareSpace(rows=(8,), cols=(8,), digit_bits=(2, 8), act_buf_bytes=(16384,), wgt_buf_bytes=(16384,))
REPO = Path(__file__).resolve().parents[3]
TINY = dict(warmup_epochs=1, search_epochs=1, retrain_fp_epochs=0, retrain_qat_epochs=1, batch=4, space=SPACE)


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    out = tmp_path_factory.mktemp("search")
    torch.set_num_threads(1)
    design = run_search(SearchSettings(**TINY), out, progress=False)
    return out, design


def test_a_tiny_search_writes_a_consistent_design(searched):
    out, design = searched
    for name in ("design.json", "hardware.json", "model.pt", "integer_model.json", "report.md", "pareto.png",
                 "bits.png", "latency.png", "hardware.png"):
        assert (out / name).is_file(), name
    assert load_design(out / "design.json") == json.loads((out / "design.json").read_text())
    cfg = HardwareConfig.load(out / "hardware.json")
    assert cfg.to_dict() == design["hardware"] and cfg in SPACE.candidates()
    assert design["cycles_ratio_vs_int8"] == pytest.approx(design["cycles"] / design["cycles_int8"])
    assert set(design["baselines"]) == {"int8", "int4", "fixed_hw", "random"}
    # the predicted cycles are the compiler mapper's for the exported integer model, one batch
    model = IntegerModel.load(out / "integer_model.json")
    mapped = map_layers(cfg, from_integer_model(model, batch=TINY["batch"]), latency=20)
    assert mapped["total_cycles"] == pytest.approx(design["cycles"])
    assert "Co-search report" in (out / "report.md").read_text()


def test_a_finished_run_is_not_repeated(searched, monkeypatch):
    out, design = searched
    monkeypatch.setattr(baselines, "retrain_all", lambda run: pytest.fail("retrained again"))
    again = run_search(SearchSettings(**TINY), out, progress=False)
    assert again["cycles"] == design["cycles"] and again["acc"] == design["acc"]


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path, searched, monkeypatch):
    """Interrupt the run in its last phase, after its first retrained design, then resume: the same design as the
    uninterrupted run, the finished phases and the retrained design not repeated."""
    _, reference = searched
    original = baselines.retrain
    calls = []

    def interrupted(run, net, arch, bits, *, tag, **kw):
        if len(calls) == 1:
            raise KeyboardInterrupt
        calls.append(tag)
        return original(run, net, arch, bits, tag=tag, **kw)

    monkeypatch.setattr(baselines, "retrain", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_search(SearchSettings(**TINY), tmp_path, progress=False)
    monkeypatch.undo()
    assert (tmp_path / "checkpoint.pt").is_file() and not (tmp_path / "design.json").exists()
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["state"]
    assert state["phase"] == "retrain" and list(state["results"]["retrained"]) == calls == ["chosen"]
    finished = {name: state["step_seconds"][name] for name in ("warmup", "search", "search_fixed_hw", "random")}
    resumed = run_search(SearchSettings(**TINY), tmp_path, progress=False)
    for key in ("cycles", "acc", "acc_int8", "hardware", "bits", "baselines"):
        if key == "baselines":
            for tag, value in resumed[key].items():
                assert {k: v for k, v in value.items() if k != "train_seconds"} == \
                    {k: v for k, v in reference[key][tag].items() if k != "train_seconds"}, tag
        else:
            assert resumed[key] == reference[key], key
    # the finished phases were not run again: their seconds are the interrupted run's
    assert {name: resumed["step_seconds"][name] for name in finished} == finished
    assert resumed["step_seconds"]["retrain"] > state["step_seconds"]["retrain"] > 0


def test_a_run_interrupted_inside_its_warm_up_and_its_search_resumes_to_the_same_state(tmp_path):
    """Both checkpoint every epoch: stopped after the first of two warm-up epochs, then after the first of two search
    epochs, and resumed, the run ends with the supernet, searcher, random state and history of an uninterrupted one."""
    torch.set_num_threads(1)
    settings = SearchSettings(**{**TINY, "warmup_epochs": 2, "search_epochs": 2, "batch_size": 64})
    digits = load_digits()
    data = DataSplit(*(ImageSet(part.images[:n], part.labels[:n]) for part, n in ((digits.train, 192),
                                                                                 (digits.val, 64),
                                                                                 (digits.test, 64))),
                     digits.classes)           # a small training set: 3 steps per epoch
    steps = [Step("warmup", warmup), Step("search", search)]
    whole = SearchRun(settings, tmp_path / "whole", progress=False, steps=steps, data=data)
    whole.run()
    assert whole.state["phase"] == "done" and [h["epoch"] for h in whole.state["history"]["warmup"]] == [0, 1]

    cut = tmp_path / "cut"
    for phase in ("warmup", "search"):
        run = SearchRun(settings, cut, progress=False, steps=steps, data=data)
        original = run._epoch_batches

        def batches(tag, epoch, phase=phase, original=original):
            if (tag, epoch) == (phase, 1):
                raise KeyboardInterrupt
            return original(tag, epoch)

        run._epoch_batches = batches
        with pytest.raises(KeyboardInterrupt):
            run.run()
        saved = torch.load(cut / "checkpoint.pt", weights_only=True)
        assert saved["state"]["phase"] == phase and saved["state"]["epoch"] == 1
        assert (saved["warmup"] is not None) == (phase == "warmup")

    resumed = SearchRun(settings, cut, progress=False, steps=steps, data=data)
    resumed.run()
    assert resumed.state["phase"] == "done" and resumed.state["epoch"] == 0

    assert without_seconds(resumed.state["history"]) == without_seconds(whole.state["history"])
    assert resumed.state["results"] == whole.state["results"]
    for name, value in whole.searchers["search"].net.state_dict().items():
        assert torch.equal(value, resumed.searchers["search"].net.state_dict()[name]), name
    assert torch.equal(torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=True)["rng"],
                       torch.load(cut / "checkpoint.pt", weights_only=True)["rng"])


def test_a_checkpoint_of_other_settings_or_a_damaged_one_is_refused(tmp_path, searched):
    out, _ = searched
    with pytest.raises(InputError, match=r"these differ: seed 0 -> 1 .*seed cannot change on resume.*--restart"):
        SearchRun(SearchSettings(**{**TINY, "seed": 1}), out, progress=False).load()
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="checkpoint"):
        SearchRun(SearchSettings(**TINY), tmp_path, progress=False).load()
    assert (tmp_path / "checkpoint.pt").read_bytes() == b"not a checkpoint"      # nothing overwritten


def test_new_budgets_on_a_finished_run_search_again_from_its_warm_up_as_a_fresh_run_would(tmp_path, searched):
    """Budgets act from the search on: a finished run given budgets keeps its warm-up and searches again, and ends
    with the design a fresh run with those budgets gets (the README's budget example after a `make search`)."""
    out, design = searched
    # Loose enough for the search-phase design, which is priced before retraining (at 8-bit placeholders it is
    # 2.7x the final design on the depthwise mode).
    budgets = {"max_cycles": 4.0 * design["cycles"], "max_luts": 1e9}
    rerun = tmp_path / "rerun"
    rerun.mkdir()
    (rerun / "checkpoint.pt").write_bytes((out / "checkpoint.pt").read_bytes())
    run = SearchRun(SearchSettings(**TINY, **budgets), rerun, progress=False)
    run.load()
    assert run.state["phase"] == "search" and "max_cycles" in run.notes[0] and "warm-up is kept" in run.notes[0]
    again = run_search(SearchSettings(**TINY, **budgets), rerun, progress=False)
    fresh = run_search(SearchSettings(**TINY, **budgets), tmp_path / "fresh", progress=False)
    assert without_seconds(again) == without_seconds(fresh)
    assert again["step_seconds"]["warmup"] == design["step_seconds"]["warmup"]     # not run again
    assert again["budgets"]["max_cycles"] == budgets["max_cycles"]


def test_budgets_no_design_meets_are_reported_with_the_closest(tmp_path):
    with pytest.raises(BudgetError) as luts:
        SearchRun(SearchSettings(**{**TINY, "max_luts": 10.0}), tmp_path, progress=False)
    assert luts.value.closest["area_luts"] > 10
    code = main(["search", "--out", str(tmp_path), "--quiet", "--warmup-epochs", "0", "--search-epochs", "1",
                 "--retrain-fp-epochs", "0", "--retrain-qat-epochs", "0", "--batch", "4", "--max-cycles", "10",
                 "--no-baselines", "--threads", "1"])
    assert code == 3
    closest = json.loads((tmp_path / "closest.json").read_text())
    assert closest["cycles"] > 10
    assert not (tmp_path / "design.json").exists()


def test_a_tight_but_feasible_cycle_budget_is_met(tmp_path):
    """A budget between the slowest and the fastest candidate: the exported design meets it."""
    run = SearchRun(SearchSettings(**TINY, baselines=False), tmp_path, progress=False)
    arch = ArchChoice.largest(run.spec)
    bits = run.net.uniform_bits(arch, 8, 8)
    costs = [run.place(arch, bits, torch.nn.functional.one_hot(torch.tensor(h), len(run.configs)).float(),
                       strict=False, how="test")["cycles"] for h in range(len(run.configs))]
    budget = (min(costs) + max(costs)) / 2
    tight = SearchRun(SearchSettings(**TINY, baselines=False, max_cycles=budget), tmp_path / "t", progress=False)
    slow = torch.nn.functional.one_hot(torch.tensor(costs.index(max(costs))), len(run.configs)).float()
    design = tight.place(arch, bits, slow, strict=True, how="test")
    assert design["cycles"] <= budget and design["note"]


@pytest.mark.parametrize("args, field", [(["--batch", "0"], "batch"), (["--search-epochs", "0"], "--search-epochs"),
                                         (["--max-luts", "-1"], "--max-luts")])
def test_bad_options_exit_2_naming_the_field(tmp_path, capsys, args, field):
    assert main(["search", "--out", str(tmp_path), "--quiet", *args]) == 2
    assert field in capsys.readouterr().err


def test_a_bad_space_file_exits_2(tmp_path, capsys):
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"rows": [4], "colz": [4]}))
    assert main(["search", "--out", str(tmp_path), "--space", str(space)]) == 2
    assert "colz" in capsys.readouterr().err


def test_make_rtl_builds_the_searched_hardware(searched, tmp_path):
    out, design = searched
    assert main(["rtl", "--design", str(out / "design.json"), "--out", str(tmp_path)]) == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["config"] == design["hardware"]


@pytest.mark.parametrize("content", ["{not json", json.dumps({"version": 99}), json.dumps({"version": 1})])
def test_a_damaged_design_file_is_refused_and_nothing_is_written(tmp_path, capsys, content):
    bad = tmp_path / "design.json"
    bad.write_text(content)
    assert main(["rtl", "--design", str(bad), "--out", str(tmp_path / "rtl")]) == 2
    assert main(["verify", "--design", str(bad), "--out", str(tmp_path / "verify.json")]) == 2
    assert "design" in capsys.readouterr().err
    assert not (tmp_path / "rtl").exists() and not (tmp_path / "verify.json").exists()
    assert bad.read_text() == content


def search_command(out, *more: str) -> list[str]:
    """`codesign search` as a user runs it, small: 4 warm-up epochs of digits on one thread, no baselines."""
    return [sys.executable, "-m", "codesign.cli", "search", "--out", str(out), "--warmup-epochs", "4",
            "--search-epochs", "1", "--retrain-fp-epochs", "0", "--retrain-qat-epochs", "1", "--no-baselines",
            "--threads", "1", "--quiet", *more]


def test_ctrl_c_in_the_warm_up_ends_in_one_line_and_the_run_resumes_to_the_uninterrupted_design(tmp_path):
    """The real process, interrupted by SIGINT (Ctrl-C) once its first warm-up epoch is checkpointed: exit 130, one
    line, the checkpoint intact; the same command again finishes with the design of a run never interrupted."""
    whole = subprocess.Popen(search_command(tmp_path / "whole"), cwd=REPO, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    cut = tmp_path / "cut"
    first = subprocess.Popen(search_command(cut), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not _warmup_epochs_saved(cut / "checkpoint.pt"):
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.05)
    first.send_signal(signal.SIGINT)
    out, err = first.communicate(timeout=120)
    assert first.returncode == 130, err
    assert err.strip().splitlines() == ["codesign search: interrupted; run the same command again to resume"]
    saved = torch.load(cut / "checkpoint.pt", weights_only=True)
    assert saved["state"]["phase"] == "warmup" and 1 <= saved["state"]["epoch"] < 4   # stopped inside the warm-up

    again = subprocess.run(search_command(cut), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"resuming {cut / 'checkpoint.pt'}" in again.stderr
    assert whole.wait(timeout=600) == 0, whole.stderr.read()

    def design(out):
        return without_seconds(json.loads((out / "design.json").read_text()))

    assert design(cut) == design(tmp_path / "whole")


def _warmup_epochs_saved(path) -> int:
    """How many warm-up epochs the checkpoint at ``path`` holds (0 while there is none, or it is being replaced)."""
    try:
        saved = torch.load(path, weights_only=True)
    except (OSError, RuntimeError, EOFError):
        return 0
    return saved["state"]["epoch"] if saved["state"]["phase"] == "warmup" else 0


def without_seconds(value):
    """A record without its timings (``seconds``, ``train_seconds``, ``step_seconds``) and write time: what a
    reproducible run must repeat exactly."""
    if isinstance(value, dict):
        return {k: without_seconds(v) for k, v in value.items() if "seconds" not in k and k != "written"}
    return [without_seconds(v) for v in value] if isinstance(value, list) else value

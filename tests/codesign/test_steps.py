"""The step driver for real: order, resumption after a failed step, per-step seconds, atomic checkpoints, logging."""

import json
import os
import time

import pytest

from codesign.steps import DONE, Flow, Step


class Job:
    """A flow's state kept in JSON: what the steps did, and the driver's record."""

    def __init__(self, path, fail_in: str | None = None):
        self.path, self.fail_in = path, fail_in
        saved = json.loads(path.read_text()) if path.exists() else {"record": {}, "done": []}
        self.record, self.done = saved["record"], saved["done"]

    def dump(self) -> bytes:
        return json.dumps({"record": self.record, "done": self.done}).encode()

    def work(self, name: str):
        def run(job: "Job") -> str:
            assert job is self
            if name == self.fail_in:
                raise RuntimeError(f"{name} failed")
            time.sleep(0.01)
            self.done.append(name)
            return f"{name} finished"
        return run

    def flow(self, log=None) -> Flow["Job"]:
        steps = [Step(name, self.work(name)) for name in ("one", "two", "three")]
        return Flow(steps, self.record, checkpoint=self.path, dump=self.dump, log=log)


def test_steps_run_in_order_and_each_is_timed(tmp_path):
    job = Job(tmp_path / "checkpoint.json")
    lines = []
    seconds = job.flow(log=lines.append).run(job)
    assert job.done == ["one", "two", "three"]
    assert list(seconds) == ["one", "two", "three"] and all(s >= 0.01 for s in seconds.values())
    saved = json.loads((tmp_path / "checkpoint.json").read_text())
    assert saved["record"]["phase"] == DONE and saved["record"]["step_seconds"] == seconds
    assert [line.split(" (")[0] for line in lines] == ["one finished", "two finished", "three finished"]
    assert lines[0].endswith(f"({seconds['one']:.1f} s)")


def test_a_failed_step_is_resumed_and_the_finished_ones_are_not_rerun(tmp_path):
    path = tmp_path / "checkpoint.json"
    job = Job(path, fail_in="two")
    with pytest.raises(RuntimeError, match="two failed"):
        job.flow().run(job)
    saved = json.loads(path.read_text())
    assert saved["done"] == ["one"] and saved["record"]["phase"] == "two"
    assert set(saved["record"]["step_seconds"]) == {"one"}

    again = Job(path)                        # a new process: everything from the checkpoint
    seconds = again.flow().run(again)
    assert again.done == ["one", "two", "three"]          # "one" ran once, in the first run
    assert seconds["one"] == saved["record"]["step_seconds"]["one"]
    assert json.loads(path.read_text())["record"]["phase"] == DONE

    finished = Job(path)                     # a finished flow runs nothing
    assert finished.flow().run(finished) == seconds and finished.done == again.done


def test_a_step_checkpoints_between_its_epochs_with_its_seconds_so_far(tmp_path):
    path = tmp_path / "checkpoint.json"
    record = {}
    seen = []

    def epochs(state):
        for epoch in range(2):
            time.sleep(0.01)
            state["epoch"] = epoch + 1
            flow.checkpoint()
            seen.append(json.loads(path.read_text()))

    state = {}
    flow = Flow([Step("epochs", epochs)], record, checkpoint=path,
                dump=lambda: json.dumps({"record": record, "state": state}).encode())
    flow.run(state)
    assert [s["state"]["epoch"] for s in seen] == [1, 2] and all(s["record"]["phase"] == "epochs" for s in seen)
    first, second = (s["record"]["step_seconds"]["epochs"] for s in seen)
    assert 0.01 <= first < second <= record["step_seconds"]["epochs"]


def test_the_checkpoint_is_replaced_atomically(tmp_path):
    """Written through `codesign.files.atomic_write_bytes`: no temporary file left, and a dump that fails leaves
    the previous checkpoint whole."""
    path = tmp_path / "checkpoint.json"
    job = Job(path)
    job.flow().run(job)
    before = path.read_bytes()
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.json"]

    def broken():
        raise OSError("disk full")

    record = json.loads(before)["record"]
    record["phase"] = "three"
    flow = Flow([Step("three", lambda state: None)], record, checkpoint=path, dump=broken)
    with pytest.raises(OSError, match="disk full"):
        flow.run(None)
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["checkpoint.json"]


def test_without_a_checkpoint_the_flow_runs_in_memory(tmp_path):
    order = []
    flow = Flow([Step("a", lambda s: order.append("a")), Step("b", lambda s: order.append("b"))])
    assert list(flow.run(None)) == ["a", "b"] and order == ["a", "b"] and flow.phase == DONE
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("names", [("a", "a"), ("a", DONE)])
def test_step_names_are_distinct_and_not_done(names):
    with pytest.raises(ValueError, match="distinct"):
        Flow([Step(name, lambda s: None) for name in names])


def test_a_record_naming_no_step_is_refused():
    with pytest.raises(ValueError, match="'gone' is none of"):
        Flow([Step("a", lambda s: None)], {"phase": "gone"}).run(None)

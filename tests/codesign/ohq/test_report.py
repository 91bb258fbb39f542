"""What `codesign ohq` writes for a finished run: bits.json, results.json, the model, report.md and its plot."""

import json

import pytest
import torch
from torch import nn

from codesign.compiler.batchtile import Constants
from codesign.hw.config import HardwareConfig
from codesign.ohq.cost_table import BatchTilePricer
from codesign.ohq.flow import OhqOptions, run_ohq
from codesign.ohq.model import ModuleModel
from codesign.ohq.report import PLOT, PROGRAMS, programs_note, report_markdown, write_outputs
from codesign.quant.datasets import DataSplit, ImageSet

CFG = HardwareConfig(rows=4, cols=4, digit_bits=2)
# without a data set the plot has no point to label: matplotlib says its legend is empty
pytestmark = pytest.mark.filterwarnings("ignore:No artists with labels found to put in legend")


def _module():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))


def _run(data=None):
    model = ModuleModel(_module(), (1, 6, 6))
    options = OhqOptions(latency_budget=0.8, batch=2, qat_epochs=0, budgets=(0.5, 0.8, 1.0), choices=(2, 4, 8))
    torch.manual_seed(1)
    result = run_ohq(model, CFG, BatchTilePricer(CFG, constants=Constants(calibrated=True)), options,
                     calibration=torch.rand(8, 1, 6, 6), data=data, log=lambda line: None)
    return model, result


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    model, result = _run()
    out = tmp_path_factory.mktemp("ohq") / "out"
    files = write_outputs(result, model, CFG, out, model_path="user.pt")
    return model, result, out, files


def test_every_output_is_written(written):
    _, _, out, files = written
    assert set(files) == {"model_state", "bits", "results", "plot", "report"}
    assert {p.name for p in out.iterdir()} == {"model_state.pt", "bits.json", "results.json", PLOT, "report.md"}
    assert (out / PLOT).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob("*.tmp"))


def test_bits_json_is_the_chosen_allocation(written):
    _, result, out, _ = written
    bits = json.loads((out / "bits.json").read_text())
    assert bits["model"] == "user.pt" and bits["kind"] == "module"
    assert {k: v for k, v in bits.items() if k not in ("model", "kind")} == json.loads(json.dumps(result.summary))
    assert bits["cycles"] <= 0.8 * bits["cycles_int8"] * (1 + 1e-9)
    assert [layer["name"] for layer in bits["layers"]] == ["0", "2", "6"]
    assert all(set(layer["w_bits"]) <= {2, 4, 8} for layer in bits["layers"])


def test_results_json_holds_the_curve_and_tables(written):
    _, result, out, _ = written
    results = json.loads((out / "results.json").read_text())
    assert [point["budget"] for point in results["curve"]] == [0.5, 0.8, 1.0]
    assert set(results["uniform"]) == {"w8", "w4"}
    assert results["cost_table"] == json.loads(json.dumps(result.table.to_dict()))
    sensitivity = results["sensitivity"]
    assert sensitivity["choices"] == [2, 4, 8] and len(sensitivity["items"]) == len(sensitivity["kl_used"])
    assert results["programs"] is None and results["programs_note"] == programs_note("module", 2)
    assert "layers" not in results["summary"] and results["summary"]["batch"] == 2


def test_report_markdown_tells_the_story(written):
    model, result, out, files = written
    text = (out / "report.md").read_text()
    assert text == report_markdown(result, model, CFG, "user.pt", {k: v for k, v in files.items() if k != "report"})
    assert "Files: model_state.pt, bits.json, results.json, ohq_curve.png" in text
    assert text.startswith("# OHQ report: `user.pt`")
    assert f"accelerator `{CFG.digest()}` (4x4 PEs, g = 2" in text
    assert "**OHQ, budget 0.8**" in text and "| uniform 8-bit |" in text
    assert "Accuracy: none (no data set given)" in text and "n/a" in text
    for layer in ("`0`", "`2`", "`6`"):
        assert f"| {layer} |" in text
    assert f"![accuracy against cycles]({PLOT})" in text


def test_programs_note_by_kind():
    assert PROGRAMS in programs_note("quantnet", 4) and "batch of 4 images" in programs_note("quantnet", 4)
    assert "none for a user module" in programs_note("module", 4)


def test_with_data_the_accuracies_are_reported(tmp_path):
    torch.manual_seed(2)
    images, labels = torch.rand(12, 1, 6, 6), torch.randint(0, 3, (12,))
    data = DataSplit(*(ImageSet(images, labels),) * 3, classes=("a", "b", "c"))
    model, result = _run(data)
    write_outputs(result, model, CFG, tmp_path, model_path="user.pt")
    text = (tmp_path / "report.md").read_text()
    assert "float, with the weights fake-quantized" in text
    accuracy = json.loads((tmp_path / "bits.json").read_text())["accuracy"]
    assert 0.0 <= accuracy <= 1.0 and f"{100 * accuracy:.2f} %" in text

"""OHQ mode: the problem's tables, the allocation's rules, and `codesign ohq` end to end (BatchTile and RTL)."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from codesign.cli.main import main
from codesign.errors import InputError
from codesign.hw.config import HardwareConfig
from codesign.hw.isa import disassemble
from codesign.ir.layers import Conv2d, Linear
from codesign.ohq.cost_table import BatchTilePricer, CostTable, LayerCost
from codesign.ohq.flow import STEPS, OhqOptions, build_problem, monotone, run_ohq
from codesign.ohq.model import load_model
from codesign.quant.export import IntegerModel
from codesign.quant.qmodel import load_quantnet
from codesign.quant.supernet import DIGITS, ArchChoice, SuperNet

CFG = HardwareConfig()                      # g = 2: 3 and 4 bits are both two digits
SMALL = HardwareConfig(rows=4, cols=4, digit_bits=2, axi_data_bits=128, act_buf_bytes=256, wgt_buf_bytes=256,
                       out_buf_bytes=256, param_buf_bytes=256)     # built by tests/sim/system/test_runner.py
TINY = ArchChoice((1, 1, 1), (0.5, 0.5, 0.5), ((3,), (3,), (3,)), ((1,), (1,), (1,)))


def _table(layers, cycles_per_digit):
    """A cost table whose layer costs are ``cycles_per_digit[name] * digits`` (bytes and energy alike)."""
    return CostTable("predicted", "test", {
        layer.name: {d: LayerCost(cycles_per_digit[layer.name] * d, 10.0 * d, 100.0 * d) for d in (1, 2, 3, 4)}
        for layer in layers})


def _problem(group_size=None):
    layers = [Conv2d("a", 4, 16, 3, padding=1, in_h=4, in_w=4), Linear("b", 16, 8)]
    groups = ([("a", 0, 16), ("b", 0, 8)] if group_size is None else
              [("a", 0, 8), ("a", 8, 16), ("b", 0, 8)])
    choices = (2, 3, 4, 8)
    sens = torch.tensor([[8.0, 4.0, 2.0, 0.0]] * len(groups))
    return build_problem(CFG, layers, _table(layers, {"a": 1000.0, "b": 100.0}), groups, sens, choices)


def test_a_group_costs_its_share_of_its_layer_and_the_size_counts_digit_planes():
    whole, grouped = _problem(), _problem(group_size=8)
    assert grouped.cycles[0] + grouped.cycles[1] == pytest.approx(whole.cycles[0])
    assert grouped.cycles[0, 0] == 500.0                     # 8 of 16 channels at one digit
    # 3 and 4 bits are two digits at g = 2: same cost, same stored bytes; weights per channel 4 * 3 * 3 = 36
    assert whole.cycles[0, 1] == whole.cycles[0, 2] and whole.size[0, 1] == whole.size[0, 2] == 36 * 16 * 4 / 8
    assert whole.totals(whole.widest)["cycles"] == 4 * 1000 + 4 * 100


def test_the_allocation_meets_the_budget_and_takes_the_widest_width_of_a_digit_count():
    problem = _problem()
    allocation = problem.allocate(0.6)
    assert allocation.cycles <= 0.6 * problem.totals(problem.widest)["cycles"]
    bits = problem.bits(allocation.choice)
    assert set(bits["a"]) <= {2, 4, 8} and set(bits["b"]) <= {2, 4, 8}       # never 3: 4 costs the same


def test_sensitivity_is_made_non_increasing_in_the_width():
    table = np.array([[1.0, 0.2, 0.3, 0.0]])                 # 3 bits measured less sensitive than 4
    assert monotone(table, (2, 3, 4, 8)).tolist() == [[1.0, 0.3, 0.3, 0.0]]
    assert monotone(table[:, ::-1], (8, 4, 3, 2)).tolist() == [[0.0, 0.3, 0.3, 1.0]]


def test_the_blind_allocation_ignores_sensitivity():
    problem = _problem(group_size=8)
    problem.sensitivity[0] = [100.0, 100.0, 100.0, 0.0]      # the first group cannot lose bits
    assert problem.bits(problem.allocate(0.7).choice)["a"][:8] == (8,) * 8
    blind = problem.bits(problem.allocate(0.7, blind=True).choice)["a"]
    assert blind[:8] != (8,) * 8 or blind[8:] != (8,) * 8


def test_a_budget_below_every_weight_at_the_narrowest_width_is_refused():
    with pytest.raises(InputError, match=r"latency budget: 0.1 is not allowed; expected >= 0.250: every weight at 2 "
                                         r"bits takes that share of the 8-bit cycles"):
        _problem().allocate(0.1)


# ---- codesign ohq


@pytest.fixture(scope="module")
def tiny_quantnet(tmp_path_factory):
    """An untrained w8a8 QuantNet of the digits supernet's smallest kind, its quantizers initialized."""
    torch.manual_seed(0)
    net = SuperNet(DIGITS)
    q = net.extract_subnet(TINY, net.uniform_bits(TINY, 8, 8)).set_quantized().train()
    with torch.no_grad():
        q(torch.rand(16, 1, 8, 8))
    path = tmp_path_factory.mktemp("ohq") / "tiny.pt"
    q.save(path)
    return path


def _run(tmp_path, model, *extra):
    out = tmp_path / "out"
    code = main(["ohq", "--model", str(model), "--qat-epochs", "0", "--batch", "1", "--budgets", "0.9,1.0",
                 "--latency-budget", "0.9", "--calibration-images", "16", "--out", str(out),
                 "--cache-dir", str(tmp_path / "cache"), *extra])
    return code, out


def test_fast_end_to_end_respects_the_budget(tmp_path, tiny_quantnet, capsys):
    code, out = _run(tmp_path, tiny_quantnet, "--fast")
    assert code == 0
    printed = capsys.readouterr()
    assert "--fast: BatchTile cost model" in printed.err and "programs/programs.json" in printed.out
    bits = json.loads((out / "bits.json").read_text())
    assert bits["costs"] == "predicted"
    assert bits["cycles"] <= 0.9 * bits["cycles_int8"] * (1 + 1e-6)
    assert sum(layer["cycles_predicted"] for layer in bits["layers"]) == pytest.approx(bits["cycles"])
    net = load_quantnet(out / "model.pt")
    for name, layer in ((layer["name"], layer) for layer in bits["layers"]):
        assert set(layer["w_bits"]) <= set(bits["choices"])
        assert net.get_submodule(name).wq.bits.tolist() == layer["w_bits"]
    assert {p.name for p in out.iterdir()} >= {"bits.json", "results.json", "report.md", "ohq_curve.png",
                                                "model.pt", "integer_model.json"}
    assert "--fast" in (out / "report.md").read_text()
    # the accelerator programs of every accelerator layer, for one batch
    manifest = json.loads((out / "programs" / "programs.json").read_text())["programs"]
    integer = IntegerModel.load(out / "integer_model.json")
    assert {p["layer"] for p in manifest} == {layer.name for layer in integer.layers if layer.kind != "add"}
    first = manifest[0]
    assert len(disassemble((out / "programs" / first["commands"]).read_bytes()).splitlines()) == first["prog_len"]
    assert (out / "programs" / first["dram"]).stat().st_size == sum(seg["bytes"] for seg in first["segments"])


def test_run_ohq_runs_its_five_steps_in_order_and_times_each(tmp_path, tiny_quantnet):
    """The stages as named steps: each logged with its seconds, the timings keyed ``{step}_s``."""
    assert [step.name for step in STEPS] == ["costs", "sensitivity", "ilp", "quantize", "pricing_chosen"]
    model = load_model(str(tiny_quantnet), CFG, qat_cache=tmp_path / "qat")
    lines = []
    options = OhqOptions(latency_budget=0.9, batch=1, qat_epochs=0, budgets=(0.9, 1.0))
    result = run_ohq(model, CFG, BatchTilePricer(CFG), options, calibration=torch.rand(8, 1, 8, 8), data=None,
                     log=lines.append)
    assert list(result.timings) == [f"{step.name}_s" for step in STEPS]
    assert all(seconds >= 0 for seconds in result.timings.values())
    assert [line.split(":")[0] for line in lines] == ["costs", "sensitivity (MQE)", "quantized models"]
    assert lines[0].endswith(f"({result.timings['costs_s']:.1f} s)")
    assert result.summary["cycles"] <= 0.9 * result.summary["cycles_int8"] * (1 + 1e-6)
    assert result.summary["accuracy"] is None and [p["budget"] for p in result.curve] == [0.9, 1.0]
    assert set(result.uniform) == {"w8", "w4"} and result.quantized is not None


@pytest.mark.parametrize("argv, message", [
    (["--latency-budget", "1.5"], "--latency-budget: 1.5 is not allowed"),
    (["--group-size", "6"], "--group-size: 6 is not allowed; expected a positive multiple of the array's cols (8)"),
    (["--bits", "2,9"], "--bits: [2, 9] is not allowed; expected bit widths from 2 to 8"),
    (["--latency-budget", "0.2"], "latency budget: 0.2 is not allowed; expected >= "),
])
def test_bad_ohq_input_exits_2_and_writes_nothing(tmp_path, tiny_quantnet, capsys, argv, message):
    code, out = _run(tmp_path, tiny_quantnet, "--fast", *argv)
    assert code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_measured_end_to_end_on_a_small_accelerator(tmp_path, tiny_quantnet, capsys):
    """Costs from the RTL (the 4x4 configuration of tests/sim/system/test_runner.py), with channel groups."""
    hw = tmp_path / "hw.json"
    hw.write_text(SMALL.to_json())
    code, out = _run(tmp_path, tiny_quantnet, "--hw", str(hw), "--group-size", "4")
    assert code == 0
    assert "layer measurements simulated" in capsys.readouterr().err
    bits = json.loads((out / "bits.json").read_text())
    assert bits["costs"] == "measured" and bits["hardware"] == SMALL.to_dict()
    # groups are priced by their share; the chosen layers are then measured as they are
    assert bits["cycles"] == pytest.approx(bits["cycles_ilp"], rel=0.05)
    assert bits["cycles_ilp"] <= 0.9 * bits["cycles_int8"] * (1 + 1e-6)
    for layer in bits["layers"]:
        assert layer["cycles_measured"] == pytest.approx(layer["cycles_predicted"], rel=0.2), layer["name"]


# ---- a user's module


def _user_module():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), nn.ReLU6(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(16, 10))


def test_a_pickled_module_needs_trust_and_then_runs(tmp_path, capsys):
    path = tmp_path / "user.pt"
    torch.save(_user_module(), path)
    code, out = _run(tmp_path, path, "--fast")
    assert code == 2 and "--trust-pickle" in capsys.readouterr().err
    code, out = _run(tmp_path, path, "--fast", "--trust-pickle")
    assert code == 0
    assert "none for a user module" in capsys.readouterr().out
    bits = json.loads((out / "bits.json").read_text())
    assert [layer["name"] for layer in bits["layers"]] == ["0", "4", "8"] and bits["kind"] == "module"
    state = torch.load(out / "model_state.pt", weights_only=True)
    chosen = bits["layers"][1]["w_bits"]
    weight = state["4.weight"]
    for channel, width in enumerate(chosen):      # each output channel on its own width's grid
        assert len(torch.unique(weight[channel])) <= 2 ** width


@pytest.mark.filterwarnings("ignore::DeprecationWarning")     # torch.jit itself is deprecated
def test_torchscript_is_refused_with_the_reason(tmp_path, capsys):
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())), path)
    code, _ = _run(tmp_path, path, "--fast", "--trust-pickle")
    assert code == 2 and "not TorchScript" in capsys.readouterr().err

"""The search report: each plot on its own, the markdown, and `write_report` writing all five files."""

import pytest

from codesign.hw.config import HardwareConfig
from codesign.jaq.hwspace import hardware_name
from codesign.jaq.report import (
    PLOTS,
    bits_plot,
    explored_designs,
    hardware_plot,
    latency_plot,
    pareto_front,
    pareto_plot,
    per_layer_cycles,
    report_markdown,
    write_report,
)

CONFIGS = [HardwareConfig(), HardwareConfig(digit_bits=8)]
PNG = b"\x89PNG"


def _design(cycles: float, acc: float, luts: float, hw: int = 0) -> dict:
    return {"cycles": cycles, "proxy_acc_val": acc, "area_luts": luts, "hardware_name": hardware_name(CONFIGS[hw])}


def _retrained(cycles: float, acc: float) -> dict:
    names = ("stem", "blocks.0.depthwise[0]", "blocks.0.depthwise[1]", "classifier")
    layers = [{"name": name, "cycles": cycles * 0.25} for name in names]
    return {"cycles": cycles, "acc": acc, "hardware_name": hardware_name(CONFIGS[0]), "mean_weight_bits": 5.0,
            "area_luts": 900.0, "energy_pj": 2e6, "layers": layers}


def _run() -> tuple[dict, dict]:
    """A finished run's state and design, as small as the report takes them."""
    search = [{"epoch": e, "loss": 2.0 - e, "ce": 1.5 - e, "cycles": 9000.0 - e, "area_luts": 800.0,
               "hw_probs": [0.6 + 0.1 * e, 0.4 - 0.1 * e], "design": _design(8000.0 - 1000 * e, 0.5 + 0.1 * e, 800)}
              for e in range(2)]
    fixed = [{**search[0], "design": _design(9500.0, 0.7, 900)}]
    random = {"best": _design(12000.0, 0.4, 1200, 1), "explored": [_design(12000.0, 0.4, 1200, 1),
                                                                   _design(7000.0, 0.3, 1000, 1)]}
    retrained = {"chosen": _retrained(7000.0, 0.9), "int8": _retrained(11000.0, 0.91),
                 "int4": _retrained(8000.0, 0.85), "fixed_hw": _retrained(9000.0, 0.88),
                 "random": _retrained(12000.0, 0.8)}
    state = {"phase": "done", "history": {"search": search, "search_fixed_hw": fixed},
             "results": {"retrained": retrained, "random_derived": random}}
    design = {"written": "2026-01-01T00:00:00", "seconds": 12.0, "settings": {"seed": 0, "device": "cpu"},
              "batch": 4, "calibrated": True, "latency": 20.0, "dataset": "digits", "hardware": CONFIGS[0].to_dict(),
              "hardware_name": hardware_name(CONFIGS[0]), "hardware_choice": "the generator's",
              "network": {"arch": {"depths": [1], "widths": [1.0], "kernels": [[3]], "expands": [[1]]}},
              "bits": {"stem": {"w": [2, 4, 8], "a": 8}, "blocks.0.add": {"w": [], "a": 8},
                       "classifier": {"w": [8, 8], "a": 8}},
              "mean_weight_bits": 5.0, "acc": 0.9, "cycles": 7000.0, "area_luts": 900.0, "brams": 4,
              "targets": {"cycles_ratio_vs_int8": {"value": 0.64, "at_most": 0.7, "met": True},
                          "acc_loss_vs_int8": {"value": 0.01, "at_most": 0.01, "met": True}},
              "budgets": {"max_luts": None, "max_cycles": None}}
    return state, design


@pytest.mark.parametrize("name", PLOTS)
def test_each_plot_is_drawn_on_its_own(tmp_path, name):
    state, design = _run()
    retrained = state["results"]["retrained"]
    draw = {"pareto.png": lambda path: pareto_plot(path, explored_designs(state), retrained),
            "bits.png": lambda path: bits_plot(path, design),
            "latency.png": lambda path: latency_plot(path, design, retrained),
            "hardware.png": lambda path: hardware_plot(path, state["history"]["search"], CONFIGS)}[name]
    assert draw(tmp_path / name) == tmp_path / name
    assert (tmp_path / name).read_bytes().startswith(PNG)


@pytest.mark.filterwarnings("ignore:No artists with labels")
def test_the_hardware_plot_takes_a_run_without_search_epochs(tmp_path):
    hardware_plot(tmp_path / "hardware.png", [], CONFIGS)
    assert (tmp_path / "hardware.png").read_bytes().startswith(PNG)


def test_write_report_writes_the_four_plots_and_the_markdown(tmp_path):
    state, design = _run()
    path = write_report(tmp_path, design, state, CONFIGS)
    assert path == tmp_path / "report.md"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*PLOTS, "report.md"])
    text = path.read_text()
    assert text == report_markdown(design, state["results"]["retrained"], state["history"])
    assert "Co-search report" in text and all(f"]({name})" in text for name in PLOTS)
    assert "| blocks.0.depthwise | 5500 | 3500 |" in text          # a depthwise layer's GEMMs summed
    assert "| search_fixed_hw | 1 |" in text


def test_the_explored_designs_and_their_front():
    state, _ = _run()
    explored = explored_designs(state)
    assert [d["source"] for d in explored] == ["search epoch 1", "search epoch 2", "fixed-hw epoch 1", "random",
                                               "random"]
    front = pareto_front([(d["cycles"], d["proxy_acc_val"]) for d in explored])
    assert front == [(7000.0, 0.6), (9500.0, 0.7)]
    assert per_layer_cycles(state["results"]["retrained"]["chosen"]["layers"])["blocks.0.depthwise"] == 3500.0

"""The depthwise benchmark: its peer count, its split of MobileNetV2 into depthwise and the rest, and its report."""

import json
import math

import pytest

from codesign.bench.depthwise import CONFIGS, PATHS, is_depthwise, measure, scalesim_os_cycles, table, targets
from codesign.cli.main import main
from codesign.compiler.mapper import map_layers
from codesign.hw.config import HardwareConfig
from codesign.ir.layers import Conv2d, Linear, mobilenet_v2


def test_scalesim_count_is_folds_times_k_plus_the_array_fill():
    cfg = HardwareConfig(rows=8, cols=4)
    assert scalesim_os_cycles(cfg, 8, 9, 4) == 9 + 8 + 4 - 2                 # one fold
    assert scalesim_os_cycles(cfg, 17, 9, 1) == 3 * (9 + 10)                 # ceil(17 / 8) folds of one column


def test_only_one_channel_per_group_is_depthwise():
    assert is_depthwise(Conv2d("dw", 16, 16, 3, groups=16, in_h=8, in_w=8))
    assert not is_depthwise(Conv2d("grouped", 16, 16, 3, groups=4, in_h=8, in_w=8))
    assert not is_depthwise(Conv2d("pw", 16, 32, 1, in_h=8, in_w=8))
    assert not is_depthwise(Linear("fc", 16, 10))


@pytest.mark.parametrize("path", PATHS)
def test_a_row_splits_the_cost_models_totals_into_depthwise_and_the_rest(path):
    """``after`` is what `codesign map` prices; ``before`` the same model with depthwise layers as N = 1 GEMMs."""
    fields, w_bits = CONFIGS["8x8_g8_bus64_w8"]
    row = measure("8x8_g8_bus64_w8", fields, w_bits, path)
    layers = mobilenet_v2(224, w_bits=w_bits)
    mapped = map_layers(HardwareConfig(**fields, act_buf_bytes=65536, wgt_buf_bytes=65536), layers)
    if path == "after":
        assert math.isclose(row["total_cycles"], mapped["total_cycles"])
        assert math.isclose(row["dram_bytes"], mapped["total_dram_bytes"])
    depthwise = [layer for layer in layers if is_depthwise(layer)]
    assert len(depthwise) == 17                                               # one per inverted residual block
    dw_macs = sum(layer.out_channels * layer.out_h * layer.out_w * 9 for layer in depthwise)
    assert row["depthwise_macs"] == dw_macs and 0 < row["depthwise_mac_share"] < 0.1
    names = tuple(layer.name for layer in depthwise)       # a layer of several GEMMs names them layer[i]
    dw_cycles = sum(r["cycles"] for r in mapped["layers"] if r["name"].split("[")[0] in names)
    assert math.isclose(row["depthwise_cycles"], dw_cycles) == (path == "after")
    other = [r["cycles"] for r in mapped["layers"] if r["name"].split("[")[0] not in names]
    assert math.isclose(row["total_cycles"] - row["depthwise_cycles"], sum(other))      # the rest, the same
    assert 0 < row["utilization"] <= 1 and 0 < row["utilization_without_depthwise"] <= 1
    assert row["ratio_to_scalesim"] == row["total_cycles"] / row["scalesim_os_cycles"]
    # the bounds of a perfect depthwise path: never worse than either path, and the depthwise layers' ideal at most
    assert row["utilization"] < row["best_utilization"] <= 1 and row["best_dram_bytes"] < row["dram_bytes"]
    least = sum(layer.in_channels * layer.in_h * layer.in_w + layer.out_channels * (layer.out_h * layer.out_w + 9 + 8)
                for layer in depthwise)                                        # 8-bit weights, 8-byte records
    assert math.isclose(row["best_dram_bytes"], row["dram_bytes"] - row["depthwise_dram_bytes"] + least)


def test_targets_compare_the_worst_row():
    rows = [{"name": name, "utilization": 0.9, "best_utilization": 0.95, "depthwise_cycle_share": 0.1,
             "depthwise_mac_share": 0.07, "dram_bytes": 40.0, "best_dram_bytes": 30.0} for name in CONFIGS]
    met = targets(rows, before=dict.fromkeys(CONFIGS, 100.0))
    assert all(goal["met"] and goal["attainable"] for goal in met.values()) and len(met) == 4
    rows[3] = {**rows[3], "depthwise_cycle_share": 0.5, "dram_bytes": 60.0, "best_dram_bytes": 55.0,
               "utilization": 0.4, "best_utilization": 0.5}
    missed = targets(rows, before=dict.fromkeys(CONFIGS, 100.0))
    assert not missed["depthwise_share_over_mac_share"]["met"] and not missed["dram_bytes_over_before"]["met"]
    assert not missed["dram_bytes_over_before"]["attainable"]
    assert not missed["utilization_16x16_g8_bus256_w8"]["attainable"]      # its goal, 0.6, is above the bound
    assert targets(rows)["dram_bytes_over_before"]["value"] == 1.0          # by default against the rows themselves


def test_the_command_writes_every_configuration_and_prints_the_table(tmp_path, capsys):
    out = tmp_path / "depthwise.json"
    assert main(["bench", "depthwise", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    for path in PATHS:
        assert [row["name"] for row in report["rows"][path]] == list(CONFIGS)
        assert all(row["calibrated"] and row["path"] == path for row in report["rows"][path])
    for before, after in zip(report["rows"]["before"], report["rows"]["after"]):
        assert after["depthwise_cycles"] < before["depthwise_cycles"] / 2               # the depthwise mode pays
        assert after["depthwise_dram_bytes"] < before["depthwise_dram_bytes"] / 3
        assert math.isclose(after["total_cycles"] - after["depthwise_cycles"],
                            before["total_cycles"] - before["depthwise_cycles"])       # the rest unchanged
    printed = capsys.readouterr().out
    assert table(report) in printed and f"wrote {out}" in printed
    assert "load_average" in report["environment"]
    assert set(report["targets"]) == {"utilization_8x8_g2_bus64_w8", "utilization_16x16_g8_bus256_w8",
                                      "depthwise_share_over_mac_share", "dram_bytes_over_before"}

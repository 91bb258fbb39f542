"""OHQ's cost table: every accelerator layer priced at each digit count by BatchTilePricer, in one batched call."""

import pytest

from codesign.compiler.batchtile import Constants
from codesign.compiler.mapper import best_mappings, gemm_entries
from codesign.hw.config import HardwareConfig
from codesign.ir.layers import Conv2d, HostOp, Linear
from codesign.ohq.cost_table import BatchTilePricer, CostTable, LayerCost, at_digits, cost_table

CFG = HardwareConfig(rows=4, cols=4, digit_bits=2)
CONSTANTS = Constants(calibrated=True)
LAYERS = [Conv2d("conv", 3, 8, 3, padding=1, in_h=8, in_w=8, w_bits=(2, 3, 4, 5, 6, 7, 8, 8)),
          Conv2d("dw", 8, 8, 3, padding=1, groups=8, in_h=8, in_w=8, w_bits=(2, 2, 4, 4, 8, 8, 8, 8)),
          HostOp("pool", "global_avgpool", (8, 8, 8)), Linear("fc", 8, 10, w_bits=4)]


def test_at_digits_takes_the_widest_width_of_the_digit_count():
    layer = LAYERS[0]
    assert at_digits(CFG, layer, 1).w_bits == (2,) * 8
    assert at_digits(CFG, layer, 3).w_bits == (6,) * 8
    assert at_digits(CFG, layer, 5).w_bits == (8,) * 8                  # capped at weight_bits_max
    assert at_digits(HardwareConfig(digit_bits=4), layer, 1).w_bits == (4,) * 8
    assert at_digits(CFG, layer, 2).name == "conv" and at_digits(CFG, layer, 2).in_h == 8


def test_the_pricer_sums_each_layers_best_mappings():
    pricer = BatchTilePricer(CFG, latency=30, constants=CONSTANTS)
    assert pricer.source == "predicted" and pricer.description == \
        "BatchTile cost model (calibrated), memory latency 30 cycles"
    costs = pricer(LAYERS)
    assert len(costs) == len(LAYERS) and costs[2] == LayerCost(0.0, 0.0, 0.0)    # the host layer costs nothing
    entries, owner = gemm_entries(LAYERS)
    best = best_mappings(CFG, entries, CONSTANTS, latency=30)
    for index in range(len(LAYERS)):
        mine = [b for b, o in zip(best, owner) if o == index]
        assert costs[index].cycles == pytest.approx(sum(b["cycles"] for b in mine))
        assert costs[index].dram_bytes == pytest.approx(sum(b["dram_bytes"] for b in mine))
        assert costs[index].energy_pj == pytest.approx(sum(b["energy_pj"] for b in mine))
    assert all(c.cycles > 0 for i, c in enumerate(costs) if i != 2)
    assert "UNCALIBRATED" in BatchTilePricer(CFG, constants=Constants()).description


class RecordingPricer:
    """A pricer of the `Pricer` protocol whose cost is a layer's total weight bits, recording its calls."""

    source, description = "predicted", "weight bits"

    def __init__(self):
        self.calls = []

    def __call__(self, layers):
        self.calls.append([layer.name for layer in layers])
        return [LayerCost(float(sum(layer.w_bits)), 1.0, 2.0) for layer in layers]


def test_the_table_prices_every_accelerator_layer_at_each_digit_count_in_one_call():
    pricer = RecordingPricer()
    table = cost_table(pricer, CFG, LAYERS, [3, 1, 3, 2])
    assert pricer.calls == [["conv"] * 3 + ["dw"] * 3 + ["fc"] * 3]
    assert (table.source, table.description) == ("predicted", "weight bits")
    assert list(table.costs) == ["conv", "dw", "fc"] and list(table.costs["conv"]) == [1, 2, 3]
    assert table.cost("conv", 2) == LayerCost(8 * 4.0, 1.0, 2.0)
    assert table.cost("fc", 3) == LayerCost(10 * 6.0, 1.0, 2.0)
    data = table.to_dict()
    assert data["layers"]["dw"]["1"] == {"cycles": 8 * 2.0, "dram_bytes": 1.0, "energy_pj": 2.0}


def test_batchtile_costs_grow_with_the_digits():
    table = cost_table(BatchTilePricer(CFG, constants=CONSTANTS), CFG, LAYERS, [1, 2, 4])
    assert isinstance(table, CostTable) and table.source == "predicted"
    for name, by_digits in table.costs.items():
        cycles = [by_digits[d].cycles for d in (1, 2, 4)]
        assert cycles == sorted(cycles) and cycles[0] < cycles[-1], name
        assert by_digits[1].dram_bytes < by_digits[4].dram_bytes, name

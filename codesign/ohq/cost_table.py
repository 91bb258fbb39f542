"""Per-layer accelerator costs at each weight digit count: the hardware side of OHQ's bit allocation.

Weights enter the PE array g bits (`HardwareConfig.digit_bits`) per cycle and are stored as digit planes, so a
layer's cycles, DRAM bytes and energy depend on the digit counts ``ceil(bits / g)`` of its weights, not on the
bits: at g = 2, 3- and 4-bit weights cost the same. A `CostTable` holds, for every accelerator layer with all its
channels at one digit count, the cost at each digit count of interest.

A *pricer* turns layers (with their own per-channel bits) into `LayerCost`s and says where its figures come from:
`BatchTilePricer` here (the calibrated cost model, `codesign ohq --fast`), `sim.measure.layer_costs.RtlPricer` by
running
the compiled programs on the RTL (the default).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Protocol

from codesign.compiler.batchtile import Constants, load_constants
from codesign.compiler.mapper import best_mappings, gemm_entries
from codesign.hw.config import HardwareConfig
from codesign.ir.layers import Layer, placement


@dataclass(frozen=True)
class LayerCost:
    cycles: float
    dram_bytes: float
    energy_pj: float


class Pricer(Protocol):
    source: str          # "measured" (RTL) or "predicted" (cost model)
    description: str     # the source in words, for reports

    def __call__(self, layers: list[Layer]) -> list[LayerCost]:
        """The cost of each accelerator layer as it is (its own per-channel bits), in order."""


class BatchTilePricer:
    """BatchTile's figures for each layer's best mapping (`codesign.compiler.mapper.best_mappings`), in one batched
    call."""

    source = "predicted"

    def __init__(self, cfg: HardwareConfig, *, latency: float = 20.0, constants: Constants | None = None):
        self.cfg, self.latency = cfg, latency
        self.constants = constants or load_constants()
        state = "calibrated" if self.constants.calibrated else "UNCALIBRATED"
        self.description = f"BatchTile cost model ({state}), memory latency {latency:g} cycles"

    def __call__(self, layers: list[Layer]) -> list[LayerCost]:
        entries, owner = gemm_entries(layers)
        totals = [[0.0, 0.0, 0.0] for _ in layers]
        for index, best in zip(owner, best_mappings(self.cfg, entries, self.constants, latency=self.latency)):
            for slot, key in enumerate(("cycles", "dram_bytes", "energy_pj")):
                totals[index][slot] += best[key]
        return [LayerCost(*t) for t in totals]


def at_digits(cfg: HardwareConfig, layer: Layer, digits: int) -> Layer:
    """``layer`` with every channel at the widest weight of ``digits`` digits (the costs are the same for any width
    of that digit count)."""
    return replace(layer, w_bits=min(digits * cfg.digit_bits, cfg.weight_bits_max))


@dataclass(frozen=True)
class CostTable:
    source: str
    description: str
    costs: dict[str, dict[int, LayerCost]]      # accelerator layer name -> digit count -> cost

    def cost(self, layer: str, digits: int) -> LayerCost:
        return self.costs[layer][digits]

    def to_dict(self) -> dict:
        return {"source": self.source, "description": self.description,
                "layers": {name: {str(d): asdict(c) for d, c in by_digits.items()}
                           for name, by_digits in self.costs.items()}}


def cost_table(pricer: Pricer, cfg: HardwareConfig, layers: list[Layer], digit_counts) -> CostTable:
    """Every accelerator layer of ``layers`` priced at each of ``digit_counts``, uniform over its channels."""
    accelerator = [layer for layer in layers if placement(layer) == "accelerator"]
    cases = [(layer.name, d, at_digits(cfg, layer, d)) for layer in accelerator for d in sorted(set(digit_counts))]
    costs: dict[str, dict[int, LayerCost]] = {layer.name: {} for layer in accelerator}
    for (name, d, _), cost in zip(cases, pricer([case for _, _, case in cases]), strict=True):
        costs[name][d] = cost
    return CostTable(pricer.source, pricer.description, costs)

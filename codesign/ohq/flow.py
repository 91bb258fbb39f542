"""OHQ mode: hardware-measured mixed precision for a trained model (`codesign ohq`).

1. OQA, what the hardware costs: per accelerator layer and weight digit count, its cycles, DRAM bytes and energy
   (`codesign.ohq.cost_table`; measured on the RTL by `sim.measure.layer_costs.RtlPricer`, or BatchTile's prediction with
   ``--fast``).
2. MQE, what accuracy costs: per item and candidate width, the KL divergence of the model's outputs with only that
   item's weights quantized (`codesign.ohq.sensitivity`).
3. The allocation: the integer linear program of `codesign.ohq.allocation`, one width per item, minimizing the
   summed sensitivity with the total cycles <= budget x the cycles of the whole network at the widest candidate
   (8 bits), and optionally the weight bytes <= a size budget (a fraction of the 8-bit size).
4. The quantized model (a short QAT for a QuantNet) and the curve of accuracy against cycles over budgets, beside
   uniform 8- and 4-bit weights and a sensitivity-blind allocation at each budget: the same ILP minimizing the bits
   taken away, uniformly over items, so that only the hardware decides.

Items. An item is a layer or, with a group size G, a group of G consecutive output channels of a layer. G must be
a multiple of the array's ``cols``: a column tile costs what its widest channel costs, so the hardware rewards
whole column tiles of one width (the compiler sorts channels by width, so a group need not be consecutive in the
array). A group's cycles, bytes and energy are its share G / C of its layer's cost measured with the whole layer at
the group's width: exact for the array's work and the weight traffic, an approximation for the activation traffic
(shared by the layer's groups; the shares sum to one, so it is counted once) and where the mixed layer would pick
another mapping. The chosen allocation's layers are then priced as they are, per-channel widths and all, by the
same pricer; those are the cycles reported for it.

Widths and digits. The costs depend on a width's digit count ``ceil(bits / g)`` only, and more bits at the same cost
mean less sensitivity, so the ILP settles on the widest width of each digit count it uses (4 and 8 bits rather than
3 and 7 at g = 2) without being told. Size is the weight bytes as the accelerator stores them: digit planes,
``weights x digits x g / 8``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from codesign.errors import InputError
from codesign.hw.config import HardwareConfig
from codesign.ir.layers import Layer, Linear, placement
from codesign.ohq.allocation import Allocation, allocate_bits
from codesign.ohq.cost_table import BatchTilePricer, CostTable, Pricer, cost_table
from codesign.ohq.model import Bits, Groups, OhqModel, Quantized
from codesign.quant.datasets import DataSplit
from codesign.quant.quantizers import check_bits

BUDGETS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
CHOICES = (2, 3, 4, 5, 6, 8)


@dataclass(frozen=True)
class Item:
    """A layer (``start = 0``, ``end = channels``) or a group of its output channels."""

    layer: str
    start: int
    end: int


@dataclass
class OhqProblem:
    """The ILP's tables, [items, choices] each, and what they are made of."""

    items: list[Item]
    choices: tuple[int, ...]
    sensitivity: np.ndarray        # MQE's KL, made non-increasing in the width (`monotone`)
    kl_measured: np.ndarray        # MQE's KL as measured
    cycles: np.ndarray
    size: np.ndarray               # weight bytes as stored
    energy_pj: np.ndarray
    dram_bytes: np.ndarray
    channels: dict[str, int]       # output channels per layer

    def uniform(self, bits: int) -> np.ndarray:
        return np.full(len(self.items), self.choices.index(bits))

    @property
    def widest(self) -> np.ndarray:
        return self.uniform(max(self.choices))

    def totals(self, choice: np.ndarray) -> dict:
        rows = np.arange(len(self.items))
        return {name: float(getattr(self, name)[rows, choice].sum())
                for name in ("sensitivity", "cycles", "size", "energy_pj", "dram_bytes")}

    def bits(self, choice: np.ndarray) -> Bits:
        """Per layer, one width per output channel."""
        widths = {name: [0] * c for name, c in self.channels.items()}
        for item, pick in zip(self.items, choice):
            widths[item.layer][item.start:item.end] = [self.choices[pick]] * (item.end - item.start)
        return {name: tuple(w) for name, w in widths.items()}

    def allocate(self, budget: float, *, size_budget: float | None = None, blind: bool = False) -> Allocation:
        """The ILP at ``budget`` x the widest width's cycles (and ``size_budget`` x its size)."""
        reference = self.totals(self.widest)
        least = self.totals(self.uniform(min(self.choices)))["cycles"] / reference["cycles"]
        if budget < least:
            raise InputError("latency budget", budget, f">= {least:.3f}: every weight at {min(self.choices)} bits "
                                                       f"takes that share of the {max(self.choices)}-bit cycles")
        sensitivity = np.broadcast_to(max(self.choices) - np.asarray(self.choices, dtype=float),
                                      self.cycles.shape) if blind else self.sensitivity
        allocation = allocate_bits(sensitivity, self.cycles, self.size, cycle_budget=budget * reference["cycles"],
                                   size_budget=None if size_budget is None else size_budget * reference["size"])
        choice = self.widen(allocation.choice)
        rows = np.arange(len(self.items))
        return Allocation(choice, float(sensitivity[rows, choice].sum()), float(self.cycles[rows, choice].sum()),
                          float(self.size[rows, choice].sum()))

    def widen(self, choice: np.ndarray) -> np.ndarray:
        """Each item at the widest width that costs what its chosen one costs (the same digit count).

        The sensitivity never grows with the width (`monotone`), so this is what the ILP would choose itself but
        for the solver's optimality gap, within which it may settle for 3 bits where 4 cost the same.
        """
        widths = np.asarray(self.choices)
        wider = []
        for i, c in enumerate(choice):
            same = (self.cycles[i] == self.cycles[i, c]) & (self.size[i] == self.size[i, c])
            wider.append(int(np.flatnonzero(same)[np.argmax(widths[same])]))
        return np.asarray(wider)


def weights_per_channel(layer: Layer) -> int:
    """Weights of one output channel as the accelerator holds them (a GEMM column: K values)."""
    if isinstance(layer, Linear):
        return layer.in_features
    return layer.in_channels // layer.groups * layer.kernel[0] * layer.kernel[1]


def build_problem(cfg: HardwareConfig, layers: list[Layer], table: CostTable, groups: Groups,
                  sensitivity: torch.Tensor, choices) -> OhqProblem:
    accelerator = {layer.name: layer for layer in layers if placement(layer) == "accelerator"}
    named = {name for name, _, _ in groups}
    if named != set(accelerator):
        raise InputError("sensitivity layers", sorted(named ^ set(accelerator)),
                         "the same layers as the accelerator's (an internal naming mismatch)")
    items = [Item(name, start, end) for name, start, end in groups]
    channels = {name: layer.out_shape[0] for name, layer in accelerator.items()}
    shape = (len(items), len(choices))
    tables = {key: np.zeros(shape) for key in ("cycles", "size", "energy_pj", "dram_bytes")}
    for i, item in enumerate(items):
        layer = accelerator[item.layer]
        share = (item.end - item.start) / channels[item.layer]
        for j, bits in enumerate(choices):
            digits = cfg.digits(bits)
            cost = table.cost(item.layer, digits)
            tables["cycles"][i, j] = cost.cycles * share
            tables["energy_pj"][i, j] = cost.energy_pj * share
            tables["dram_bytes"][i, j] = cost.dram_bytes * share
            tables["size"][i, j] = weights_per_channel(layer) * (item.end - item.start) * digits * cfg.digit_bits / 8
    measured = sensitivity.numpy().astype(float)
    return OhqProblem(items, tuple(choices), monotone(measured, choices), measured, channels=channels, **tables)


def monotone(sensitivity: np.ndarray, choices) -> np.ndarray:
    """MQE's table made non-increasing in the width: a wider width has a finer step and cannot be expected to
    hurt more; where a few calibration images say it does (the grids of neighbouring widths differ, and the KL of
    the wide ones is near zero), the narrower width takes the wider one's figure."""
    order = np.argsort(choices)
    table = np.asarray(sensitivity, dtype=float)[:, order]
    table = np.maximum.accumulate(table[:, ::-1], axis=1)[:, ::-1]
    result = np.empty_like(table)
    result[:, order] = table
    return result


@dataclass
class OhqOptions:
    """`codesign ohq`'s choices; budgets are fractions of the figure with every weight at the widest width."""

    latency_budget: float = 0.7
    size_budget: float | None = None
    choices: tuple[int, ...] = CHOICES
    group_size: int | None = None
    batch: int = 8
    qat_epochs: int = 2
    qat_lr: float = 1e-4
    budgets: tuple[float, ...] = BUDGETS

    def validate(self, cfg: HardwareConfig) -> None:
        check_bits("--bits", self.choices)
        if max(self.choices) > cfg.weight_bits_max:
            raise InputError("--bits", list(self.choices), f"widths up to weight_bits_max={cfg.weight_bits_max}")
        for name, value in (("--latency-budget", self.latency_budget), ("--size-budget", self.size_budget),
                            *(("--budgets", b) for b in self.budgets)):
            if value is not None and not 0 < value <= 1:
                raise InputError(name, value, "a fraction of the widest width's figure in (0, 1]")
        if self.group_size is not None and (self.group_size < 1 or self.group_size % cfg.cols):
            raise InputError("--group-size", self.group_size, f"a positive multiple of the array's cols ({cfg.cols}): "
                                                              "a column tile costs what its widest channel costs")
        if self.batch < 1:
            raise InputError("--batch", self.batch, "a positive number of images")
        if self.qat_epochs < 0:
            raise InputError("--qat-epochs", self.qat_epochs, "a non-negative integer")


@dataclass
class OhqResult:
    """Everything `codesign ohq` writes: the chosen allocation, its model, the curve, the tables."""

    summary: dict                   # the chosen allocation: budgets, totals, accuracy, per-layer widths and costs
    curve: list[dict]               # per budget: OHQ and sensitivity-blind points; uniform points separately
    uniform: dict[str, dict]
    quantized: Quantized
    problem: OhqProblem
    table: CostTable
    timings: dict = field(default_factory=dict)


def run_ohq(model: OhqModel, cfg: HardwareConfig, pricer: Pricer, options: OhqOptions, *,
            calibration: torch.Tensor, data: DataSplit | None, log: Callable[[str], None] = print) -> OhqResult:
    """The whole OHQ flow for ``model`` on ``cfg`` (see the module docstring)."""
    options.validate(cfg)
    timings = {}
    start = time.perf_counter()
    model.prepare(calibration)
    layers = model.layers(options.batch)
    digit_counts = sorted({cfg.digits(b) for b in options.choices})
    table = cost_table(pricer, cfg, layers, digit_counts)
    timings["costs_s"] = time.perf_counter() - start
    log(f"costs: {len(table.costs)} accelerator layers x digits {digit_counts}, {table.description} "
        f"({timings['costs_s']:.1f} s)")

    start = time.perf_counter()
    groups, sensitivity = model.sensitivity(calibration, options.choices, options.group_size)
    timings["sensitivity_s"] = time.perf_counter() - start
    log(f"sensitivity (MQE): {len(groups)} items x widths {list(options.choices)} on {len(calibration)} images "
        f"({timings['sensitivity_s']:.1f} s)")
    problem = build_problem(cfg, layers, table, groups, sensitivity, options.choices)
    reference = problem.totals(problem.widest)

    start = time.perf_counter()
    chosen = problem.allocate(options.latency_budget, size_budget=options.size_budget)
    timings["ilp_s"] = time.perf_counter() - start
    curve = []
    for budget in options.budgets:
        point = {"budget": budget}
        for key, blind in (("ohq", False), ("blind", True)):
            try:
                allocation = problem.allocate(budget, size_budget=options.size_budget, blind=blind)
            except InputError as exc:           # a budget below what any allocation reaches
                point[key] = {"feasible": False, "reason": str(exc)}
                continue
            point[key] = _point(problem, allocation.choice, reference)
        curve.append(point)

    start = time.perf_counter()
    evaluated: dict[tuple, Quantized] = {}

    def evaluate(choice: np.ndarray) -> Quantized:
        bits = problem.bits(choice)
        key = tuple(sorted(bits.items()))
        if key not in evaluated:
            evaluated[key] = model.quantize(bits, data, options.qat_epochs, options.qat_lr)
        return evaluated[key]

    uniform = {}
    for bits in sorted({max(options.choices), 4} & set(options.choices), reverse=True):
        choice = problem.uniform(bits)
        uniform[f"w{bits}"] = {**_point(problem, choice, reference), "accuracy": evaluate(choice).accuracy}
    for point in curve:
        for key in ("ohq", "blind"):
            if point[key]["feasible"]:
                point[key]["accuracy"] = evaluate(np.asarray(point[key]["choice"])).accuracy
    quantized = evaluate(chosen.choice)
    timings["quantize_s"] = time.perf_counter() - start
    log(f"quantized models: {len(evaluated)} distinct allocations, QAT {options.qat_epochs} epochs each "
        f"({timings['quantize_s']:.1f} s)")

    start = time.perf_counter()
    summary = _summary(cfg, problem, chosen, layers, pricer, table, reference, options)
    summary["accuracy"] = quantized.accuracy
    timings["pricing_chosen_s"] = time.perf_counter() - start
    return OhqResult(summary, curve, uniform, quantized, problem, table, timings)


def _point(problem: OhqProblem, choice: np.ndarray, reference: dict) -> dict:
    totals = problem.totals(choice)
    widths = np.asarray(problem.choices)[choice]
    return {"feasible": True, "choice": [int(c) for c in choice], **totals,
            "cycles_ratio": totals["cycles"] / reference["cycles"], "size_ratio": totals["size"] / reference["size"],
            "mean_bits": float(np.average(widths, weights=problem.size[:, int(np.argmax(problem.choices))]))}


def _summary(cfg: HardwareConfig, problem: OhqProblem, chosen: Allocation, layers: list[Layer], pricer: Pricer,
             table: CostTable, reference: dict, options: OhqOptions) -> dict:
    """The chosen allocation, with every layer priced as it is (per-channel widths) by the pricer and BatchTile."""
    bits = problem.bits(chosen.choice)
    chosen_layers = [replace(layer, w_bits=bits[layer.name]) for layer in layers if layer.name in bits]
    priced = pricer(chosen_layers)
    predicted = priced if pricer.source == "predicted" else BatchTilePricer(cfg)(chosen_layers)
    widest = max(options.choices)
    rows = []
    for layer, cost, guess in zip(chosen_layers, priced, predicted):
        items = [(item, int(pick)) for item, pick in zip(problem.items, chosen.choice) if item.layer == layer.name]
        rows.append({
            "name": layer.name, "w_bits": list(bits[layer.name]),
            "widths": [{"channels": [item.start, item.end], "bits": problem.choices[pick]} for item, pick in items],
            "cycles_int8": table.cost(layer.name, cfg.digits(widest)).cycles,
            f"cycles_{pricer.source}": cost.cycles, "cycles_predicted": guess.cycles,
            "dram_bytes": cost.dram_bytes, "energy_pj": cost.energy_pj,
        })
    cycles = sum(c.cycles for c in priced)
    return {
        "costs": pricer.source, "cost_source": table.description, "hardware": cfg.to_dict(), "batch": options.batch,
        "latency_budget": options.latency_budget, "size_budget": options.size_budget,
        "group_size": options.group_size, "choices": list(options.choices), "qat_epochs": options.qat_epochs,
        "qat_lr": options.qat_lr,
        "cycles_int8": reference["cycles"], "cycles": cycles, "cycles_ratio_vs_int8": cycles / reference["cycles"],
        "cycles_ilp": chosen.cycles,
        "size_bytes": chosen.size, "size_int8_bytes": reference["size"],
        "energy_pj": sum(c.energy_pj for c in priced), "energy_int8_pj": reference["energy_pj"],
        "sensitivity": chosen.sensitivity, "layers": rows,
    }

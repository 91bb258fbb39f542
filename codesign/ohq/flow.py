"""OHQ mode: hardware-measured mixed precision for a trained model (`codesign ohq`).

`run_ohq` runs five named steps (`STEPS`, through the one driver `codesign.steps.Flow`, which times each):

1. ``costs``, OQA, what the hardware costs: per accelerator layer and weight digit count, its cycles, DRAM bytes
   and energy (`codesign.ohq.cost_table`; measured on the RTL by `sim.measure.layer_costs.RtlPricer`, or
   BatchTile's prediction with ``--fast``).
2. ``sensitivity``, MQE, what accuracy costs: per item and candidate width, the KL divergence of the model's
   outputs with only that item's weights quantized (`codesign.ohq.sensitivity`).
3. ``ilp``, the allocation: the integer linear program of `codesign.ohq.allocation`, one width per item, minimizing
   the summed sensitivity with the total cycles <= budget x the cycles of the whole network at the widest
   candidate (8 bits), and optionally the weight bytes <= a size budget (a fraction of the 8-bit size); the same at
   each budget of the report's curve, beside a sensitivity-blind allocation: the same ILP minimizing the bits
   taken away, uniformly over items, so that only the hardware decides.
4. ``quantize``: the quantized models (a short QAT for a QuantNet) of the chosen allocation, of the curve's and of
   uniform 8- and 4-bit weights, with their accuracies.
5. ``pricing_chosen``: the chosen allocation priced as it is, the summary.

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
from codesign.steps import Flow, Step

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


@dataclass
class OhqRun:
    """The state OHQ's steps work on: the inputs, then what each step makes."""

    model: OhqModel
    cfg: HardwareConfig
    pricer: Pricer
    options: OhqOptions
    calibration: torch.Tensor
    data: DataSplit | None
    layers: list[Layer] = field(default_factory=list)
    table: CostTable | None = None
    groups: Groups = field(default_factory=list)
    sensitivity: torch.Tensor | None = None
    problem: OhqProblem | None = None
    reference: dict = field(default_factory=dict)     # the totals with every weight at the widest width
    chosen: Allocation | None = None
    curve: list[dict] = field(default_factory=list)
    uniform: dict[str, dict] = field(default_factory=dict)
    quantized: Quantized | None = None
    summary: dict = field(default_factory=dict)


def costs(run: OhqRun) -> str:
    """OQA: the model's accelerator layers priced at every digit count of the candidate widths."""
    run.model.prepare(run.calibration)
    run.layers = run.model.layers(run.options.batch)
    digit_counts = sorted({run.cfg.digits(b) for b in run.options.choices})
    run.table = cost_table(run.pricer, run.cfg, run.layers, digit_counts)
    return f"costs: {len(run.table.costs)} accelerator layers x digits {digit_counts}, {run.table.description}"


def sensitivity(run: OhqRun) -> str:
    """MQE: per item and candidate width, the KL divergence with only that item quantized."""
    options = run.options
    run.groups, run.sensitivity = run.model.sensitivity(run.calibration, options.choices, options.group_size)
    return (f"sensitivity (MQE): {len(run.groups)} items x widths {list(options.choices)} on {len(run.calibration)} "
            "images")


def ilp(run: OhqRun) -> None:
    """The ILP's tables, the chosen allocation at the latency budget, and the curve's OHQ and sensitivity-blind
    allocations at each of the report's budgets."""
    options = run.options
    problem = run.problem = build_problem(run.cfg, run.layers, run.table, run.groups, run.sensitivity,
                                          options.choices)
    run.reference = problem.totals(problem.widest)
    run.chosen = problem.allocate(options.latency_budget, size_budget=options.size_budget)
    run.curve = []
    for budget in options.budgets:
        point = {"budget": budget}
        for key, blind in (("ohq", False), ("blind", True)):
            try:
                allocation = problem.allocate(budget, size_budget=options.size_budget, blind=blind)
            except InputError as exc:           # a budget below what any allocation reaches
                point[key] = {"feasible": False, "reason": str(exc)}
                continue
            point[key] = _point(problem, allocation.choice, run.reference)
        run.curve.append(point)


def quantize(run: OhqRun) -> str:
    """The quantized model of every allocation the report shows (uniform widths, the curve, the chosen one), each
    distinct allocation once, with its accuracy."""
    problem, options = run.problem, run.options
    evaluated: dict[tuple, Quantized] = {}

    def evaluate(choice: np.ndarray) -> Quantized:
        bits = problem.bits(choice)
        key = tuple(sorted(bits.items()))
        if key not in evaluated:
            evaluated[key] = run.model.quantize(bits, run.data, options.qat_epochs, options.qat_lr)
        return evaluated[key]

    run.uniform = {}
    for bits in sorted({max(options.choices), 4} & set(options.choices), reverse=True):
        choice = problem.uniform(bits)
        run.uniform[f"w{bits}"] = {**_point(problem, choice, run.reference), "accuracy": evaluate(choice).accuracy}
    for point in run.curve:
        for key in ("ohq", "blind"):
            if point[key]["feasible"]:
                point[key]["accuracy"] = evaluate(np.asarray(point[key]["choice"])).accuracy
    run.quantized = evaluate(run.chosen.choice)
    return f"quantized models: {len(evaluated)} distinct allocations, QAT {options.qat_epochs} epochs each"


def pricing_chosen(run: OhqRun) -> None:
    """The chosen allocation's layers priced as they are (per-channel widths): the summary."""
    run.summary = _summary(run.cfg, run.problem, run.chosen, run.layers, run.pricer, run.table, run.reference,
                           run.options)
    run.summary["accuracy"] = run.quantized.accuracy


# The five stages; results.json's timings are ``{name}_s``: costs_s, sensitivity_s, ilp_s, quantize_s,
# pricing_chosen_s.
STEPS: tuple[Step[OhqRun], ...] = (Step("costs", costs), Step("sensitivity", sensitivity), Step("ilp", ilp),
                                   Step("quantize", quantize), Step("pricing_chosen", pricing_chosen))


def run_ohq(model: OhqModel, cfg: HardwareConfig, pricer: Pricer, options: OhqOptions, *,
            calibration: torch.Tensor, data: DataSplit | None, log: Callable[[str], None] = print) -> OhqResult:
    """The whole OHQ flow for ``model`` on ``cfg`` (see the module docstring): `STEPS`, run by the one driver
    (in memory: the expensive parts, RTL measurements and QAT runs, have their own caches)."""
    options.validate(cfg)
    run = OhqRun(model, cfg, pricer, options, calibration, data)
    seconds = Flow(STEPS, log=log).run(run)
    timings = {f"{name}_s": value for name, value in seconds.items()}
    return OhqResult(run.summary, run.curve, run.uniform, run.quantized, run.problem, run.table, timings)


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

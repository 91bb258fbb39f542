"""The BatchTile benchmark: one search iteration of the cost model, against the same search as a Python loop.

    codesign bench batchtile --out build/bench/batchtile.json     (make bench-batchtile; ~5 s on 2 cores)
    codesign bench batchtile --device cuda --out build/bench/batchtile_cuda.json

The space: every conv and linear layer of the ImageNet MobileNetV2 at 224 x 224 (`codesign.ir.layers.mobilenet_v2`),
lowered by `codesign.ir.layers.gemms` (53 GEMM entries; a depthwise layer is one, priced on the array's depthwise
mode), with 8-bit weights, or with ``--weights mixed``: every output channel's bits drawn from {2, 4, 8} (seeded).
The hardware candidates are the grid
``rows x cols`` in {4, 8, 16, 32}^2 x ``digit_bits`` in {1, 2, 4, 8}: 64 `HardwareConfig`s, every other field at
its default (16 KiB activation and weight buffers, 8 KiB output, 4 KiB parameter buffer, 64-bit bus, max_k 4096 with
a 32-bit accumulator). Every point of the mapping grid of `codesign.compiler.batchtile` is priced.

One search iteration is what the search repeats: with the inputs already tensors on the device,
`codesign.compiler.batchtile.price_mappings`, `Costs.best` (the argmin per hardware and layer, decoded) and the
network total of the best cycles per hardware. The figure is the median of ``--iterations`` (default 30) timed
iterations after 3 warm-ups, on ``--threads`` (default 2) CPU threads (`torch.set_num_threads`); on CUDA the device
is synchronized before each clock reading. The load average of the machine is recorded: torch's threads spin at
their barriers, so a second busy process on a 2-core machine slows the 2-thread figure by orders of magnitude.

Two baselines run the same search in Python:

- ``naive_*``, the straightforward loop: the library's one-mapping API, as a caller without BatchTile writes it
  (`codesign.compiler.naive_pricing.api_search`: `codesign.compiler.mapping.enumerate_mappings` with the compiler's
  fit checks, then `price_mapping` for each mapping). It takes minutes on all 64 candidates, so it is timed on every
  ``API_LOOP_STRIDE``-th one and scaled (``naive_scope`` says so); its best cycles must equal BatchTile's there.
- ``tight_loop_*``, a loop hand-written to mirror BatchTile point by point (`codesign.compiler.naive_pricing.search`):
  for each hardware, GEMM and grid point in BatchTile's order, the fit is checked and the cycles computed with Python
  floats, with everything shared by a (hardware, GEMM) pair computed once per pair. Its ratio is what batching
  alone buys; it runs on the whole space (median of 3 runs).

``argmin_identical`` is true when the tight loop's cheapest point and BatchTile's are the same point or tie on every
(hardware, layer) (equal cycles up to ``tie_rel_tol``: two loop orders can cost exactly the same, and rounding then
decides which comes out first), and the straightforward loop's best cycles equal BatchTile's on the pairs it ran.
The cost model's constants are the defaults (`codesign.compiler.batchtile.Constants`): neither the timing nor the
comparison depends on their values.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import statistics
import time
from pathlib import Path

import torch

from codesign.bench.environment import bench_environment
from codesign.compiler import naive_pricing
from codesign.compiler.batchtile import Constants, HardwareBatch, LayerBatch, price_mappings
from codesign.errors import InputError
from codesign.files import atomic_write_json
from codesign.hw.config import DIGIT_BITS, HardwareConfig
from codesign.ir.layers import HostOp, Lowered, gemms, mobilenet_v2

ARRAY_SIZES = (4, 8, 16, 32)
MIXED_BITS = (2, 4, 8)
RESOLUTION = 224
WARMUP = 3
NAIVE_RUNS = 3
TIE_REL_TOL = 1e-9
TARGET_MS = 15.0
PAPER_MS = 150.0                # JAQ (Wang et al.) reports 150 ms per BatchTile search iteration


API_LOOP_STRIDE = 8


def hardware_candidates() -> list[HardwareConfig]:
    """The 64 candidates: rows x cols x digit_bits, the other fields at their defaults."""
    return [HardwareConfig(rows=rows, cols=cols, digit_bits=g)
            for rows in ARRAY_SIZES for cols in ARRAY_SIZES for g in DIGIT_BITS]


def network_gemms(weights: str = "8", seed: int = 0) -> list[tuple[str, Lowered]]:
    """MobileNetV2's accelerator GEMMs, named after their layers: 8-bit weights, or per-channel bits from
    `MIXED_BITS` drawn with ``seed``."""
    rng = random.Random(seed)
    entries = []
    for layer in mobilenet_v2(RESOLUTION):
        if isinstance(layer, HostOp):
            continue
        if weights == "mixed":
            channels = len(layer.w_bits)
            layer = dataclasses.replace(layer, w_bits=tuple(rng.choice(MIXED_BITS) for _ in range(channels)))
        lowered = gemms(layer)
        entries += [(layer.name if len(lowered) == 1 else f"{layer.name}[{i}]", entry)
                    for i, entry in enumerate(lowered)]
    return entries


def search_iteration(hw: HardwareBatch, layers: LayerBatch, constants: Constants):
    """What one search step costs: price every point, pick the best per (hardware, layer), sum per hardware."""
    costs = price_mappings(hw, layers, constants)
    best = costs.best()
    return costs, best, best["cycles"].sum(dim=-1)


def time_iterations(hw: HardwareBatch, layers: LayerBatch, constants: Constants, iterations: int,
                    device: str) -> tuple[list[float], object]:
    """Seconds of each timed iteration (after `WARMUP` untimed ones) and the last iteration's results."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for _ in range(WARMUP):
        search_iteration(hw, layers, constants)
    sync()
    seconds = []
    for _ in range(iterations):
        start = time.perf_counter()
        result = search_iteration(hw, layers, constants)
        sync()
        seconds.append(time.perf_counter() - start)
    return seconds, result


def compare(naive: naive_pricing.NaiveSearch, costs, best) -> dict:
    """The loop against BatchTile: validity, cycles where valid, and the argmin on every (hardware, layer)."""
    cycles = costs.cycles.double().cpu().tolist()
    valid = costs.valid.cpu().tolist()
    chosen = best["index"].cpu().tolist()
    valid_identical, max_rel, equal, ties, pairs = True, 0.0, 0, 0, 0
    for h, grids in enumerate(naive.cycles):
        for layer, grid in enumerate(grids):
            pairs += 1
            for value, theirs, ok in zip(grid, cycles[h][layer], valid[h][layer]):
                valid_identical &= math.isfinite(value) == ok
                if ok and math.isfinite(value):
                    max_rel = max(max_rel, abs(theirs - value) / value)
            mine, theirs = naive.index[h][layer], chosen[h][layer]
            if mine == theirs or (mine < 0 and not valid[h][layer][theirs]):
                equal += 1
            elif mine >= 0 and abs(grid[theirs] - grid[mine]) <= TIE_REL_TOL * grid[mine]:
                ties += 1
    return {"valid_identical": valid_identical, "cycles_max_rel_diff": max_rel, "argmin_pairs": pairs,
            "argmin_index_equal": equal, "argmin_ties": ties,
            "argmin_identical": valid_identical and equal + ties == pairs}


def run_naive(configs: list[HardwareConfig], entries: list[tuple[str, Lowered]],
              constants: Constants) -> tuple[list[float], naive_pricing.NaiveSearch]:
    seconds = []
    for _ in range(NAIVE_RUNS):
        start = time.perf_counter()
        result = naive_pricing.search(configs, [e.gemm for _, e in entries], [e.count for _, e in entries],
                                      constants)
        seconds.append(time.perf_counter() - start)
    return seconds, result


def run_api_loop(configs: list[HardwareConfig], entries: list[tuple[str, Lowered]], constants: Constants,
                 best: dict) -> dict:
    """The second baseline, on every ``API_LOOP_STRIDE``-th hardware (the whole set takes minutes), scaled to all:
    `naive_pricing.api_search`, i.e. `enumerate_mappings` and one `price_mapping` per mapping."""
    subset = list(range(0, len(configs), API_LOOP_STRIDE))
    start = time.perf_counter()
    result = naive_pricing.api_search([configs[h] for h in subset], [e.gemm for _, e in entries],
                                      [e.count for _, e in entries], constants)
    seconds = time.perf_counter() - start
    chosen = best["cycles"].double().cpu()
    # The loop runs in float64, BatchTile in float32: the best costs agree to float32's precision.
    agree = all(abs(result[i][layer] - float(chosen[h, layer])) <= 1e-5 * max(1.0, result[i][layer])
                or (math.isinf(result[i][layer]) and math.isinf(float(chosen[h, layer])))
                for i, h in enumerate(subset) for layer in range(len(entries)))
    return {"naive_seconds": seconds * len(configs) / len(subset), "naive_measured_seconds": seconds,
            "naive_scope": f"library-API loop on {len(subset)} of {len(configs)} hardware candidates (every "
                           f"{API_LOOP_STRIDE}th) x {len(entries)} GEMMs, scaled by {len(configs) / len(subset):.0f}",
            "naive_best_identical": agree}


def bench(device: str, iterations: int, weights: str, hw_limit: int | None, layer_limit: int | None) -> dict:
    """The report: BatchTile's iterations against both loops, on the threads torch has now."""
    configs = hardware_candidates()[:hw_limit]
    entries = network_gemms(weights)[:layer_limit]
    constants = Constants()
    hw = HardwareBatch.from_configs(configs, device=device)
    layers = LayerBatch.from_gemms([e.gemm for _, e in entries], [e.count for _, e in entries],
                                   [name for name, _ in entries], device=device)
    load_before = os.getloadavg()
    seconds, (costs, best, totals) = time_iterations(hw, layers, constants, iterations, device)
    naive_seconds, naive = run_naive(configs, entries, constants)
    api = run_api_loop(configs, entries, constants, best)
    median = statistics.median(seconds)
    grid_points = naive_pricing.GRID_POINTS
    cheapest = int(torch.argmin(totals))
    report = {
        "iteration_ms_median": median * 1e3, "iteration_ms_all": [s * 1e3 for s in seconds],
        "iterations": iterations, "warmup": WARMUP,
        "dtype": str(layers.m.dtype).removeprefix("torch."),
        "layers": len(entries), "layer_macs": sum(e.macs for _, e in entries), "weights": weights,
        "network": f"mobilenet_v2({RESOLUTION}), every conv and linear layer",
        "hw_candidates": len(configs),
        "hw_grid": f"rows x cols in {list(ARRAY_SIZES)}^2 x digit_bits in {list(DIGIT_BITS)}, other fields default",
        "grid_points": grid_points, "mappings_total": int(costs.valid.sum()),
        "tight_loop_seconds": statistics.median(naive_seconds), "tight_loop_seconds_all": naive_seconds,
        "tight_loop_speedup": statistics.median(naive_seconds) / median,
        "tight_loop_scope": f"full: {len(configs)} hw x {len(entries)} GEMMs x {grid_points} grid points visited, "
                       "the fitting ones priced; nothing scaled",
        "tight_loop_points_visited": len(configs) * len(entries) * grid_points,
        "tie_rel_tol": TIE_REL_TOL, **compare(naive, costs, best),
        **api, "naive_speedup": api["naive_seconds"] / median,
        "best_hw": configs[cheapest].to_dict(), "best_hw_network_cycles": float(totals[cheapest]),
        "target_ms": TARGET_MS, "paper_ms": PAPER_MS, "meets_target": median * 1e3 <= TARGET_MS,
        "load_average_before": load_before, **bench_environment(device),
        "constants": dataclasses.asdict(constants),
    }
    report["argmin_identical"] = report["argmin_identical"] and report["naive_best_identical"]
    return report


def benchmark(*, out: str | Path, device: str = "cpu", iterations: int = 30, threads: int = 2, weights: str = "8",
              hw_limit: int | None = None, layer_limit: int | None = None) -> dict:
    """`bench` on ``threads`` torch CPU threads, the report (with `bench_environment`'s record) written to ``out``
    atomically and returned; `InputError` for CUDA on a machine without it."""
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device", "cuda", "'cpu' on this machine: torch finds no CUDA device")
    torch.set_num_threads(threads)
    report = bench(device, iterations, weights, hw_limit, layer_limit)
    atomic_write_json(out, report)
    return report

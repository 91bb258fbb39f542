"""One layer compiled with its best mapping and run on the RTL: `codesign sim layer`.

The input feature map is random (unsigned ``act_bits``), im2col is `torch.nn.functional.unfold` (columns ordered
channel, kernel row, kernel column, as `codesign.layers` lowers), and the weights and requantization are random
within the layer's per-channel bits. A grouped convolution runs one group of each distinct bit pattern (a
depthwise layer: one channel per pattern) and counts it ``count`` times, as the cost model does.
"""

from __future__ import annotations

import numpy as np
import torch

from codesign.batchtile import load_constants
from codesign.compiler import compile_gemm
from codesign.config import HardwareConfig
from codesign.errors import InputError
from codesign.layers import Layer, Linear, gemms, placement
from codesign.mapper import best_mappings
from codesign.mapping import Mapping
from codesign.reference import gemm_requant

from .gemm import check_gemm_job, gemm_job, random_gemm
from .system_runner import run_session


def _activations(cfg: HardwareConfig, layer: Layer, rng: np.random.Generator) -> np.ndarray:
    """The GEMM's A for one group of ``layer``: im2col of a random input (any group's inputs are alike)."""
    if isinstance(layer, Linear):
        return rng.integers(0, 1 << cfg.act_bits, size=(layer.batch, layer.in_features))
    per_group = layer.in_channels // layer.groups
    x = rng.integers(0, 1 << cfg.act_bits, size=(layer.batch, per_group, layer.in_h, layer.in_w))
    cols = torch.nn.functional.unfold(torch.from_numpy(x).to(torch.float64), layer.kernel, dilation=layer.dilation,
                                      padding=layer.padding, stride=layer.stride)
    return cols.permute(0, 2, 1).reshape(-1, cols.shape[1]).numpy().astype(np.int64)


def run_layer(cfg: HardwareConfig, layer: Layer, *, seed: int = 0, latency: int = 20,
              simulator: str = "verilator") -> dict:
    if placement(layer) != "accelerator":
        raise InputError(f"{layer.name}", type(layer).__name__, "a Conv2d or Linear layer (host layers do not run on "
                                                                 "the accelerator)")
    rng = np.random.default_rng(seed)
    constants = load_constants()
    entries = gemms(layer)
    names = [f"{layer.name}[{i}]" for i in range(len(entries))]
    mapped = best_mappings(cfg, [(n, e.gemm, e.count) for n, e in zip(names, entries)], constants, latency=latency)
    jobs, checks = [], []
    for entry, best in zip(entries, mapped):
        bits = np.asarray(entry.gemm.bits)
        _, w, requant = random_gemm(cfg, 1, entry.gemm.k, entry.gemm.n, bits, rng)
        a = _activations(cfg, layer, rng)
        mapping = Mapping(**best["mapping"])
        program = compile_gemm(cfg, a, w, bits, requant, mapping, name=layer.name)
        jobs.append(gemm_job(program, latency=latency))
        checks.append((program, gemm_requant(cfg, a, w, bits, requant, act_signed=False), entry.count, best))
    results = run_session(cfg, jobs, simulator=simulator)
    reports = [check_gemm_job(program, want, outputs) for (program, want, _, _), outputs in zip(checks, results)]
    return {
        "layer": layer.name,
        "bit_exact": all(r["bit_exact"] for r in reports),
        "cycles_measured": sum(r["cycles"] * count for r, (_, _, count, _) in zip(reports, checks)),
        "cycles_predicted": sum(best["cycles"] for _, _, _, best in checks),
        "mapping": mapped[0]["mapping"] if len(mapped) == 1 else [m["mapping"] for m in mapped],
        "gemms": [{**{k: best[k] for k in ("name", "m", "k", "n", "count", "mapping", "cycles")},
                   "cycles_measured": r["cycles"]} for r, (_, _, _, best) in zip(reports, checks)],
        "latency": latency, "seed": seed, "calibrated": constants.calibrated, "config": cfg.to_dict(),
    }

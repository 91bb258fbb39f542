"""One layer compiled with its best mapping and run on the RTL: `codesign sim layer`.

The input feature map is random (unsigned ``act_bits``), im2col is `torch.nn.functional.unfold` (columns ordered
channel, kernel row, kernel column, as `codesign.ir.layers` lowers), and the weights and requantization are random
within the layer's per-channel bits. A grouped convolution runs one group of each distinct bit pattern and counts it
``count`` times, as the cost model does; a depthwise layer on the depthwise mode runs whole, from a random input
feature map (`codesign.compiler.program.compile_depthwise`).

`compile_layer` and `layer_report` are the two halves of `run_layer`, so that a caller with many layers
(`sim.measure.layer_costs`) can run all their jobs in one simulation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from codesign.compiler.batchtile import Constants, load_constants
from codesign.compiler.mapper import best_mappings
from codesign.compiler.mapping import Mapping
from codesign.compiler.program import Program, compile_depthwise, compile_gemm
from codesign.errors import InputError
from codesign.hw.config import HardwareConfig
from codesign.hw.reference import depthwise_requant, gemm_requant
from codesign.ir.layers import Layer, Linear, gemms, placement
from sim.runs.gemm import check_gemm_job, gemm_job, random_gemm
from sim.system.runner import run_session


@dataclass(frozen=True)
class CompiledLayer:
    """A layer's programs, one per distinct GEMM, each with its `sim.system.testbench` job and what checks its
    result."""

    layer: Layer
    jobs: list[dict]
    programs: list[Program]
    expected: list[np.ndarray]       # C of each program, from the integer reference
    counts: list[int]                # how many times each GEMM runs in the layer
    mapped: list[dict]               # `codesign.compiler.mapper.best_mappings` entries: mapping and predicted cycles
    latency: int
    seed: int
    calibrated: bool


def _activations(cfg: HardwareConfig, layer: Layer, rng: np.random.Generator) -> np.ndarray:
    """The GEMM's A for one group of ``layer``: im2col of a random input (any group's inputs are alike)."""
    if isinstance(layer, Linear):
        return rng.integers(0, 1 << cfg.act_bits, size=(layer.batch, layer.in_features))
    per_group = layer.in_channels // layer.groups
    x = rng.integers(0, 1 << cfg.act_bits, size=(layer.batch, per_group, layer.in_h, layer.in_w))
    cols = torch.nn.functional.unfold(torch.from_numpy(x).to(torch.float64), layer.kernel, dilation=layer.dilation,
                                      padding=layer.padding, stride=layer.stride)
    return cols.permute(0, 2, 1).reshape(-1, cols.shape[1]).numpy().astype(np.int64)


def compile_layer(cfg: HardwareConfig, layer: Layer, *, seed: int = 0, latency: int = 20,
                  constants: Constants | None = None) -> CompiledLayer:
    if placement(layer) != "accelerator":
        raise InputError(f"{layer.name}", type(layer).__name__, "a Conv2d or Linear layer (host layers do not run on "
                                                                 "the accelerator)")
    rng = np.random.default_rng(seed)
    constants = constants or load_constants()
    entries = gemms(layer)
    names = [f"{layer.name}[{i}]" for i in range(len(entries))]
    mapped = best_mappings(cfg, [(n, e.gemm, e.count) for n, e in zip(names, entries)], constants, latency=latency)
    if "fallback" in mapped[0]:              # a depthwise layer whose program this config's buffers do not take
        entries, mapped = gemms(layer, windowed=False), mapped[0]["fallback"]
    jobs, programs, expected = [], [], []
    for entry, best in zip(entries, mapped):
        bits = np.asarray(entry.gemm.bits)
        _, w, requant = random_gemm(cfg, 1, entry.gemm.k, entry.gemm.n, bits, rng)
        window = entry.gemm.window
        if window is not None:
            x = rng.integers(0, 1 << cfg.act_bits, size=(window.images, entry.gemm.n, window.height, window.width))
            taps = w.T.reshape(entry.gemm.n, *window.kernel)                 # channels x kh x kw
            program = compile_depthwise(cfg, x, taps, bits, requant, stride=window.stride,
                                        padding=window.padding, name=layer.name)
            want = depthwise_requant(cfg, x, taps, bits, requant, stride=window.stride, padding=window.padding,
                                     act_signed=False).transpose(0, 2, 3, 1).reshape(-1, entry.gemm.n)
        else:
            a = _activations(cfg, layer, rng)
            program = compile_gemm(cfg, a, w, bits, requant, Mapping(**best["mapping"]), name=layer.name)
            want = gemm_requant(cfg, a, w, bits, requant, act_signed=False)
        jobs.append(gemm_job(program, latency=latency))
        programs.append(program)
        expected.append(want)
    return CompiledLayer(layer, jobs, programs, expected, [e.count for e in entries], mapped, latency, seed,
                         constants.calibrated)


def layer_report(compiled: CompiledLayer, results: list[list], cfg: HardwareConfig) -> dict:
    """The figures of a compiled layer from its jobs' outputs: bit-exactness, cycles and DRAM bytes (counters)."""
    reports = [check_gemm_job(program, want, outputs)
               for program, want, outputs in zip(compiled.programs, compiled.expected, results, strict=True)]
    counted = list(zip(reports, compiled.counts, compiled.mapped))
    return {
        "layer": compiled.layer.name,
        "bit_exact": all(r["bit_exact"] for r in reports),
        "cycles_measured": sum(r["cycles"] * count for r, count, _ in counted),
        "cycles_predicted": sum(best["cycles"] for best in compiled.mapped),
        "dram_bytes_measured": sum((r["bytes_read"] + r["bytes_written"]) * count for r, count, _ in counted),
        "dram_bytes_predicted": sum(best["dram_bytes"] for best in compiled.mapped),
        "energy_pj_predicted": sum(best["energy_pj"] for best in compiled.mapped),
        "mapping": (compiled.mapped[0]["mapping"] if len(compiled.mapped) == 1
                    else [m["mapping"] for m in compiled.mapped]),
        "gemms": [{**{k: best[k] for k in ("name", "m", "k", "n", "count", "mapping", "cycles")},
                   "cycles_measured": r["cycles"]} for r, _, best in counted],
        "latency": compiled.latency, "seed": compiled.seed, "calibrated": compiled.calibrated,
        "config": cfg.to_dict(),
    }


def run_layer(cfg: HardwareConfig, layer: Layer, *, seed: int = 0, latency: int = 20,
              simulator: str = "verilator") -> dict:
    compiled = compile_layer(cfg, layer, seed=seed, latency=latency)
    return layer_report(compiled, run_session(cfg, compiled.jobs, simulator=simulator), cfg)

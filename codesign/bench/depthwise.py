"""The depthwise benchmark (issue 14): where MobileNetV2-224's cycles and DRAM bytes go on the accelerator.

    codesign bench depthwise --out build/bench/depthwise.json     (make bench-depthwise; seconds, no simulation)

Two paths side by side, each priced by the cost model the search uses:

- ``before``: a depthwise layer as one ``N = 1`` GEMM per channel (`codesign.ir.layers.gemms` with
  ``windowed=False``): one column of the array with host im2col, so 1/cols of the PEs, and its A moves ``kh * kw``
  times the input feature map;
- ``after``: the array's depthwise mode (`codesign.compiler.depthwise`): channels across the columns, output pixels
  down the rows, the input windowed on chip.

For each configuration of `CONFIGS` (64 KiB activation and weight buffers, every other field at its default),
BatchTile's best mapping per layer (`codesign.compiler.mapper.best_mappings`, what ``codesign map`` runs, the
calibrated constants) on `codesign.ir.layers.mobilenet_v2` at 224 x 224 with uniform weight bits gives:

- ``total_cycles`` and ``dram_bytes`` per image;
- ``depthwise_cycle_share`` against ``depthwise_mac_share``;
- ``utilization``: the ideal digit-MAC cycles (MACs x ceil(w_bits / g) / PEs) over the total cycles;
- ``best_utilization`` and ``best_dram_bytes``: what a perfect depthwise path would give, the other layers as they
  are: the depthwise layers at their ideal digit-MAC cycles, and moving their input, weights, parameter records and
  output once. A target above these bounds cannot be met by the depthwise path alone;
- ``scalesim_os_cycles``: SCALE-Sim's stall-free output-stationary count of the same GEMMs (Samajdar et al., ISPASS
  2020): per fold of ``rows`` x ``cols`` outputs, ``K + rows + cols - 2`` cycles, bit-parallel and without memory
  stalls, so a peer's lower bound for this dataflow rather than a like-for-like figure; our ratio to it, with and
  without the depthwise layers.

``targets`` holds issue 14's goals for the depthwise path, whether the ``after`` figures meet them (DRAM bytes
against ``before``), and whether the bounds above allow them (``attainable``).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from codesign.bench.environment import bench_environment
from codesign.compiler.batchtile import load_constants
from codesign.compiler.mapper import best_mappings
from codesign.files import atomic_write_json
from codesign.hw.config import HardwareConfig
from codesign.hw.isa import PARAM_RECORD_BYTES
from codesign.ir.layers import Conv2d, Layer, gemms, mobilenet_v2

RESOLUTION = 224
BUFFER_BYTES = 64 * 1024
LATENCY = 20.0
PATHS = ("before", "after")
# The table: name -> (config fields, uniform weight bits).
CONFIGS = {
    "8x8_g2_bus64_w8": (dict(rows=8, cols=8, digit_bits=2, axi_data_bits=64), 8),
    "8x8_g2_bus64_w4": (dict(rows=8, cols=8, digit_bits=2, axi_data_bits=64), 4),
    "8x8_g8_bus64_w8": (dict(rows=8, cols=8, digit_bits=8, axi_data_bits=64), 8),
    "16x16_g8_bus256_w8": (dict(rows=16, cols=16, digit_bits=8, axi_data_bits=256), 8),
    "16x16_g2_bus128_w4": (dict(rows=16, cols=16, digit_bits=2, axi_data_bits=128), 4),
}
# Issue 14's targets: utilization per configuration, the depthwise share of cycles against its share of MACs, and
# the DRAM bytes against the figures before the depthwise path (this benchmark's numbers at commit time).
UTILIZATION_TARGETS = {"8x8_g2_bus64_w8": 0.80, "16x16_g8_bus256_w8": 0.60}
SHARE_RATIO_TARGET = 2.0
DRAM_RATIO_TARGET = 0.5


def is_depthwise(layer: Layer) -> bool:
    """A convolution with one input channel per group: the layers this benchmark is about."""
    return isinstance(layer, Conv2d) and layer.groups > 1 and layer.groups == layer.in_channels


def scalesim_os_cycles(cfg: HardwareConfig, m: int, k: int, n: int) -> int:
    """SCALE-Sim's stall-free output-stationary cycles of ``C[m, n] = A[m, k] @ W[k, n]`` on ``cfg``'s array."""
    folds = math.ceil(m / cfg.rows) * math.ceil(n / cfg.cols)
    return folds * (k + cfg.rows + cfg.cols - 2)


def least_dram_bytes(layer: Conv2d, w_bits: int) -> float:
    """A depthwise layer's bytes when each crosses the bus once: input and output maps (one byte per activation),
    packed weights and one parameter record per channel."""
    activations = layer.batch * (layer.in_channels * layer.in_h * layer.in_w + layer.out_channels * layer.out_h *
                                 layer.out_w)
    return activations + layer.out_channels * (layer.kernel[0] * layer.kernel[1] * w_bits / 8 + PARAM_RECORD_BYTES)


def measure(name: str, fields: dict, w_bits: int, path: str = "after") -> dict:
    """One row of the table: the best mappings of MobileNetV2 with ``w_bits`` weights on ``path`` (`PATHS`), split
    into depthwise and the rest. SCALE-Sim's count is of the GEMMs of the layers as they are, on either path."""
    cfg = HardwareConfig(**fields, act_buf_bytes=BUFFER_BYTES, wgt_buf_bytes=BUFFER_BYTES)
    layers = mobilenet_v2(RESOLUTION, w_bits=w_bits)
    entries = [(layer.name, lowered.gemm, lowered.count, index) for index, layer in enumerate(layers)
               for lowered in gemms(layer, windowed=path == "after")]
    constants = load_constants()
    mapped = best_mappings(cfg, [entry[:3] for entry in entries], constants, latency=LATENCY)
    pes, digits = cfg.rows * cfg.cols, math.ceil(w_bits / cfg.digit_bits)
    totals = {part: dict.fromkeys(("cycles", "dram_bytes", "macs", "scalesim"), 0.0) for part in ("depthwise", "other")}
    for (_, gemm, count, index), row in zip(entries, mapped, strict=True):
        part = totals["depthwise" if is_depthwise(layers[index]) else "other"]
        part["cycles"] += row["cycles"]
        part["dram_bytes"] += row["dram_bytes"]
        part["macs"] += count * gemm.m * gemm.k * gemm.n
        part["scalesim"] += count * (scalesim_os_cycles(cfg, gemm.m, gemm.k, 1) * gemm.n if gemm.window
                                     else scalesim_os_cycles(cfg, gemm.m, gemm.k, gemm.n))
    dw, other = totals["depthwise"], totals["other"]
    cycles, macs = dw["cycles"] + other["cycles"], dw["macs"] + other["macs"]
    scalesim = dw["scalesim"] + other["scalesim"]
    least_dw_bytes = sum(least_dram_bytes(layer, w_bits) for layer in layers if is_depthwise(layer))
    return {
        "name": name, "path": path, "config": cfg.to_dict(), "w_bits": w_bits, "calibrated": constants.calibrated,
        "total_cycles": cycles, "dram_bytes": dw["dram_bytes"] + other["dram_bytes"],
        "depthwise_cycles": dw["cycles"], "depthwise_dram_bytes": dw["dram_bytes"],
        "macs": int(macs), "depthwise_macs": int(dw["macs"]),
        "depthwise_cycle_share": dw["cycles"] / cycles, "depthwise_mac_share": dw["macs"] / macs,
        "utilization": macs * digits / pes / cycles,
        "utilization_without_depthwise": other["macs"] * digits / pes / other["cycles"],
        "best_utilization": macs * digits / pes / (other["cycles"] + dw["macs"] * digits / pes),
        "best_dram_bytes": other["dram_bytes"] + least_dw_bytes,
        "scalesim_os_cycles": int(scalesim), "scalesim_os_cycles_without_depthwise": int(other["scalesim"]),
        "ratio_to_scalesim": cycles / scalesim,
        "ratio_to_scalesim_without_depthwise": other["cycles"] / other["scalesim"],
    }


def targets(rows: list[dict], before: dict[str, float] | None = None) -> dict:
    """Issue 14's targets against ``rows``. DRAM bytes compare with ``before`` (bytes per configuration name before
    the depthwise path), by default with ``rows`` themselves."""
    by_name = {row["name"]: row for row in rows}
    result = {f"utilization_{name}": {"value": by_name[name]["utilization"], "target": f">= {goal}",
                                      "met": by_name[name]["utilization"] >= goal,
                                      "attainable": by_name[name]["best_utilization"] >= goal}
              for name, goal in UTILIZATION_TARGETS.items()}
    worst = max(row["depthwise_cycle_share"] / row["depthwise_mac_share"] for row in rows)
    result["depthwise_share_over_mac_share"] = {"value": worst, "target": f"<= {SHARE_RATIO_TARGET} (worst row)",
                                                "met": worst <= SHARE_RATIO_TARGET, "attainable": True}
    before = before or {row["name"]: row["dram_bytes"] for row in rows}
    ratio = max(by_name[name]["dram_bytes"] / bytes_before for name, bytes_before in before.items())
    best = max(by_name[name]["best_dram_bytes"] / bytes_before for name, bytes_before in before.items())
    result["dram_bytes_over_before"] = {"value": ratio, "target": f"<= {DRAM_RATIO_TARGET} (worst row)",
                                        "met": ratio <= DRAM_RATIO_TARGET, "attainable": best <= DRAM_RATIO_TARGET,
                                        "best": best}
    return result


def benchmark(out: str | Path) -> dict:
    """Measure every configuration of `CONFIGS` and write the report to ``out``."""
    started = time.perf_counter()
    rows = {path: [measure(name, fields, w_bits, path) for name, (fields, w_bits) in CONFIGS.items()]
            for path in PATHS}
    report = {
        "benchmark": "depthwise",
        "network": f"mobilenet_v2({RESOLUTION}), batch 1, uniform weight bits",
        "paths": {"before": "one N = 1 GEMM per channel on one column, host im2col",
                  "after": "the array's depthwise mode (DW_COMPUTE), input windowed on chip"},
        "rows": rows,
        "targets": targets(rows["after"], {row["name"]: row["dram_bytes"] for row in rows["before"]}),
        "seconds": time.perf_counter() - started,
        "environment": bench_environment(),
    }
    atomic_write_json(out, report)
    return report


def table(report: dict) -> str:
    """The report as the Markdown table of the README and issue 14: before -> after per column."""
    lines = ["| config | total cycles | depthwise share of cycles | utilization | DRAM bytes per image | "
             "x SCALE-Sim OS |", "|---|---|---|---|---|---|"]
    for before, after in zip(report["rows"]["before"], report["rows"]["after"], strict=True):
        lines.append(f"| {after['name']} | {before['total_cycles'] / 1e6:.2f} M -> {after['total_cycles'] / 1e6:.2f} M"
                     f" | {before['depthwise_cycle_share']:.0%} -> {after['depthwise_cycle_share']:.0%} | "
                     f"{before['utilization']:.1%} -> {after['utilization']:.1%} | "
                     f"{before['dram_bytes'] / 1e6:.1f} -> {after['dram_bytes'] / 1e6:.1f} MB | "
                     f"{before['ratio_to_scalesim']:.2f} -> {after['ratio_to_scalesim']:.2f} |")
    return "\n".join(lines)

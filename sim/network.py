"""A whole exported integer network on the RTL, layer by layer: `codesign verify`.

The layers run chained: every accelerator layer (`codesign.layers.placement`) is compiled from the outputs the RTL
produced for its producers and runs in one `run_session` (its GEMMs are that session's jobs); host layers (the
residual add) run in numpy (`codesign.intmodel.run_layer`) on RTL-produced inputs. The host forms the operands
with the integer model's own `intmodel.gemm_operands` (im2col; the classifier's weights repeated for each pooled
pixel; a depthwise layer as one N = 1 GEMM per channel), so each layer's output must equal the integer model's bit
for bit, and the first layer that differs is where the fault is: its inputs were still right.

Each GEMM runs with its BatchTile-best mapping for the whole image batch (M = images * H_out * W_out), and the
cycles the RTL's counters measured sit beside the cycles BatchTile predicted for the same GEMMs and mappings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from codesign.batchtile import load_constants
from codesign.compiler import Program, compile_gemm
from codesign.config import HardwareConfig
from codesign.errors import InputError
from codesign.export import IntegerLayer, IntegerModel
from codesign.intmodel import gemm_operands, run_layer, run_model
from codesign.io import atomic_write_bytes, atomic_write_json
from codesign.quant import input_integers
from codesign.layers import from_integer_model, gemms
from codesign.mapper import best_mappings, gemm_entries
from codesign.mapping import Mapping

from .gemm import gemm_job
from .system_runner import run_session


def check_model(cfg: HardwareConfig, model: IntegerModel) -> None:
    """Refuse a model that ``cfg`` cannot run, naming the layer and the field, before anything is simulated."""
    for layer, lowered in zip(model.layers, from_integer_model(model)):
        try:
            layer.requant.validate(cfg, layer.out_shape[0])
        except InputError as exc:
            raise InputError(f"{layer.name} {exc.field}", exc.value, exc.allowed) from None
        if layer.w_bits is not None and int(layer.w_bits.max()) > cfg.weight_bits_max:
            raise InputError(f"{layer.name} w_bits", int(layer.w_bits.max()),
                             f"at most weight_bits_max={cfg.weight_bits_max}")
        if max(layer.in_bits) > cfg.act_bits:
            raise InputError(f"{layer.name} in_bits", max(layer.in_bits), f"at most act_bits={cfg.act_bits}")
        for entry in gemms(lowered):
            if entry.gemm.k > cfg.max_k:
                raise InputError(f"{layer.name} K", entry.gemm.k, f"at most max_k={cfg.max_k}")


def _price(cfg: HardwareConfig, model: IntegerModel, images: int, latency: float) -> tuple[dict, bool]:
    """Per accelerator layer: its lowered GEMMs' weight bits -> BatchTile's best mapping and predicted cycles
    (a depthwise layer's channels of equal bits share one entry, priced ``count`` times)."""
    constants = load_constants()
    layers = from_integer_model(model, batch=images)
    entries, owner = gemm_entries(layers)
    plans: dict[str, dict[tuple[int, ...], dict]] = {}
    for (_, gemm, _), index, best in zip(entries, owner, best_mappings(cfg, entries, constants, latency=latency)):
        plans.setdefault(layers[index].name, {})[gemm.bits] = best
    return plans, constants.calibrated


def _compile_layer(cfg: HardwareConfig, layer: IntegerLayer, x: np.ndarray, plan: dict) -> list[Program]:
    programs: list[Program] = []
    for a, w, bits, requant in gemm_operands(layer, x):
        mapping = Mapping(**plan[tuple(int(b) for b in bits)]["mapping"])
        programs.append(compile_gemm(cfg, a, w, bits, requant, mapping, act_signed=layer.in_signed[0],
                                     name=layer.name))
    return programs


def compile_network(cfg: HardwareConfig, model: IntegerModel, images_int: np.ndarray, *,
                    latency: float = 20) -> list[dict]:
    """Every accelerator program of the network for one batch of images: per program its layer, its index within
    the layer and the `Program`. Each layer is compiled from the integer model's own inputs to it, which the RTL
    reproduces bit for bit (`run_network` checks that), so no simulation is needed."""
    check_model(cfg, model)
    x = np.asarray(images_int, dtype=np.int64)
    golden = run_model(model, x, cfg)
    plans, _ = _price(cfg, model, len(x), latency)
    compiled = []
    for layer in model.layers:
        if layer.name in plans:
            programs = _compile_layer(cfg, layer, golden[layer.inputs[0]], plans[layer.name])
            compiled += [{"layer": layer.name, "index": i, "program": p} for i, p in enumerate(programs)]
    return compiled


def write_programs(out_dir: str | Path, compiled: list[dict]) -> Path:
    """Each program as ``<layer>.<index>.bin`` (its commands, `codesign disasm` reads them) and
    ``<layer>.<index>.dram`` (its DRAM image: the segments one after another), and ``programs.json`` listing them
    with the addresses a host driver needs (segments, PROG_ADDR / PROG_LEN, the output region)."""
    out_dir = Path(out_dir)
    entries = []
    for item in compiled:
        program, stem = item["program"], f"{item['layer']}.{item['index']}"
        atomic_write_bytes(out_dir / f"{stem}.bin", program.binary)
        segments, offset = [], 0
        for addr, blob in program.memory:
            segments.append({"addr": addr, "offset": offset, "bytes": len(blob)})
            offset += len(blob)
        atomic_write_bytes(out_dir / f"{stem}.dram", b"".join(blob for _, blob in program.memory))
        entries.append({"layer": item["layer"], "index": item["index"], "commands": f"{stem}.bin",
                        "dram": f"{stem}.dram", "segments": segments, "prog_addr": program.prog_addr,
                        "prog_len": len(program.commands), "out_addr": program.out_addr,
                        "out_bytes": program.out_bytes, "compute_cycles": program.compute_cycles})
    return atomic_write_json(out_dir / "programs.json", {"programs": entries})


def _run_on_accelerator(cfg: HardwareConfig, layer: IntegerLayer, x: np.ndarray, plan: dict, *, latency: int,
                        simulator: str) -> tuple[np.ndarray, dict]:
    """The layer's NHWC output from the RTL, and what its programs did: how many, their cycles, any failure."""
    programs = _compile_layer(cfg, layer, x, plan)
    results = run_session(cfg, [gemm_job(p, latency=latency) for p in programs], simulator=simulator)
    columns, cycles, failures = [], 0, []
    for i, (program, outputs) in enumerate(zip(programs, results)):
        run = outputs[-2]
        if run["error"] != "NONE" or run["timed_out"]:
            failures.append(f"GEMM {i}: error {run['error']}" + (", timed out" if run["timed_out"] else ""))
        columns.append(program.decode_c(bytes.fromhex(outputs[-1])))
        cycles += run["counters"]["cycles"]
    out = np.concatenate(columns, axis=1).reshape(len(x), *layer.out_shape[1:], layer.out_shape[0])
    return out, {"gemms": len(programs), "cycles_measured": cycles, "failures": failures}


def verify_images(cfg: HardwareConfig, model: IntegerModel, images: torch.Tensor, labels: np.ndarray, *,
                  latency: int = 20) -> dict:
    """`run_network` on float images in [0, 1] (quantized as the network's input quantizer does), with the accuracy
    of the RTL's and of the integer model's predictions on ``labels``: what `codesign verify` reports."""
    result = run_network(cfg, model, input_integers(images).numpy().astype(np.int64), latency=latency)
    return {**result, "labels": labels.tolist(), "acc_rtl": float((result["predictions"] == labels).mean()),
            "acc_int_model": float((result["expected_predictions"] == labels).mean())}


def _error_pct(predicted: float, measured: int) -> float | None:
    return 100.0 * (predicted - measured) / measured if measured else None


def run_network(cfg: HardwareConfig, model: IntegerModel, images_int: np.ndarray, *, latency: int = 20,
                simulator: str = "verilator", expected: dict[str, np.ndarray] | None = None) -> dict:
    """Run ``model`` on the RTL for integer images (N x C x H x W, unsigned ``input_bits``), chained layer by layer.

    Every layer's output is compared with ``expected`` (layer name -> NHWC integers; by default the integer
    model's own, `codesign.intmodel.run_model`). Returns the per-layer reports (name, kind, placement, bit_exact,
    mismatches, GEMMs run, failed programs, cycles measured and predicted, ``cycles_error`` = (predicted -
    measured) / measured in %, the mappings), the same totals, the first layer that differed (or None), the
    RTL's logits (N x classes) with their predictions, and the predictions of ``expected``.
    """
    check_model(cfg, model)
    x = np.asarray(images_int, dtype=np.int64)
    expected = run_model(model, x, cfg) if expected is None else expected     # run_model validates the shape
    plans, calibrated = _price(cfg, model, len(x), latency)
    outputs = {"input": x.transpose(0, 2, 3, 1)}
    reports = []
    for layer in model.layers:
        inputs = [outputs[name] for name in layer.inputs]
        plan = plans.get(layer.name)
        if plan is None:
            out, run = run_layer(cfg, layer, inputs), {"gemms": 0, "cycles_measured": 0, "failures": []}
        else:
            out, run = _run_on_accelerator(cfg, layer, inputs[0], plan, latency=latency, simulator=simulator)
        outputs[layer.name] = out
        mismatches = int(np.count_nonzero(out != expected[layer.name]))
        predicted = sum(best["cycles"] for best in plan.values()) if plan else 0.0
        reports.append({
            "name": layer.name, "kind": layer.kind, "placement": "host" if plan is None else "accelerator",
            "bit_exact": mismatches == 0 and not run["failures"], "mismatches": mismatches, **run,
            "cycles_predicted": predicted, "cycles_error": _error_pct(predicted, run["cycles_measured"]),
            "mappings": [{key: best[key] for key in ("m", "k", "n", "count", "mapping", "cycles")}
                         for best in (plan or {}).values()],
        })
    measured = sum(r["cycles_measured"] for r in reports)
    predicted = sum(r["cycles_predicted"] for r in reports)
    first = next((r["name"] for r in reports if not r["bit_exact"]), None)
    last = model.layers[-1].name
    logits = outputs[last].reshape(len(x), -1)
    return {
        "images": len(x), "bit_exact": first is None, "first_mismatch": first, "layers": reports,
        "cycles_measured": measured, "cycles_predicted": predicted, "cycles_error": _error_pct(predicted, measured),
        "logits": logits, "predictions": logits.argmax(1),
        "expected_predictions": expected[last].reshape(len(x), -1).argmax(1),
        "latency": latency, "calibrated": calibrated,
        "simulator": simulator, "config": cfg.to_dict(),
    }

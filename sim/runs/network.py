"""A whole exported integer network on the RTL, layer by layer: `codesign verify`.

The layers run chained: every accelerator layer is compiled (`codesign.compiler.network`) from the outputs the RTL
produced for its producers and runs in one `run_session` (its GEMMs are that session's jobs); host layers (the
residual add) run in numpy (`codesign.ir.executor.run_layer`) on RTL-produced inputs. The compiler forms the
operands as the integer model does, so each layer's output must equal the integer model's bit for bit, and the
first layer that differs is where the fault is: its inputs were still right. The cycles the RTL's counters measured
sit beside the cycles BatchTile predicted for the same GEMMs and mappings.
"""

from __future__ import annotations

import numpy as np
import torch

from codesign.compiler.network import check_model, compile_layer, price_network
from codesign.hw.config import HardwareConfig
from codesign.ir.executor import run_layer, run_model
from codesign.quant.export import IntegerLayer, IntegerModel
from codesign.quant.quantizers import input_integers
from sim.runs.gemm import gemm_job
from sim.system.runner import run_session


def _run_on_accelerator(cfg: HardwareConfig, layer: IntegerLayer, x: np.ndarray, plan: dict, *, latency: int,
                        simulator: str) -> tuple[np.ndarray, dict]:
    """The layer's NHWC output from the RTL, and what its programs did: how many, their cycles, any failure."""
    programs = compile_layer(cfg, layer, x, plan)
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
    model's own, `codesign.ir.executor.run_model`). Returns the per-layer reports (name, kind, placement, bit_exact,
    mismatches, GEMMs run, failed programs, cycles measured and predicted, ``cycles_error`` = (predicted -
    measured) / measured in %, the mappings), the same totals, the first layer that differed (or None), the
    RTL's logits (N x classes) with their predictions, and the predictions of ``expected``.
    """
    check_model(cfg, model)
    x = np.asarray(images_int, dtype=np.int64)
    expected = run_model(model, x, cfg) if expected is None else expected     # run_model validates the shape
    plans, calibrated = price_network(cfg, model, len(x), latency)
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

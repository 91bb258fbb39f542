"""What `codesign ohq` writes: ``bits.json``, ``results.json``, the quantized model, ``report.md`` and its plot.

- ``bits.json``: the chosen allocation: per layer the per-channel widths, the width of each item, and its cycles
  at 8 bits, as chosen (from the pricer: measured or predicted) and as BatchTile predicts them; the totals and
  the budgets.
- ``results.json``: everything behind the report: the curve (OHQ and sensitivity-blind allocations at each
  budget, uniform widths), the cost table, the sensitivity table, the timings.
- The model (`codesign.ohq.model.OhqModel.save`): for a QuantNet ``model.pt`` and ``integer_model.json``, the
  compiler's input; for a user module ``model_state.pt``.
- ``report.md`` (`templates/ohq_report.md.j2`) and ``ohq_curve.png``: accuracy against cycles.

- ``programs/``: for a QuantNet, every accelerator program of the quantized network for one batch of images
  (`codesign.compiler.network.compile_network`, written by the command after these files); none for a user module.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import templates
from codesign.files import atomic_save_figure, atomic_write_json, atomic_write_text
from codesign.hw.config import HardwareConfig
from codesign.ohq.flow import OhqResult
from codesign.ohq.model import OhqModel

PLOT = "ohq_curve.png"
PROGRAMS = "programs/programs.json"


def programs_note(kind: str, batch: int) -> str:
    if kind == "quantnet":
        return (f"Accelerator programs: `{PROGRAMS}` lists every accelerator layer's programs for one batch of {batch} "
                "images (commands `.bin`, readable with `codesign disasm`, and DRAM images `.dram`), compiled from "
                "`integer_model.json` with the mappings the costs assume; `codesign verify --model integer_model.json "
                "--config HW.json` runs the whole network on the RTL.")
    return ("Accelerator programs and an integer model: none for a user module (no integer export); "
            "model_state.pt holds its fake-quantized weights.")


def write_outputs(result: OhqResult, model: OhqModel, cfg: HardwareConfig, out_dir: Path, *,
                  model_path: str) -> dict[str, str]:
    """Write every output into ``out_dir``; returns role -> path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = model.save(result.quantized, out_dir)
    summary = {"model": model_path, "kind": model.kind, **result.summary}
    files["bits"] = str(atomic_write_json(out_dir / "bits.json", summary))
    problem = result.problem
    results = {
        "summary": {k: v for k, v in summary.items() if k != "layers"}, "curve": _plain_curve(result.curve),
        "uniform": {k: _plain(v) for k, v in result.uniform.items()}, "cost_table": result.table.to_dict(),
        "sensitivity": {"items": [[i.layer, i.start, i.end] for i in problem.items], "choices": list(problem.choices),
                        "kl_measured": problem.kl_measured.tolist(), "kl_used": problem.sensitivity.tolist()},
        "timings": result.timings, "programs": PROGRAMS if model.kind == "quantnet" else None,
        "programs_note": programs_note(model.kind, result.summary["batch"]),
    }
    files["results"] = str(atomic_write_json(out_dir / "results.json", results))
    plot(result, out_dir / PLOT)
    files["plot"] = str(out_dir / PLOT)
    files["report"] = str(atomic_write_text(out_dir / "report.md", report_markdown(result, model, cfg, model_path,
                                                                                    files)))
    return files


def report_markdown(result: OhqResult, model: OhqModel, cfg: HardwareConfig, model_path: str,
                    files: dict[str, str]) -> str:
    s = result.summary
    reference = result.uniform[f"w{max(s['choices'])}"]

    def acc(value) -> str:
        return "n/a" if value is None else f"{100 * value:.2f} %"

    headline = [{"name": f"uniform {name[1:]}-bit", "cycles": p["cycles"], "ratio": p["cycles_ratio"],
                 "size": p["size"], "energy_pj": p["energy_pj"], "accuracy": acc(p["accuracy"])}
                for name, p in result.uniform.items()]
    headline.append({"name": f"**OHQ, budget {s['latency_budget']}**", "cycles": s["cycles"],
                     "ratio": s["cycles_ratio_vs_int8"], "size": s["size_bytes"], "energy_pj": s["energy_pj"],
                     "accuracy": acc(s["accuracy"])})
    layers = [{**layer, "widths_text": ", ".join(f"{w['bits']}" if len(layer["widths"]) == 1 else
                                                 f"{w['channels'][0]}-{w['channels'][1] - 1}: {w['bits']}"
                                                 for w in layer["widths"])} for layer in s["layers"]]
    curve = []
    for point in result.curve:
        row = {"budget": point["budget"]}
        for key in ("ohq", "blind"):
            p = point[key]
            row[f"{key}_ratio"] = f"{p['cycles_ratio']:.3f}" if p["feasible"] else "infeasible"
            row[f"{key}_bits"] = f"{p['mean_bits']:.2f}" if p["feasible"] else ""
            row[f"{key}_accuracy"] = acc(p.get("accuracy")) if p["feasible"] else ""
        curve.append(row)
    uniform = {f"{name[1:]}-bit": {**p, "accuracy_text": acc(p["accuracy"])} for name, p in result.uniform.items()}
    least = float(result.problem.totals(result.problem.uniform(min(s["choices"])))["cycles"]) / reference["cycles"]
    accuracy_note = ("integer mode, i.e. the exported integer model's" if model.kind == "quantnet"
                     else "float, with the weights fake-quantized (a user module has no integer export)")
    if s["accuracy"] is None:
        accuracy_note = "none (no data set given)"
    trained = model.kind == "quantnet" and s["accuracy"] is not None
    return templates.render(
        "ohq_report.md.j2", model=model_path, kind="QuantNet" if model.kind == "quantnet" else "user module",
        digest=cfg.digest(), hw=cfg, cost_source=s["cost_source"], costs=s["costs"], batch=s["batch"],
        choices=s["choices"], group_size=s["group_size"], latency_budget=s["latency_budget"],
        size_budget=s["size_budget"], headline=headline, layers=layers, cycles_key=f"cycles_{s['costs']}",
        plot=PLOT, qat_epochs=s["qat_epochs"] if trained else 0, curve=curve, uniform=uniform,
        infeasible=any(not p["ohq"]["feasible"] for p in result.curve), least_ratio=least,
        files=[Path(f).name for f in files.values()], programs_note=programs_note(model.kind, result.summary["batch"]),
        accuracy_note=accuracy_note)


def plot(result: OhqResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    for key, label, style in (("ohq", "OHQ (MQE sensitivity)", "o-"), ("blind", "sensitivity-blind", "s--")):
        points = [p[key] for p in result.curve if p[key]["feasible"] and p[key].get("accuracy") is not None]
        if points:
            ax.plot([p["cycles_ratio"] for p in points], [100 * p["accuracy"] for p in points], style, label=label)
    for name, point in result.uniform.items():
        if point["accuracy"] is not None:
            ax.plot(point["cycles_ratio"], 100 * point["accuracy"], "*", markersize=12, label=f"uniform {name[1:]}-bit")
    chosen = result.summary
    if chosen["accuracy"] is not None:
        ax.plot(chosen["cycles_ratio_vs_int8"], 100 * chosen["accuracy"], "o", markersize=14, fillstyle="none",
                color="black", label=f"chosen (budget {chosen['latency_budget']})")
    ax.set(xlabel=f"cycles / uniform 8-bit cycles ({chosen['costs']})", ylabel="test accuracy (%)",
           title=f"Accuracy against accelerator cycles (batch {chosen['batch']})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    atomic_save_figure(path, fig, dpi=120)


def _plain(point: dict) -> dict:
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in point.items()}


def _plain_curve(curve: list[dict]) -> list[dict]:
    return [{k: (_plain(v) if isinstance(v, dict) else v) for k, v in point.items()} for point in curve]

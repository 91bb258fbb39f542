"""The search report: `report.md` from a jinja2 template (`report_markdown`), with four plots (matplotlib, Agg
backend), one function each, so each can be drawn, tested and changed on its own:

- ``pareto.png`` (`pareto_plot`): every design the run explored (each search epoch's derived design and every
  random design) by proxy accuracy and predicted cycles, coloured by PE-array LUTs, with the Pareto front and the
  retrained designs;
- ``bits.png`` (`bits_plot`): the chosen network's weight bits per layer (mean, min and max over its channels) and
  activation bits;
- ``latency.png`` (`latency_plot`): predicted cycles per layer, chosen design against the same network at uniform
  8-bit;
- ``hardware.png`` (`hardware_plot`): how the hardware generation network's distribution converged over the search
  epochs.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import templates
from codesign.files import atomic_save_figure, atomic_write_text
from codesign.jaq.hwspace import hardware_name

PLOTS = ("pareto.png", "bits.png", "latency.png", "hardware.png")
LABELS = {"chosen": "co-search (chosen)", "int8": "same network, uniform 8-bit",
          "int4": "same network, uniform 4-bit weights", "fixed_hw": "search, hardware fixed",
          "random": "random search"}


def write_report(out: str | Path, design: dict, state: dict, configs) -> Path:
    """The four plots and ``report.md`` in ``out``, from the design and the finished run's state."""
    out = Path(out)
    history, retrained = state["history"], state["results"]["retrained"]
    pareto_plot(out / "pareto.png", explored_designs(state), retrained)
    bits_plot(out / "bits.png", design)
    latency_plot(out / "latency.png", design, retrained)
    hardware_plot(out / "hardware.png", history.get("search", []), configs)
    return atomic_write_text(out / "report.md", report_markdown(design, retrained, history))


def explored_designs(state: dict) -> list[dict]:
    """Every design the run explored: each search epoch's derived design, then every random design."""
    results, history = state["results"], state["history"]
    explored = [dict(d["design"], source=f"search epoch {d['epoch'] + 1}") for d in history.get("search", [])]
    explored += [dict(d["design"], source=f"fixed-hw epoch {d['epoch'] + 1}")
                 for d in history.get("search_fixed_hw", [])]
    explored += [dict(d, source="random") for d in results.get("random_derived", {}).get("explored", [])]
    return explored


def pareto_plot(path: Path, explored: list[dict], retrained: dict) -> Path:
    """``pareto.png``: the explored designs by proxy accuracy and predicted cycles, the front, the retrained."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for marker, prefix in (("o", "search"), ("s", "fixed-hw"), ("^", "random")):
        points = [d for d in explored if d["source"].startswith(prefix)]
        if points:
            sc = ax.scatter([d["cycles"] for d in points], [d["proxy_acc_val"] for d in points],
                            c=[d["area_luts"] for d in points], cmap="viridis", marker=marker, label=prefix,
                            vmin=min(d["area_luts"] for d in explored), vmax=max(d["area_luts"] for d in explored))
    front = pareto_front([(d["cycles"], d["proxy_acc_val"]) for d in explored])
    ax.plot(*zip(*front), "k--", lw=1, label="Pareto front (explored)")
    for tag, value in retrained.items():
        ax.scatter(value["cycles"], value["acc"], marker="*", s=160, edgecolors="k", facecolors="none")
        ax.annotate(tag, (value["cycles"], value["acc"]), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("predicted cycles per batch")
    ax.set_ylabel("accuracy (explored: proxy on val; stars: retrained, test)")
    fig.colorbar(sc, ax=ax, label="PE-array LUTs")
    ax.legend(fontsize=8, loc="lower right")
    return atomic_save_figure(path, fig, dpi=110)


def bits_plot(path: Path, design: dict) -> Path:
    """``bits.png``: the chosen network's weight bits per layer (mean, min .. max over channels), activation bits."""
    plt = _pyplot()
    layers = [name for name, b in design["bits"].items() if b["w"]]
    w = [design["bits"][name]["w"] for name in layers]
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(layers)), 4))
    x = range(len(layers))
    means = [sum(b) / len(b) for b in w]
    ax.bar(x, means, color="tab:blue", label="weight bits, mean over channels")
    ax.errorbar(x, means, yerr=[[m - min(b) for m, b in zip(means, w)], [max(b) - m for m, b in zip(means, w)]],
                fmt="none", ecolor="k", capsize=3, label="min .. max")
    ax.plot(x, [design["bits"][name]["a"] for name in layers], "r_", markersize=14, mew=2, label="activation bits")
    ax.set_xticks(list(x), layers, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("bits")
    ax.legend(fontsize=8)
    return atomic_save_figure(path, fig, dpi=110)


def latency_plot(path: Path, design: dict, retrained: dict) -> Path:
    """``latency.png``: predicted cycles per layer, the chosen design against its network at uniform 8-bit."""
    plt = _pyplot()
    chosen_layers, int8_layers = per_layer_cycles(retrained["chosen"]["layers"]), \
        per_layer_cycles(retrained["int8"]["layers"])
    names = list(chosen_layers)
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(names)), 4))
    ax.bar([i - 0.2 for i in range(len(names))], [int8_layers.get(n, 0) for n in names], 0.4, label="uniform 8-bit")
    ax.bar([i + 0.2 for i in range(len(names))], [chosen_layers[n] for n in names], 0.4, label="chosen bits")
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel(f"predicted cycles ({design['hardware_name']})")
    ax.legend(fontsize=8)
    return atomic_save_figure(path, fig, dpi=110)


def hardware_plot(path: Path, search: list[dict], configs) -> Path:
    """``hardware.png``: the hardware generation network's distribution over the search epochs (``search``: the
    search's history), its six most probable candidates at the end and all others together."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    if search:
        final = search[-1]["hw_probs"]
        top = sorted(range(len(final)), key=lambda h: -final[h])[:6]
        epochs = [d["epoch"] + 1 for d in search]
        for h in top:
            ax.plot(epochs, [d["hw_probs"][h] for d in search], marker="o", label=hardware_name(configs[h]))
        ax.plot(epochs, [1 - sum(d["hw_probs"][h] for h in top) for d in search], "k:", label="all others")
    ax.set_xlabel("search epoch")
    ax.set_ylabel("probability")
    ax.legend(fontsize=7)
    return atomic_save_figure(path, fig, dpi=110)


def report_markdown(design: dict, retrained: dict, history: dict) -> str:
    """``report.md``'s text (`templates/search_report.md.j2`), the plots by their file names."""
    chosen_layers, int8_layers = per_layer_cycles(retrained["chosen"]["layers"]), \
        per_layer_cycles(retrained["int8"]["layers"])
    rows = [dict(retrained[tag], tag=tag, label=LABELS[tag]) for tag in LABELS if tag in retrained]
    return templates.render("search_report.md.j2", design=design, rows=rows, history=history, plots=PLOTS,
                            layer_rows=[{"name": n, "int8": int8_layers.get(n, 0.0), "chosen": chosen_layers[n]}
                                        for n in chosen_layers])


def _pyplot():
    """matplotlib's pyplot on the Agg backend (files only, no display)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats in both fewer cycles and higher accuracy, by cycles."""
    front, best = [], -1.0
    for cycles, acc in sorted(points, key=lambda p: (p[0], -p[1])):
        if acc > best:
            front.append((cycles, acc))
            best = acc
    return front


def per_layer_cycles(mapped: list[dict]) -> dict[str, float]:
    """Cycles per network layer (a depthwise layer's GEMM groups summed)."""
    totals: dict[str, float] = defaultdict(float)
    for entry in mapped:
        totals[re.sub(r"\[\d+\]$", "", entry["name"])] += entry["cycles"]
    return dict(totals)

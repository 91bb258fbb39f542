"""Calibration of the BatchTile cost model against the RTL: `make calibrate`.

    codesign calibrate [--out build/calibration.json] [--report build/bench/costmodel.json] [--refit]

A sweep of compiled GEMM programs (shapes x weight bits x mappings x memory latencies) and depthwise programs
(kernels 3 to 7, strides 1 and 2, x weight bits, where the configuration's buffers take them) runs on the whole
accelerator in Verilator, on four hardware configurations, and the performance counters give each program's cycles.
Every case is checked bit-exact. The cases are split in two by a hash of their description: the model's free constants
(`codesign.compiler.batchtile.Constants`) are fitted to one half (least squares on the squared relative errors, i.e.
their fourth powers), and the other half, never seen by the fit, measures the model: `build/bench/costmodel.json`
(MAPE, largest error, every case) and a plot of predicted against measured cycles. The fit goes to
`build/calibration.json`, which the model loads when it exists. The measurements are kept in
``build/calibration_cases.json``; ``--refit`` fits them again without simulating (after a change to the model, not
to the hardware).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from codesign.bench.environment import bench_environment
from codesign.compiler.batchtile import Constants, predict, predict_dram_bytes
from codesign.compiler.depthwise import plan_depthwise
from codesign.compiler.mapping import Gemm, Mapping, Window, enumerate_mappings
from codesign.compiler.program import compile_depthwise, compile_gemm
from codesign.errors import InputError
from codesign.files import atomic_save_figure, atomic_write_json
from codesign.hw.config import HardwareConfig
from codesign.hw.reference import depthwise_requant, gemm_requant
from sim.runs.gemm import check_gemm_job, gemm_job, random_gemm
from sim.system.runner import run_session

SMALL = dict(act_buf_bytes=256, wgt_buf_bytes=256, out_buf_bytes=256, param_buf_bytes=256)
CONFIGS = {
    "4x4-g2-bus128": HardwareConfig(rows=4, cols=4, digit_bits=2, axi_data_bits=128, act_buf_bytes=2048,
                                    wgt_buf_bytes=1024, out_buf_bytes=256, param_buf_bytes=256),
    "3x5-g1-bus256-small": HardwareConfig(rows=3, cols=5, digit_bits=1, axi_data_bits=256, **SMALL),
    "8x8-g8-bus64": HardwareConfig(rows=8, cols=8, digit_bits=8, axi_data_bits=64),
    "8x8-g2-bus64": HardwareConfig(),
    # wider than tall, as the search's generator often chooses: a short bank turn against long stores
    "4x16-g4-bus64": HardwareConfig(rows=4, cols=16, digit_bits=4, act_buf_bytes=4096, wgt_buf_bytes=4096),
}
SHAPES = ((13, 40, 11), (30, 100, 17), (6, 600, 5), (24, 64, 24), (40, 200, 9),
          (16, 9, 1), (64, 25, 1))      # the store-bound N = 1 GEMMs of the per-channel depthwise fallback
# Depthwise layers: (channels, height, width, kernel, stride, padding).
DEPTHWISE = ((16, 12, 12, 3, 1, 1), (24, 14, 15, 3, 2, 1), (9, 10, 20, 5, 1, 2), (12, 15, 9, 7, 2, 3),
             (8, 6, 120, 3, 1, 1), (6, 9, 150, 3, 2, 1),          # in strips on the 2 KiB buffers
             (7, 6, 9, 2, 1, 1), (10, 5, 14, 2, 1, 0))            # the 256-byte buffers take only these
BITS = ("2", "8", "mixed")
LATENCIES = (0, 20, 60)
MAPPINGS_PER_CASE = 4
SEED = 11
PARAMETERS = ("beat", "burst", "command", "tile_gap", "fixed", "decode", "latency_scale")
BOUNDS = ([0.5, -20.0, -20.0, 0.0, -500.0, 0.0, 0.2], [3.0, 200.0, 200.0, 100.0, 5000.0, 50.0, 1.5])


CASES_PATH = Path("build/calibration_cases.json")
CASE_FIELDS = ("config", "latency", "description", "held_out", "measured", "bit_exact", "measured_bytes")


def save_cases(cases: list[dict], path: Path) -> None:
    atomic_write_json(path, [{**{f: c.get(f) for f in CASE_FIELDS}, "gemm": [c["gemm"].m, c["gemm"].k, c["gemm"].n,
                                                                      list(c["gemm"].bits)],
                              "window": asdict(c["gemm"].window) if c["gemm"].window else None,
                              "mapping": c["mapping"].to_dict()} for c in cases])


def load_cases(path: Path) -> list[dict]:
    cases = []
    for c in json.loads(path.read_text()):
        m, k, n, bits = c["gemm"]
        window = c.get("window")
        window = Window(**{**window, "kernel": tuple(window["kernel"])}) if window else None
        cases.append({**{f: c.get(f) for f in CASE_FIELDS}, "gemm": Gemm(m, k, n, tuple(bits), window),
                      "mapping": Mapping(**c["mapping"])})
    return cases


def _held_out(description: str) -> bool:
    return hashlib.sha256(description.encode()).digest()[0] % 2 == 1


def sweep_cases(name: str, cfg: HardwareConfig, rng: np.random.Generator) -> list[dict]:
    """The cases of one configuration: per shape and bit setting, a spread of its valid mappings."""
    cases = []
    for m, k, n in SHAPES:
        for bits_name in BITS:
            bits = (rng.integers(2, cfg.weight_bits_max + 1, n) if bits_name == "mixed"
                    else np.full(n, int(bits_name)))
            gemm = Gemm(m, k, n, tuple(int(b) for b in bits))
            mappings = [mp for mp in enumerate_mappings(cfg, gemm) if mp.group]
            picks = np.unique(np.linspace(0, len(mappings) - 1, min(MAPPINGS_PER_CASE, len(mappings))).astype(int))
            for pick in picks:
                mapping = mappings[pick]
                latency = LATENCIES[len(cases) % len(LATENCIES)]
                a, w, requant = random_gemm(cfg, m, k, n, bits, rng)
                description = f"{name} {m}x{k}x{n} bits={bits_name} {mapping} latency={latency}"
                cases.append({"config": name, "gemm": gemm, "mapping": mapping, "latency": latency,
                              "description": description, "held_out": _held_out(description),
                              "program": compile_gemm(cfg, a, w, bits, requant, mapping),
                              "want": gemm_requant(cfg, a, w, bits, requant, act_signed=False)})
    return cases + depthwise_cases(name, cfg, rng)


def depthwise_cases(name: str, cfg: HardwareConfig, rng: np.random.Generator) -> list[dict]:
    """The depthwise programs of one configuration: each layer of `DEPTHWISE` that its buffers take, at each bit
    setting."""
    cases = []
    for channels, height, width, kernel, stride, padding in DEPTHWISE:
        window = Window(height, width, (kernel, kernel), stride, padding)
        for bits_name in BITS:
            bits = (rng.integers(2, cfg.weight_bits_max + 1, channels) if bits_name == "mixed"
                    else np.full(channels, int(bits_name)))
            gemm = Gemm(window.out_h * window.out_w, kernel * kernel, channels, tuple(int(b) for b in bits), window)
            try:
                plan_depthwise(cfg, gemm)
            except InputError:
                continue                              # the small buffers take no frame row of this width
            latency = LATENCIES[len(cases) % len(LATENCIES)]
            x = rng.integers(0, 1 << cfg.act_bits, size=(1, channels, height, width))
            _, w, requant = random_gemm(cfg, 1, kernel * kernel, channels, bits, rng)
            taps = w.T.reshape(channels, kernel, kernel)
            description = f"{name} depthwise {channels}x{height}x{width} k{kernel}s{stride} bits={bits_name} " \
                          f"latency={latency}"
            cases.append({"config": name, "gemm": gemm, "mapping": Mapping(), "latency": latency,
                          "description": description, "held_out": _held_out(description),
                          "program": compile_depthwise(cfg, x, taps, bits, requant, stride=stride, padding=padding),
                          "want": depthwise_requant(cfg, x, taps, bits, requant, stride=stride, padding=padding,
                                                    act_signed=False).transpose(0, 2, 3, 1).reshape(-1, channels)})
    return cases


def measure(cases: list[dict], cfg: HardwareConfig) -> None:
    """Run every case of one configuration in one simulation; add ``measured`` (cycles) and ``bit_exact``."""
    jobs = [gemm_job(case["program"], latency=case["latency"]) for case in cases]
    for case, outputs in zip(cases, run_session(cfg, jobs), strict=True):
        report = check_gemm_job(case["program"], case["want"], outputs)
        case["measured"], case["bit_exact"] = report["cycles"], report["bit_exact"]
        case["measured_bytes"] = report["bytes_read"] + report["bytes_written"]


def _predictions(cases: list[dict], constants: Constants) -> np.ndarray:
    return np.array([predict(CONFIGS[c["config"]], c["gemm"], c["mapping"], constants, latency=c["latency"])
                     for c in cases])


def fit(cases: list[dict]) -> tuple[Constants, dict]:
    from scipy.optimize import least_squares

    measured = np.array([c["measured"] for c in cases], dtype=float)

    def residuals(x):
        constants = Constants(**dict(zip(PARAMETERS, x)))
        relative = (_predictions(cases, constants) - measured) / measured
        # Squared residuals, so the fit minimizes the sum of fourth powers: the target bounds the largest error,
        # and this weighs the worst cases more than plain least squares would.
        return np.sign(relative) * relative ** 2

    start = [getattr(Constants(), p) for p in PARAMETERS]
    result = least_squares(residuals, start, bounds=BOUNDS, ftol=1e-12, xtol=1e-12, gtol=1e-12)
    constants = Constants(**dict(zip(PARAMETERS, map(float, result.x))), calibrated=True)
    return constants, {"iterations": int(result.nfev), "cost": float(result.cost)}


def errors(cases: list[dict], constants: Constants) -> np.ndarray:
    measured = np.array([c["measured"] for c in cases], dtype=float)
    return (_predictions(cases, constants) - measured) / measured


def plot(cases: list[dict], predicted: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name in CONFIGS:
        pick = [i for i, c in enumerate(cases) if c["config"] == name]
        ax.scatter([cases[i]["measured"] for i in pick], predicted[pick], s=14, label=name)
    lo = min(min(c["measured"] for c in cases), predicted.min()) * 0.8
    hi = max(max(c["measured"] for c in cases), predicted.max()) * 1.2
    ax.plot([lo, hi], [lo, hi], color="grey", linewidth=0.8)
    ax.set(xscale="log", yscale="log", xlabel="measured cycles (RTL, Verilator)", ylabel="predicted cycles (BatchTile)",
           title="Held-out cases")
    ax.legend(fontsize=8)
    atomic_save_figure(path, fig, dpi=120)


def dram_errors(cases: list[dict]) -> np.ndarray:
    """Relative errors of the model's DRAM bytes against the counters, on every case measured with them (the bytes
    have no fitted constant, so no case is held out from them)."""
    measured = [c for c in cases if c.get("measured_bytes")]
    return np.array([(predict_dram_bytes(CONFIGS[c["config"]], c["gemm"], c["mapping"]) - c["measured_bytes"]) /
                     c["measured_bytes"] for c in measured])


def _summary(errs: np.ndarray) -> dict:
    return {"mape_pct": round(float(np.mean(np.abs(errs)) * 100), 3),
            "max_abs_pct_error": round(float(np.max(np.abs(errs)) * 100), 3)}


def calibrate(*, out: str | Path = "build/calibration.json", report: str | Path = "build/bench/costmodel.json",
              refit: bool = False, cases_path: Path | None = None) -> dict:
    """Measure the sweep (or, with ``refit``, read the measurements in ``cases_path``, default `CASES_PATH`), fit the
    constants on half the cases and write the fit to ``out``, the held-out report to ``report`` and its plot beside it.

    Returns ``{"fit": ..., "report": ..., "not_bit_exact": [descriptions]}``; when a program is not bit-exact nothing
    is fitted or written but the measurements. `InputError` for ``refit`` without measurements.
    """
    out, report_path, cases_path = Path(out), Path(report), Path(cases_path or CASES_PATH)
    started = time.perf_counter()
    if refit:
        if not cases_path.is_file():
            raise InputError("--refit", str(cases_path), "an existing file of measurements: --refit needs a run "
                                                         "without --refit first")
        cases = load_cases(cases_path)
    else:
        rng = np.random.default_rng(SEED)
        cases = []
        for name, cfg in CONFIGS.items():
            config_cases = sweep_cases(name, cfg, rng)
            measure(config_cases, cfg)
            cases += config_cases
            print(f"{name}: {len(config_cases)} cases measured ({time.perf_counter() - started:.0f} s)", flush=True)
        save_cases(cases, cases_path)
    wrong = [c["description"] for c in cases if not c["bit_exact"]]
    if wrong:
        return {"fit": None, "report": None, "not_bit_exact": wrong}

    train = [c for c in cases if not c["held_out"]]
    test = [c for c in cases if c["held_out"]]
    constants, info = fit(train)
    test_errors = errors(test, constants)
    uncalibrated = errors(test, Constants())
    fit_record = {"constants": asdict(constants),
                  "fit": {**info, "cases": len(train), **_summary(errors(train, constants))},
                  "held_out": {"cases": len(test), **_summary(test_errors)},
                  "configs": {name: cfg.to_dict() for name, cfg in CONFIGS.items()}, "latencies": list(LATENCIES),
                  "date": datetime.now(UTC).isoformat(timespec="seconds")}
    atomic_write_json(out, fit_record)
    predicted = _predictions(test, constants)
    dram = dram_errors(cases)
    held_out = {
        "cases": len(test), "hw_configs": len(CONFIGS), "latencies": list(LATENCIES), **_summary(test_errors),
        "fit_cases": len(train), "uncalibrated": _summary(uncalibrated), "constants": asdict(constants),
        "targets": {"mape_pct": 2.0, "max_abs_pct_error": 5.0},
        "dram_bytes": {"cases": len(dram), **(_summary(dram) if len(dram) else {})},
        "held_out_cases": [{"case": c["description"], "measured": c["measured"], "predicted": round(float(p), 1),
                            "error_pct": round(float(e) * 100, 3)} for c, p, e in zip(test, predicted, test_errors)],
        "seconds": round(time.perf_counter() - started, 1), **bench_environment(),
    }
    atomic_write_json(report_path, held_out)
    plot(test, predicted, report_path.with_suffix(".png"))
    return {"fit": fit_record, "report": held_out, "not_bit_exact": []}

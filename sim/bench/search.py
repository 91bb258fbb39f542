"""The co-search benchmark: `make search` from scratch, then its network on the RTL, against the issue's targets.

    codesign bench search --out build/bench/search.json        (make bench-search; ~5-8 min on 2 cores)

It runs the default search in ``build/bench/search/`` (restarted, so the wall time is a whole run's), then the
chosen network on the RTL for one batch of test images (`sim.runs.network.run_network`), and writes:

- ``search_seconds`` (target: within 10 minutes on 2 CPU cores), ``acc``, ``acc_int8``, ``cycles``, ``cycles_int8``,
  ``cycles_ratio_vs_int8`` (target <= 0.70 at no more than 1 point accuracy loss), the baselines;
- ``verify``: ``bit_exact``, ``cycles_measured``, ``cycles_predicted``, ``cycles_error_pct`` (target within 2 %),
  per layer kind, and the RTL's accuracy against the integer model's on that batch.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

from codesign.bench.environment import bench_environment
from codesign.files import atomic_write_json
from codesign.hw.config import HardwareConfig
from codesign.jaq.pipeline import run_search
from codesign.jaq.search import SearchSettings
from codesign.quant.datasets import load_digits
from codesign.quant.export import IntegerModel
from sim.runs.network import verify_images


def bench(out_dir: Path, device: str) -> dict:
    settings = SearchSettings(device=device)
    start = time.perf_counter()
    design = run_search(settings, out_dir, restart=True, progress=False)
    seconds = time.perf_counter() - start
    model = IntegerModel.load(out_dir / "integer_model.json")
    cfg = HardwareConfig.from_dict(design["hardware"])
    test = load_digits(seed=settings.seed).test
    start = time.perf_counter()
    result = verify_images(cfg, model, test.images[:design["batch"]], test.labels[:design["batch"]].numpy(),
                           latency=int(settings.latency))
    by_kind = defaultdict(lambda: [0.0, 0.0])
    for layer in result["layers"]:
        by_kind[layer["kind"]][0] += layer["cycles_measured"]
        by_kind[layer["kind"]][1] += layer["cycles_predicted"]
    verify = {"bit_exact": result["bit_exact"], "images": result["images"],
              "cycles_measured": result["cycles_measured"], "cycles_predicted": result["cycles_predicted"],
              "cycles_error_pct": result["cycles_error"], "seconds": time.perf_counter() - start,
              "acc_rtl": result["acc_rtl"], "acc_int_model": result["acc_int_model"],
              "by_kind": {kind: {"measured": m, "predicted": p, "error_pct": 100 * (p - m) / m if m else None}
                          for kind, (m, p) in by_kind.items()}}
    keys = ("acc", "acc_int8", "cycles", "cycles_int8", "cycles_ratio_vs_int8", "acc_int4", "cycles_int4",
            "hardware_name", "mean_weight_bits", "batch", "targets", "baselines", "network", "hardware")
    return {"search_seconds": seconds, **{key: design[key] for key in keys}, "verify": verify,
            "meets": {"search_within_10_min": seconds <= 600,
                      "cycles_ratio_vs_int8": design["targets"]["cycles_ratio_vs_int8"]["met"],
                      "acc_loss_vs_int8": design["targets"]["acc_loss_vs_int8"]["met"],
                      "predicted_within_2pct": result["cycles_error"] is not None and abs(result["cycles_error"]) <= 2}}


def benchmark(*, out: str | Path, search_dir: str | Path = "build/bench/search", device: str = "cpu") -> dict:
    """`bench` in ``search_dir`` with `bench_environment`'s record; the report written to ``out`` atomically and
    returned."""
    report = bench(Path(search_dir), device)
    report.update(bench_environment(device))
    atomic_write_json(out, report)
    return report

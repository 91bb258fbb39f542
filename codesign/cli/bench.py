"""`codesign bench NAME`: the benchmarks behind the README's figures (`make bench`, `make bench-NAME`).

Each was a `python -m` module with its own argparse `main()`; the flags now sit here beside each handler, with the
same names and defaults, and each benchmark module keeps one plain function, ``benchmark(out=..., ...)``, that writes
its JSON report (with `codesign.bench.environment.bench_environment`'s record of the machine) and returns it. The
handlers import the benchmarks (torch, Amaranth, cocotb) inside the function, so `codesign --help` does not pay for
them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from codesign.cli.options import (
    Checked,
    add_device,
    add_threads,
    non_negative,
    output_dir,
    output_file,
    positive,
    progress_to_stderr,
)

NAMES = ("batchtile", "depthwise", "quant", "rtl", "search", "ohq")


def cmd_batchtile(args) -> int:
    output_file("--out", args.out)
    from codesign.bench.batchtile import TARGET_MS, benchmark

    with progress_to_stderr():
        report = benchmark(out=args.out, device=args.device, iterations=args.iterations, threads=args.threads,
                           weights=args.weights, hw_limit=args.hw_limit, layer_limit=args.layer_limit)
    print(f"iteration {report['iteration_ms_median']:.2f} ms (median of {args.iterations}, target {TARGET_MS:g}), "
          f"straightforward loop {report['naive_seconds']:.1f} s, speedup {report['naive_speedup']:.0f}x "
          f"(tight loop {report['tight_loop_seconds']:.2f} s, {report['tight_loop_speedup']:.0f}x), "
          f"argmin identical: {report['argmin_identical']}; wrote {args.out}")
    return 0


def cmd_depthwise(args) -> int:
    output_file("--out", args.out)
    from codesign.bench.depthwise import benchmark, table

    report = benchmark(out=args.out)
    print(table(report))
    print(f"wrote {args.out}")
    return 0


def cmd_quant(args) -> int:
    output_file("--out", args.out)
    from codesign.bench.quant import benchmark

    with progress_to_stderr():
        benchmark(out=args.out, device=args.device, fp_epochs=args.fp_epochs, qat_epochs=args.qat_epochs,
                  search_epochs=args.search_epochs)
    print(f"wrote {args.out}")
    return 0


def cmd_rtl(args) -> int:
    output_file("--out", args.out)
    output_dir("--build-dir", args.build_dir)
    from sim.bench.rtl import benchmark, disagreements, summary

    with progress_to_stderr():
        report = benchmark(out=args.out, build_dir=args.build_dir, skip_synth=args.skip_synth, fmax=args.fmax)
    print(summary(report))
    print(f"report: {args.out}")
    wrong = disagreements(report)
    if wrong:
        print(f"codesign bench rtl: the RTL disagrees with the reference in {', '.join(wrong)}; the figures are not "
              "valid", file=sys.stderr)
        return 1
    return 0


def cmd_search(args) -> int:
    output_file("--out", args.out)
    output_dir("--dir", args.dir)
    from sim.bench.search import benchmark

    with progress_to_stderr():
        report = benchmark(out=args.out, search_dir=args.dir, device=args.device)
    v = report["verify"]
    print(f"search {report['search_seconds']:.0f} s: {report['hardware_name']}, acc {report['acc']:.4f} (int8 "
          f"{report['acc_int8']:.4f}), cycles ratio vs int8 {report['cycles_ratio_vs_int8']:.3f}; RTL: bit-exact "
          f"{v['bit_exact']}, {v['cycles_measured']} cycles measured vs {v['cycles_predicted']:.0f} predicted "
          f"({v['cycles_error_pct']:+.2f} %); wrote {args.out}")
    return 0


def cmd_ohq(args) -> int:
    output_file("--out", args.out)
    output_dir("--report-dir", args.report_dir)
    from sim.bench.ohq import benchmark

    with progress_to_stderr():
        report = benchmark(out=args.out, report_dir=args.report_dir)
    print(f"wrote {args.out}: cycles_ratio_vs_int8 {report['cycles_ratio_vs_int8']:.3f}, acc_int8 "
          f"{report['acc_int8']:.4f}, acc_ohq {report['acc_ohq']:.4f}, ilp_seconds {report['ilp_seconds']:.4f}")
    return 0


def register(commands) -> None:
    parser = commands.add_parser("bench", help=f"run a benchmark: {', '.join(NAMES)} -> build/bench/NAME.json")
    benches = parser.add_subparsers(dest="name", required=True, metavar="NAME")

    p = benches.add_parser("batchtile", help="one BatchTile search step (MobileNetV2 x 64 hardware candidates) "
                                             "against the same search as a Python loop (~5 s)")
    p.add_argument("--out", default="build/bench/batchtile.json")
    add_device(p)
    p.add_argument("--iterations", type=int, default=30, action=Checked, check=positive,
                   help="timed search iterations (the median is kept)")
    add_threads(p, 2, help="torch CPU threads (default 2)")
    p.add_argument("--weights", choices=("8", "mixed"), default="8",
                   help="8-bit weights, or per-channel bits drawn from {2, 4, 8}")
    p.add_argument("--hw-limit", type=int, default=None, action=Checked, check=positive,
                   help="only the first N hardware candidates (smoke runs)")
    p.add_argument("--layer-limit", type=int, default=None, action=Checked, check=positive,
                   help="only the first N GEMMs (smoke runs)")
    p.set_defaults(handler=cmd_batchtile, prog=p.prog)

    p = benches.add_parser("depthwise", help="MobileNetV2-224's cycles, depthwise share, utilization and DRAM bytes "
                                             "on five accelerators, from the cost model (seconds)")
    p.add_argument("--out", default="build/bench/depthwise.json")
    p.set_defaults(handler=cmd_depthwise, prog=p.prog)

    p = benches.add_parser("quant", help="CSQ memory, digits QAT accuracy at each bit setting, training time "
                                         "(~4 min; --device cuda: ImageNet-size memory only)")
    p.add_argument("--out", default="build/bench/quant.json")
    add_device(p)
    epochs = {"type": int, "action": Checked, "check": non_negative}
    p.add_argument("--fp-epochs", default=20, **epochs)
    p.add_argument("--qat-epochs", default=8, **epochs)
    p.add_argument("--search-epochs", default=3, **epochs)
    p.set_defaults(handler=cmd_quant, prog=p.prog)

    p = benches.add_parser("rtl", help="Verilog generation, Verilator throughput, the whole accelerator's "
                                       "utilization, synthesis time and area")
    p.add_argument("--out", type=Path, required=True, help="JSON report to write")
    p.add_argument("--build-dir", type=Path, default=Path("build/bench"),
                   help="simulation builds go to <dir>/sim, synthesis runs to <dir>/synth/<name>")
    p.add_argument("--skip-synth", action="store_true", help="leave out the synthesis runs (minutes)")
    p.add_argument("--fmax", action="store_true",
                   help="also place and route every synthesis run for Fmax (about an hour on 2 cores)")
    p.set_defaults(handler=cmd_rtl, prog=p.prog)

    p = benches.add_parser("search", help="`make search` from scratch and its network on the RTL, against the "
                                          "targets (~5-8 min)")
    p.add_argument("--out", default="build/bench/search.json")
    p.add_argument("--dir", default="build/bench/search", help="where the benchmark's search runs")
    add_device(p)
    p.set_defaults(handler=cmd_search, prog=p.prog)

    p = benches.add_parser("ohq", help="OHQ on the digits network: RTL-measured cycles against accuracy, the ILP's "
                                       "solve time (a few minutes)")
    p.add_argument("--out", default="build/bench/ohq.json")
    p.add_argument("--report-dir", default="build/ohq", help="the headline run's outputs")
    p.set_defaults(handler=cmd_ohq, prog=p.prog)

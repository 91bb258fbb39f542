"""`codesign calibrate`: fit the cost model's constants to cycle counts measured on the RTL (`make calibrate`).

It was `python -m sim.measure.calibrate` with its own argparse; the flags now sit here beside the handler and
`sim.measure.calibrate.calibrate` is a plain function. The handler imports it (torch, cocotb) inside the function, so
`codesign --help` does not pay for them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from codesign.cli.options import output_file, progress_to_stderr


def cmd_calibrate(args) -> int:
    output_file("--out", args.out)
    output_file("--report", args.report)
    from sim.measure.calibrate import CONFIGS, calibrate

    with progress_to_stderr():
        result = calibrate(out=args.out, report=args.report, refit=args.refit)
    wrong = result["not_bit_exact"]
    if wrong:
        print(f"codesign calibrate: {len(wrong)} programs were not bit-exact, first: {wrong[0]}", file=sys.stderr)
        return 1
    fit, report = result["fit"], result["report"]
    print(f"fit on {report['fit_cases']} cases: {fit['fit']['mape_pct']} % MAPE; held out {report['cases']} cases over "
          f"{len(CONFIGS)} configurations: MAPE {report['mape_pct']} %, max {report['max_abs_pct_error']} % "
          f"(uncalibrated {report['uncalibrated']['mape_pct']} %)")
    dram = report["dram_bytes"]
    if dram["cases"]:
        print(f"DRAM bytes on {dram['cases']} cases: MAPE {dram['mape_pct']} %, max {dram['max_abs_pct_error']} %")
    print(f"wrote {args.out}, {args.report} and {args.report.with_suffix('.png')}")
    return 0


def register(commands) -> None:
    p = commands.add_parser("calibrate", help="fit the cost model to RTL cycle counts of a sweep of compiled GEMM "
                                              "programs -> build/calibration.json, build/bench/costmodel.{json,png}")
    p.add_argument("--out", type=Path, default=Path("build/calibration.json"), metavar="FIT.json",
                   help="the fitted constants, which the cost model loads (default build/calibration.json)")
    p.add_argument("--report", type=Path, default=Path("build/bench/costmodel.json"), metavar="REPORT.json",
                   help="the held-out cases' errors, and a plot beside it (default build/bench/costmodel.json)")
    p.add_argument("--refit", action="store_true",
                   help="fit the measurements of the last run (build/calibration_cases.json) again, without simulating")
    p.set_defaults(handler=cmd_calibrate, prog=p.prog)

"""`codesign sim gemm | sim layer` and `codesign verify`: cases and whole networks run on the RTL in simulation.

Each command's flags sit beside its handler; `--latency`, `--simulator` and `--config` are the shared ones of
`codesign.cli.options`. The handlers import `sim` (cocotb, and torch through the compiler) inside the function, so
`codesign --help` does not pay for them, and only after the output location and the input files are checked.

Stdout holds the result: a JSON line (`sim`) or the layer table (`verify`); with ``--json -`` (``verify --out -``)
the whole JSON result goes to stdout instead and the summary to stderr.
"""

from __future__ import annotations

import json
import sys
from functools import partial

from codesign.cli.options import (
    STDOUT,
    Checked,
    add_config,
    add_latency,
    add_seed,
    add_simulator,
    int_range,
    load_config,
    output_file,
    positive,
    write_json,
)
from codesign.errors import InputError
from codesign.hw.config import HardwareConfig


def cmd_sim_gemm(args) -> int:
    if args.json:
        output_file("--json", args.json, stdout=True)
    cfg = load_config(args)
    from sim.runs.gemm import parse_bits, run_gemm, run_gemm_system

    bits = parse_bits(args.bits, args.n, cfg)
    if args.system:
        result = run_gemm_system(cfg, args.m, args.k, args.n, bits, seed=args.seed, simulator=args.simulator,
                                 latency=args.latency, backpressure=0.3 if args.stall else 0.0)
        shown = ("bit_exact", "cycles", "compute_cycles", "stall_cycles", "bytes_read", "bytes_written")
    else:
        result = run_gemm(cfg, args.m, args.k, args.n, bits, seed=args.seed, simulator=args.simulator,
                          stall=args.stall)
        shown = ("bit_exact", "cycles", "formula_cycles", "tiles")
    _report(args.json, result, shown)
    return 0 if result["bit_exact"] else 1


def cmd_sim_layer(args) -> int:
    if args.json:
        output_file("--json", args.json, stdout=True)
    from codesign.ir.layers import check_layer_bits, load_layers

    cfg, layers = load_config(args), load_layers(args.layer)
    if len(layers) != 1:
        raise InputError("--layer", f"{len(layers)} layers", "a file with exactly one layer")
    check_layer_bits(cfg, layers[0])
    from sim.runs.layer import run_layer

    result = run_layer(cfg, layers[0], seed=args.seed, latency=args.latency, simulator=args.simulator)
    _report(args.json, result, ("bit_exact", "cycles_measured", "cycles_predicted", "mapping"))
    return 0 if result["bit_exact"] else 1


def _report(json_path: str | None, result: dict, shown: tuple[str, ...]) -> None:
    """The ``shown`` keys as one JSON line on stdout, and the whole result to ``--json``; with ``--json -`` the
    whole result is stdout's and the line goes to stderr."""
    if json_path:
        write_json(json_path, result)
    print(json.dumps({k: result[k] for k in shown}), file=sys.stderr if json_path == STDOUT else sys.stdout)


def cmd_verify(args) -> int:
    output_file("--out", args.out, stdout=True)
    from codesign.quant.datasets import load_digits
    from codesign.quant.export import IntegerModel

    if args.design:
        # The searched design: its integer model and hardware, one batch of the size it was priced for.
        from codesign.files import json_key
        from codesign.jaq.design import design_file, load_design

        if args.model or args.config:
            raise InputError("--design", args.design, "either --design or --model with --config, not both")
        design = load_design(args.design)
        model = IntegerModel.load(design_file(args.design, design, "integer_model"))
        cfg = HardwareConfig.from_dict(design["hardware"])
        if args.images is None:
            args.images = json_key(design, "batch", f"{args.design} ", "a positive number of images",
                                   lambda value: type(value) is int and value >= 1)
    elif args.model and args.config:
        model, cfg = IntegerModel.load(args.model), HardwareConfig.load(args.config)
    else:
        raise InputError("--model/--config", f"{args.model}/{args.config}", "both files, or --design DESIGN.json")
    if args.images is None:
        args.images = 32
    from codesign.ir.layers import check_layer_bits, from_integer_model

    for layer in from_integer_model(model):
        check_layer_bits(cfg, layer)
    test = load_digits(seed=args.seed).test          # the only --data choice
    if not 1 <= args.images <= len(test):
        raise InputError("--images", args.images, f"an integer from 1 to {len(test)} (the {args.data} test set)")
    from sim.runs.network import verify_images

    result = verify_images(cfg, model, test.images[:args.images], test.labels[:args.images].numpy(),
                           latency=args.latency)
    report = {**result, **{key: result[key].tolist() for key in ("logits", "predictions", "expected_predictions")},
              "model": str(args.model), "data": args.data, "seed": args.seed}
    write_json(args.out, report)
    # The table goes aside when stdout carries the JSON.
    show = partial(print, file=sys.stderr if args.out == STDOUT else sys.stdout)
    show(f"{'layer':24} {'kind':7} {'bit-exact':>9} {'GEMMs':>5} {'measured':>10} {'predicted':>10} {'error':>7}")
    for r in report["layers"]:
        error = "" if r["cycles_error"] is None else f"{r['cycles_error']:+6.1f}%"
        show(f"{r['name'][:24]:24} {r['kind']:7} {str(r['bit_exact']):>9} {r['gemms']:5d} {r['cycles_measured']:10d} "
             f"{r['cycles_predicted']:10.0f} {error:>7}")
    state = "calibrated" if report["calibrated"] else "UNCALIBRATED (make calibrate)"
    show(f"total: {report['cycles_measured']} cycles measured, {report['cycles_predicted']:.0f} predicted "
         f"({report['cycles_error']:+.1f} %, cost model {state}); {report['images']} images, accuracy RTL "
         f"{report['acc_rtl']:.3f}, integer model {report['acc_int_model']:.3f}; wrote {args.out}")
    if not report["bit_exact"]:
        print(f"codesign verify: the RTL differs from the integer model, first in layer {report['first_mismatch']}",
              file=sys.stderr)
        return 1
    return 0


def register(commands) -> None:
    sim = commands.add_parser("sim", help="run cases on the RTL in simulation")
    sim = sim.add_subparsers(dest="what", required=True)
    p = sim.add_parser("gemm", help="one random GEMM of the given shape, bit-exact check and cycle counts")
    add_config(p)
    # --k's upper bound is the configuration's max_k, checked with it (`sim.runs.gemm.random_gemm`).
    p.add_argument("--m", type=int, required=True, action=Checked, check=int_range(1, 1 << 16))
    p.add_argument("--k", type=int, required=True, action=Checked, check=positive)
    p.add_argument("--n", type=int, required=True, action=Checked, check=int_range(1, 1 << 16))
    p.add_argument("--bits", required=True, help="weight bits: one value, or one per output channel (B1,B2,...)")
    add_seed(p, 0)
    add_simulator(p)
    p.add_argument("--stall", action="store_true",
                   help="random backpressure on every stream (with --system: on every AXI channel)")
    p.add_argument("--system", action="store_true",
                   help="run it as a program on the whole accelerator (AXI DRAM model, host driver, counters)")
    add_latency(p, 0, when="with --system: ")
    p.add_argument("--json", metavar="OUT", help="write the result as JSON (-: to standard output)")
    p.set_defaults(handler=cmd_sim_gemm, prog=p.prog)

    p = sim.add_parser("layer", help="one layer compiled with its best mapping and run on the whole accelerator")
    add_config(p)
    p.add_argument("--layer", required=True, metavar="LAYER.json", help="a layers file holding one layer")
    add_seed(p, 0)
    add_latency(p, 20)
    add_simulator(p)
    p.add_argument("--json", metavar="OUT", help="write the result as JSON (-: to standard output)")
    p.set_defaults(handler=cmd_sim_layer, prog=p.prog)

    p = commands.add_parser("verify", help="a whole integer network on the RTL, layer by layer: bit-exact against "
                                           "the integer model, cycles measured vs predicted")
    p.add_argument("--design", metavar="DESIGN.json", help="a design.json of `codesign search`: its integer model, "
                                                         "hardware and batch")
    p.add_argument("--model", metavar="INTEGER_MODEL.json", help="written by IntegerModel.save")
    add_config(p, help="the accelerator's HardwareConfig")
    p.add_argument("--data", choices=("digits",), default="digits", help="the data set whose test images run")
    p.add_argument("--images", type=int, action=Checked, check=positive,
                   help="the first IMAGES test images, one batch (default: the design's batch, else 32)")
    add_latency(p, 20)
    add_seed(p, 0, help="the data set's split seed, an integer >= 0 (default 0)")
    p.add_argument("--out", default="build/verify/verify.json", metavar="OUT.json",
                   help="the JSON report (-: to standard output, the table to standard error)")
    p.set_defaults(handler=cmd_verify, prog=p.prog)

"""`codesign`: the one command-line entry point.

This module is the application shell on top of the three packages. It is the only part of `codesign` that reaches
into `rtl_gen` and `sim`, and only inside the command handlers, so the library modules keep their one-way
dependency (`codesign` <- `rtl_gen` <- `sim`). Bad input raises `InputError`, which becomes one line on stderr and
exit code 2; outputs are written atomically.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from codesign.errors import InputError
from codesign.files import atomic_write_json, atomic_write_text
from codesign.hw.config import HardwareConfig


def _config(args) -> HardwareConfig:
    return HardwareConfig.load(args.config) if args.config else HardwareConfig()


def cmd_config(args) -> int:
    text = _config(args).to_json()
    if args.out:
        atomic_write_text(args.out, text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_rtl(args) -> int:
    from rtl_gen.emit import write_rtl

    if args.design and args.config:
        raise InputError("--design", args.design, "either --design or --config, not both")
    if args.design:
        from codesign.jaq.design import load_design

        cfg = HardwareConfig.from_dict(load_design(args.design)["hardware"])
    else:
        cfg = _config(args)
    manifest = write_rtl(cfg, args.out)
    print(f"wrote {Path(args.out) / manifest['verilog']} ({manifest['sha256'][:12]}) and manifest.json")
    return 0


def cmd_synth(args) -> int:
    from rtl_gen import synth

    if not 1 <= args.seeds <= 16:
        raise InputError("--seeds", args.seeds, "an integer from 1 to 16")
    seeds = tuple(range(1, args.seeds + 1))
    if args.pe_table:
        synth.write_pe_table(args.pe_table, seeds=seeds)
        print(f"wrote {args.pe_table}")
        return 0
    if args.sweep:
        # The sweep's configurations and device are fixed so that its figures compare across runs.
        if args.config:
            raise InputError("--config", args.config, "no --config with --sweep (it runs synth.SWEEP_CONFIGS)")
        if args.family != "ecp5":
            raise InputError("--family", args.family, "ecp5 with --sweep")
        synth.synthesize_sweep(Path(args.out), seeds=seeds, fmax=args.fmax,
                               progress=lambda name, report: print(synth.summary_line(name, report), flush=True))
        print(f"wrote {Path(args.out) / 'sweep.json'}")
        return 0
    report = synth.synthesize_accelerator(_config(args), Path(args.out), family=args.family, seeds=seeds)
    print(synth.summary_line("accelerator", report))
    return 0


def cmd_sim_gemm(args) -> int:
    from sim.runs.gemm import parse_bits, run_gemm

    cfg = _config(args)
    bits = parse_bits(args.bits, args.n, cfg)
    if args.system:
        from sim.runs.gemm import run_gemm_system

        if not 0 <= args.latency <= 10_000:
            raise InputError("--latency", args.latency, "an integer from 0 to 10000 cycles")
        result = run_gemm_system(cfg, args.m, args.k, args.n, bits, seed=args.seed, simulator=args.simulator,
                                 latency=args.latency, backpressure=0.3 if args.stall else 0.0)
        shown = ("bit_exact", "cycles", "compute_cycles", "stall_cycles", "bytes_read", "bytes_written")
    else:
        result = run_gemm(cfg, args.m, args.k, args.n, bits, seed=args.seed, simulator=args.simulator,
                          stall=args.stall)
        shown = ("bit_exact", "cycles", "formula_cycles", "tiles")
    if args.json:
        atomic_write_json(args.json, result)
    print(json.dumps({k: result[k] for k in shown}))
    return 0 if result["bit_exact"] else 1


def cmd_map(args) -> int:
    from codesign.compiler.mapper import map_layers
    from codesign.ir.layers import load_layers

    if args.latency < 0:
        raise InputError("--latency", args.latency, "a number of cycles >= 0")
    result = map_layers(_config(args), load_layers(args.layers), latency=args.latency)
    if args.json:
        atomic_write_json(args.json, result)
    state = "calibrated" if result["calibrated"] else "UNCALIBRATED (make calibrate)"
    print(f"{'layer':28} {'M':>7} {'K':>6} {'N':>5} {'x':>4}  {'mapping':34} {'cycles':>12} {'DRAM bytes':>12}")
    for r in result["layers"]:
        mp = r["mapping"]
        text = f"bm={mp['bm']} bn={mp['bn']} {mp['order']}" + (f" kc={mp['kc']}" if mp["kc"] else "")
        print(f"{r['name'][:28]:28} {r['m']:7d} {r['k']:6d} {r['n']:5d} {r['count']:4d}  {text:34} "
              f"{r['cycles']:12.0f} {r['dram_bytes']:12.0f}")
    print(f"total: {result['total_cycles']:.0f} cycles, {result['total_dram_bytes']:.0f} DRAM bytes, "
          f"{result['total_energy_pj'] / 1e6:.3f} uJ; host layers: {len(result['host_layers'])}; model {state}")
    return 0


def cmd_sim_layer(args) -> int:
    from codesign.ir.layers import load_layers
    from sim.runs.layer import run_layer

    layers = load_layers(args.layer)
    if len(layers) != 1:
        raise InputError("--layer", f"{len(layers)} layers", "a file with exactly one layer")
    result = run_layer(_config(args), layers[0], seed=args.seed, latency=args.latency, simulator=args.simulator)
    if args.json:
        atomic_write_json(args.json, result)
    print(json.dumps({k: result[k] for k in ("bit_exact", "cycles_measured", "cycles_predicted", "mapping")}))
    return 0 if result["bit_exact"] else 1


def cmd_search(args) -> int:
    from codesign.jaq.hwspace import HardwareSpace
    from codesign.jaq.search import BudgetError, SearchSettings, run_search

    space = HardwareSpace()
    if args.space:
        path = Path(args.space)
        if not path.is_file():
            raise InputError("--space", str(path), "an existing JSON file of hardware-space lists")
        try:
            space = HardwareSpace.from_dict(json.loads(path.read_text()))
        except json.JSONDecodeError as exc:
            raise InputError("--space", str(path), f"valid JSON ({exc})") from None
    overrides = {name: getattr(args, name)
                 for name in ("seed", "warmup_epochs", "search_epochs", "retrain_fp_epochs", "retrain_qat_epochs",
                              "max_luts", "max_cycles", "device", "batch", "latency_weight", "area_weight",
                              "energy_weight")
                 if getattr(args, name) is not None}
    if args.act_bits:
        overrides["act_bits"] = tuple(_ints("--act-bits", args.act_bits))
    settings = SearchSettings(space=space, baselines=not args.no_baselines, **overrides)
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    try:
        design = run_search(settings, args.out, restart=args.restart, progress=not args.quiet)
    except BudgetError as exc:
        atomic_write_json(Path(args.out) / "closest.json", exc.closest)
        print(f"codesign search: {exc}; the closest design is in {Path(args.out) / 'closest.json'} (no design.json "
              "written)", file=sys.stderr)
        return 3
    t = design["targets"]
    print(f"chosen: {design['hardware_name']}, mean weight bits {design['mean_weight_bits']:.2f}, test accuracy "
          f"{design['acc']:.4f} (uniform 8-bit {design['acc_int8']:.4f}), {design['cycles']:.0f} cycles "
          f"(uniform 8-bit {design['cycles_int8']:.0f}: ratio {design['cycles_ratio_vs_int8']:.3f}, target "
          f"<= {t['cycles_ratio_vs_int8']['at_most']}: {'met' if t['cycles_ratio_vs_int8']['met'] else 'NOT met'}; "
          f"accuracy loss {'met' if t['acc_loss_vs_int8']['met'] else 'NOT met'})")
    print(f"wrote {Path(args.out) / 'design.json'}, report.md, model.pt, integer_model.json, hardware.json "
          f"({design['seconds']:.0f} s)")
    return 0


def cmd_verify(args) -> int:
    from codesign.quant.datasets import load_digits
    from codesign.quant.export import IntegerModel
    from sim.runs.network import verify_images

    if not 0 <= args.latency <= 10_000:
        raise InputError("--latency", args.latency, "an integer from 0 to 10000 cycles")
    if args.design:
        # The searched design: its integer model and hardware, one batch of the size it was priced for.
        from codesign.jaq.design import load_design

        if args.model or args.config:
            raise InputError("--design", args.design, "either --design or --model with --config, not both")
        design = load_design(args.design)
        model = IntegerModel.load(Path(args.design).parent / design["files"]["integer_model"])
        cfg = HardwareConfig.from_dict(design["hardware"])
        args.images = args.images or design["batch"]
    elif args.model and args.config:
        model, cfg = IntegerModel.load(args.model), HardwareConfig.load(args.config)
    else:
        raise InputError("--model/--config", f"{args.model}/{args.config}", "both files, or --design DESIGN.json")
    args.images = args.images or 32
    test = load_digits(seed=args.seed).test          # the only --data choice
    if not 1 <= args.images <= len(test):
        raise InputError("--images", args.images, f"an integer from 1 to {len(test)} (the {args.data} test set)")
    result = verify_images(cfg, model, test.images[:args.images], test.labels[:args.images].numpy(),
                           latency=args.latency)
    report = {**result, **{key: result[key].tolist() for key in ("logits", "predictions", "expected_predictions")},
              "model": str(args.model), "data": args.data, "seed": args.seed}
    atomic_write_json(args.out, report)
    print(f"{'layer':24} {'kind':7} {'bit-exact':>9} {'GEMMs':>5} {'measured':>10} {'predicted':>10} {'error':>7}")
    for r in report["layers"]:
        error = "" if r["cycles_error"] is None else f"{r['cycles_error']:+6.1f}%"
        print(f"{r['name'][:24]:24} {r['kind']:7} {str(r['bit_exact']):>9} {r['gemms']:5d} {r['cycles_measured']:10d} "
              f"{r['cycles_predicted']:10.0f} {error:>7}")
    state = "calibrated" if report["calibrated"] else "UNCALIBRATED (make calibrate)"
    print(f"total: {report['cycles_measured']} cycles measured, {report['cycles_predicted']:.0f} predicted "
          f"({report['cycles_error']:+.1f} %, cost model {state}); {report['images']} images, accuracy RTL "
          f"{report['acc_rtl']:.3f}, integer model {report['acc_int_model']:.3f}; wrote {args.out}")
    if not report["bit_exact"]:
        print(f"codesign verify: the RTL differs from the integer model, first in layer {report['first_mismatch']}",
              file=sys.stderr)
        return 1
    return 0


def cmd_ohq(args) -> int:
    import torch

    from codesign.ohq.cost_table import BatchTilePricer
    from codesign.ohq.flow import OhqOptions, run_ohq
    from codesign.ohq.model import load_model
    from codesign.ohq.report import PROGRAMS, programs_note, write_outputs

    cfg = _config(args)
    options = OhqOptions(latency_budget=args.latency_budget, size_budget=args.size_budget,
                         choices=_ints("--bits", args.bits), group_size=args.group_size, batch=args.batch,
                         qat_epochs=args.qat_epochs, qat_lr=args.qat_lr,
                         budgets=tuple(_floats("--budgets", args.budgets)))
    options.validate(cfg)
    if args.latency < 0:
        raise InputError("--latency", args.latency, "a number of cycles >= 0")
    if args.calibration_images < 1:
        raise InputError("--calibration-images", args.calibration_images, "a positive number of images")
    data = _ohq_data(args)
    input_shape = tuple(_ints("--input-shape", args.input_shape)) if args.input_shape else None
    if input_shape is not None and len(input_shape) != 3:
        raise InputError("--input-shape", args.input_shape, "C,H,W")
    model = load_model(args.model, cfg, trust_pickle=args.trust_pickle,
                       input_shape=input_shape or (data.image_shape if data is not None else None),
                       qat_cache=Path(args.cache_dir) / "ohq_qat")
    if data is not None and tuple(data.image_shape) != tuple(model.input_shape):
        raise InputError("--data", f"{args.data} images {tuple(data.image_shape)}",
                         f"images of the model's input shape {tuple(model.input_shape)}")
    if data is None or args.synthetic:
        calibration = torch.rand((args.calibration_images, *model.input_shape),
                                 generator=torch.Generator().manual_seed(0))
    else:
        calibration = data.train.images[:args.calibration_images]
    if args.fast:
        pricer = BatchTilePricer(cfg, latency=args.latency)
        print(f"costs: --fast: {pricer.description}, not measured on the RTL")
    else:
        from sim.measure.layer_costs import RtlPricer

        pricer = RtlPricer(cfg, latency=int(args.latency), simulator=args.simulator,
                           cache_dir=Path(args.cache_dir) / "layer_costs")
    result = run_ohq(model, cfg, pricer, options, calibration=calibration, data=data)
    if not args.fast:
        print(f"RTL: {pricer.simulated} layer measurements simulated, {pricer.cached} read from {pricer.cache_dir}")
    files = write_outputs(result, model, cfg, Path(args.out), model_path=args.model)
    s = result.summary
    accuracy = "n/a" if s["accuracy"] is None else f"{100 * s['accuracy']:.2f} %"
    reference = result.uniform[f"w{max(options.choices)}"]["accuracy"]
    print(f"OHQ at budget {options.latency_budget}: {s['cycles']:.0f} cycles ({s['costs']}) = "
          f"{s['cycles_ratio_vs_int8']:.3f} x uniform {max(options.choices)}-bit ({s['cycles_int8']:.0f}); "
          f"accuracy {accuracy}" + ("" if reference is None else
                                     f" (uniform {max(options.choices)}-bit: {100 * reference:.2f} %)"))
    print(f"wrote {', '.join(sorted(files.values()))}")
    if model.kind == "quantnet":
        import numpy as np

        from codesign.compiler.network import compile_network, write_programs
        from codesign.quant.export import IntegerModel
        from codesign.quant.quantizers import input_integers

        images = (data.test.images if data is not None and not args.synthetic else calibration)[:options.batch]
        compiled = compile_network(cfg, IntegerModel.load(files["integer_model"]),
                                   input_integers(images).numpy().astype(np.int64), latency=args.latency)
        write_programs(Path(args.out) / Path(PROGRAMS).parent, compiled)
    print(programs_note(model.kind, options.batch))
    return 0


def _ohq_data(args):
    from codesign.quant.datasets import load_cifar10, load_digits, load_image_folder

    if args.data in ("cifar10", "folder") and not args.data_path:
        raise InputError("--data-path", None, f"the directory of the {args.data} data set")
    if args.data == "digits":
        return load_digits()
    if args.data == "cifar10":
        return load_cifar10(args.data_path)
    if args.data == "folder":
        return load_image_folder(args.data_path)
    return None


def _ints(flag: str, text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise InputError(flag, text, "comma-separated integers") from None


def _floats(flag: str, text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise InputError(flag, text, "comma-separated numbers") from None


def cmd_disasm(args) -> int:
    from codesign.hw.isa import disassemble

    path = Path(args.program)
    if not path.is_file():
        raise InputError("PROGRAM", str(path), "an existing binary program file (16-byte commands)")
    sys.stdout.write(disassemble(path.read_bytes()))
    return 0


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="HW.json", help="HardwareConfig JSON (default: the built-in default)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="codesign", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("config", help="print or write a HardwareConfig (validated) as JSON")
    _add_config(p)
    p.add_argument("--out", metavar="HW.json")
    p.set_defaults(handler=cmd_config)

    p = commands.add_parser("rtl", help="write the accelerator's Verilog and manifest.json")
    _add_config(p)
    p.add_argument("--design", metavar="DESIGN.json", help="the hardware of a design.json of `codesign search`")
    p.add_argument("--out", required=True, metavar="DIR")
    p.set_defaults(handler=cmd_rtl)

    p = commands.add_parser("synth", help="Yosys + nextpnr area (by category) and Fmax of the accelerator, a sweep "
                                          "of configurations, or the PE area table")
    _add_config(p)
    p.add_argument("--out", default="build/synth", metavar="DIR",
                   help="DIR/report.json; with --sweep DIR/<name>/report.json and DIR/sweep.json")
    p.add_argument("--family", choices=("ice40", "ecp5"), default="ecp5",
                   help="FPGA family to try first; a design that does not fit the iCE40 moves on to the ECP5 "
                        "(the accelerator's ports alone outnumber the iCE40's pins)")
    p.add_argument("--seeds", type=int, default=3, help="nextpnr seeds; Fmax is their median (default 3)")
    p.add_argument("--sweep", action="store_true",
                   help="synthesize the configurations of rtl_gen.synth.SWEEP_CONFIGS (area only unless --fmax)")
    p.add_argument("--fmax", action="store_true",
                   help="with --sweep: also place and route each configuration (~10 minutes per 8x8 on 2 cores); "
                        "a single configuration always gets its Fmax")
    p.add_argument("--pe-table", metavar="PATH", help="sweep the PE over g and weight_bits_max into PATH instead")
    p.set_defaults(handler=cmd_synth)

    sim = commands.add_parser("sim", help="run cases on the RTL in simulation").add_subparsers(dest="what", required=True)
    p = sim.add_parser("gemm", help="one random GEMM of the given shape, bit-exact check and cycle counts")
    _add_config(p)
    p.add_argument("--m", type=int, required=True)
    p.add_argument("--k", type=int, required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--bits", required=True, help="weight bits: one value, or one per output channel (B1,B2,...)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--simulator", choices=("verilator", "icarus"), default="verilator")
    p.add_argument("--stall", action="store_true",
                   help="random backpressure on every stream (with --system: on every AXI channel)")
    p.add_argument("--system", action="store_true",
                   help="run it as a program on the whole accelerator (AXI DRAM model, host driver, counters)")
    p.add_argument("--latency", type=int, default=0, help="with --system: memory latency in cycles (default 0)")
    p.add_argument("--json", metavar="OUT", help="write the result as JSON")
    p.set_defaults(handler=cmd_sim_gemm)

    p = sim.add_parser("layer", help="one layer compiled with its best mapping and run on the whole accelerator")
    _add_config(p)
    p.add_argument("--layer", required=True, metavar="LAYER.json", help="a layers file holding one layer")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--latency", type=int, default=20, help="memory latency in cycles (default 20)")
    p.add_argument("--simulator", choices=("verilator", "icarus"), default="verilator")
    p.add_argument("--json", metavar="OUT")
    p.set_defaults(handler=cmd_sim_layer)

    p = commands.add_parser("map", help="the best mapping of every layer (BatchTile) with predicted cycles / bytes")
    _add_config(p)
    p.add_argument("--layers", required=True, metavar="LAYERS.json")
    p.add_argument("--latency", type=float, default=20.0, help="memory latency in cycles (default 20)")
    p.add_argument("--json", metavar="OUT")
    p.set_defaults(handler=cmd_map)

    p = commands.add_parser("search", help="JAQ co-search of network, bits and accelerator on digits -> "
                                           "design.json, model, report (resumes an interrupted run)")
    p.add_argument("--out", default="build/search", metavar="DIR")
    p.add_argument("--seed", type=int)
    p.add_argument("--warmup-epochs", type=int, help="float supernet epochs before the search (default 40)")
    p.add_argument("--search-epochs", type=int, help="search epochs (default 12)")
    p.add_argument("--retrain-fp-epochs", type=int, help="float fine-tune epochs of each final network")
    p.add_argument("--retrain-qat-epochs", type=int, help="QAT epochs of each final network")
    p.add_argument("--max-luts", type=float, help="hard budget: PE-array LUTs (the PE table's estimate)")
    p.add_argument("--max-cycles", type=float, help="hard budget: predicted cycles per batch")
    p.add_argument("--batch", type=int, help="images per accelerator run; cycles are per batch (default 32)")
    p.add_argument("--act-bits", metavar="B1,B2", help="activation widths to search (default 8: the accelerator "
                                                       "computes every activation at its act_bits)")
    p.add_argument("--latency-weight", type=float)
    p.add_argument("--energy-weight", type=float)
    p.add_argument("--area-weight", type=float)
    p.add_argument("--space", metavar="SPACE.json", help="hardware space: lists per field (codesign.jaq.hwspace)")
    p.add_argument("--device", choices=("cpu", "cuda"))
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-baselines", action="store_true", help="skip the fixed-hardware and random searches")
    p.add_argument("--restart", action="store_true", help="discard the checkpoint and start over")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=cmd_search)

    p = commands.add_parser("verify", help="a whole integer network on the RTL, layer by layer: bit-exact against "
                                           "the integer model, cycles measured vs predicted")
    p.add_argument("--design", metavar="DESIGN.json", help="a design.json of `codesign search`: its integer model, "
                                                         "hardware and batch")
    p.add_argument("--model", metavar="INTEGER_MODEL.json", help="written by IntegerModel.save")
    p.add_argument("--config", metavar="HW.json", help="the accelerator's HardwareConfig")
    p.add_argument("--data", choices=("digits",), default="digits", help="the data set whose test images run")
    p.add_argument("--images", type=int, help="the first IMAGES test images, one batch (default: the design's "
                                               "batch, else 32)")
    p.add_argument("--latency", type=int, default=20, help="memory latency in cycles (default 20)")
    p.add_argument("--seed", type=int, default=0, help="the data set's split seed (default 0)")
    p.add_argument("--out", default="build/verify/verify.json", metavar="OUT.json")
    p.set_defaults(handler=cmd_verify)
    p = commands.add_parser("ohq", help="hardware-measured mixed-precision weights for a trained model (OHQ)")
    p.add_argument("--model", required=True, metavar="MODEL.pt",
                   help="a QuantNet checkpoint (QuantNet.save), or a whole pickled nn.Module with --trust-pickle")
    p.add_argument("--config", "--hw", dest="config", metavar="HW.json",
                   help="HardwareConfig JSON (default: the built-in default)")
    p.add_argument("--latency-budget", type=float, default=0.7,
                   help="total cycles at most this fraction of the uniform 8-bit cycles (default 0.7)")
    p.add_argument("--size-budget", type=float, help="weight bytes at most this fraction of the 8-bit size")
    p.add_argument("--fast", action="store_true", help="BatchTile's predicted costs instead of RTL measurements")
    p.add_argument("--group-size", type=int, metavar="G",
                   help="allocate per group of G output channels (a multiple of the array's cols), not per layer")
    p.add_argument("--bits", default="2,3,4,5,6,8", help="candidate weight widths (default 2,3,4,5,6,8)")
    p.add_argument("--batch", type=int, default=8,
                   help="images per accelerator run (default 8; with 1 the per-program costs dominate)")
    p.add_argument("--latency", type=int, default=20, help="memory latency in cycles (default 20)")
    p.add_argument("--qat-epochs", type=int, default=2, help="QAT epochs per quantized QuantNet (default 2; 0: none)")
    p.add_argument("--qat-lr", type=float, default=1e-4, help="QAT learning rate (default 1e-4)")
    p.add_argument("--data", choices=("digits", "cifar10", "folder", "none"), default="digits",
                   help="data for calibration, QAT and accuracy (default digits; none: synthetic, no accuracy)")
    p.add_argument("--data-path", metavar="DIR", help="the data set's directory (cifar10, folder)")
    p.add_argument("--input-shape", metavar="C,H,W", help="a user module's input shape (default: the data's)")
    p.add_argument("--calibration-images", type=int, default=64, help="images for MQE (default 64)")
    p.add_argument("--synthetic", action="store_true", help="uniform random calibration images even with data")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow a pickled nn.Module: loading it runs code from the file (trusted files only)")
    p.add_argument("--budgets", default="0.4,0.5,0.6,0.7,0.8,0.9,1.0", help="the report's curve of budgets")
    p.add_argument("--simulator", choices=("verilator", "icarus"), default="verilator")
    p.add_argument("--cache-dir", default="build/cache", metavar="DIR",
                   help="caches: DIR/layer_costs (RTL measurements), DIR/ohq_qat (QAT results); default build/cache")
    p.add_argument("--out", default="build/ohq", metavar="DIR")
    p.set_defaults(handler=cmd_ohq)

    p = commands.add_parser("disasm", help="print an accelerator program (binary, 16-byte commands) readably")
    p.add_argument("program", metavar="PROGRAM")
    p.set_defaults(handler=cmd_disasm)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except InputError as exc:
        print(f"codesign {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

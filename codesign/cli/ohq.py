"""`codesign ohq`: hardware-measured mixed-precision weights for a trained model (OHQ mode).

Its flags sit beside the handler; `--config`, `--latency` and `--simulator` are the shared ones of
`codesign.cli.options`. Without `--model` it runs on the default digits network (`codesign.quant.digits`, trained
once into build/models/), which used to need its own `python -m` step. The handler imports torch and the RTL pricer
inside the function, so `codesign --help` does not pay for them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from codesign.cli.options import (
    Checked,
    add_config,
    add_latency,
    add_simulator,
    floats,
    fraction,
    int_range,
    ints,
    load_config,
    non_negative,
    output_dir,
    positive,
    positive_number,
    progress_to_stderr,
)
from codesign.errors import InputError


def cmd_ohq(args) -> int:
    output_dir("--out", args.out)
    output_dir("--cache-dir", args.cache_dir)
    # The flags and small files first, before torch is imported or any data read.
    cfg = load_config(args)
    choices, budgets = ints("--bits", args.bits), tuple(floats("--budgets", args.budgets))
    input_shape = tuple(ints("--input-shape", args.input_shape)) if args.input_shape else None
    if input_shape is not None and (len(input_shape) != 3 or min(input_shape) < 1):
        raise InputError("--input-shape", args.input_shape, "C,H,W: three positive integers")
    if args.model is None and args.data in ("cifar10", "folder"):
        raise InputError("--model", None, f"a model for the {args.data} data (the default network is digits')")
    if args.model is not None and not Path(args.model).is_file():
        raise InputError("--model", args.model, "an existing model file")
    if args.data in ("cifar10", "folder") and not (args.data_path and Path(args.data_path).is_dir()):
        raise InputError("--data-path", args.data_path, f"the directory of the {args.data} data set")
    import torch

    from codesign.ohq.cost_table import BatchTilePricer
    from codesign.ohq.flow import OhqOptions, run_ohq
    from codesign.ohq.model import load_model
    from codesign.ohq.report import PROGRAMS, programs_note, write_outputs

    options = OhqOptions(latency_budget=args.latency_budget, size_budget=args.size_budget, choices=choices,
                         group_size=args.group_size, batch=args.batch, qat_epochs=args.qat_epochs,
                         qat_lr=args.qat_lr, budgets=budgets)
    options.validate(cfg)
    data = _ohq_data(args)
    if args.model is None:
        from codesign.quant.digits import digits_model

        with progress_to_stderr():
            args.model = digits_model()["path"]          # trained once, then reused
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
        print(f"costs: --fast: {pricer.description}, not measured on the RTL", file=sys.stderr)
    else:
        from sim.measure.layer_costs import RtlPricer

        pricer = RtlPricer(cfg, latency=args.latency, simulator=args.simulator,
                           cache_dir=Path(args.cache_dir) / "layer_costs")
    with progress_to_stderr():
        result = run_ohq(model, cfg, pricer, options, calibration=calibration, data=data)
    if not args.fast:
        print(f"RTL: {pricer.simulated} layer measurements simulated, {pricer.cached} read from {pricer.cache_dir}",
              file=sys.stderr)
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

    if args.data == "digits":
        return load_digits()
    if args.data == "cifar10":
        return load_cifar10(args.data_path)
    if args.data == "folder":
        return load_image_folder(args.data_path)
    return None


def register(commands) -> None:
    p = commands.add_parser("ohq", help="hardware-measured mixed-precision weights for a trained model (OHQ)")
    p.add_argument("--model", metavar="MODEL.pt",
                   help="a QuantNet checkpoint (QuantNet.save), or a whole pickled nn.Module with --trust-pickle "
                        "(default: the digits network build/models/digits_w8a8.pt, trained on first use)")
    add_config(p, "--hw")
    p.add_argument("--latency-budget", type=float, default=0.7, action=Checked, check=fraction,
                   help="total cycles at most this fraction of the uniform 8-bit cycles, in (0, 1] (default 0.7)")
    p.add_argument("--size-budget", type=float, action=Checked, check=fraction,
                   help="weight bytes at most this fraction of the 8-bit size, in (0, 1]")
    p.add_argument("--fast", action="store_true", help="BatchTile's predicted costs instead of RTL measurements")
    p.add_argument("--group-size", type=int, metavar="G", action=Checked, check=positive,
                   help="allocate per group of G output channels (a multiple of the array's cols), not per layer")
    p.add_argument("--bits", default="2,3,4,5,6,8", help="candidate weight widths (default 2,3,4,5,6,8)")
    p.add_argument("--batch", type=int, default=8, action=Checked, check=positive,
                   help="images per accelerator run (default 8; with 1 the per-program costs dominate)")
    add_latency(p, 20)
    p.add_argument("--qat-epochs", type=int, default=2, action=Checked, check=non_negative,
                   help="QAT epochs per quantized QuantNet (default 2; 0: none)")
    p.add_argument("--qat-lr", type=float, default=1e-4, action=Checked, check=positive_number,
                   help="QAT learning rate (default 1e-4)")
    p.add_argument("--data", choices=("digits", "cifar10", "folder", "none"), default="digits",
                   help="data for calibration, QAT and accuracy (default digits; none: synthetic, no accuracy)")
    p.add_argument("--data-path", metavar="DIR", help="the data set's directory (cifar10, folder)")
    p.add_argument("--input-shape", metavar="C,H,W", help="a user module's input shape (default: the data's)")
    p.add_argument("--calibration-images", type=int, default=64, action=Checked,
                   check=int_range(1, allowed="a positive number of images"), help="images for MQE (default 64)")
    p.add_argument("--synthetic", action="store_true", help="uniform random calibration images even with data")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow a pickled nn.Module: loading it runs code from the file (trusted files only)")
    p.add_argument("--budgets", default="0.4,0.5,0.6,0.7,0.8,0.9,1.0", help="the report's curve of budgets")
    add_simulator(p)
    p.add_argument("--cache-dir", default="build/cache", metavar="DIR",
                   help="caches: DIR/layer_costs (RTL measurements), DIR/ohq_qat (QAT results); default build/cache")
    p.add_argument("--out", default="build/ohq", metavar="DIR")
    p.set_defaults(handler=cmd_ohq, prog=p.prog)

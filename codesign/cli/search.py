"""`codesign search`: the JAQ co-search of network, weight bits and accelerator on digits.

Its flags sit beside the handler. The handler imports the search (torch) inside the function, so `codesign --help`
does not pay for it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from codesign.cli.options import (
    Checked,
    add_device,
    add_seed,
    add_threads,
    int_range,
    ints,
    non_negative,
    non_negative_number,
    output_dir,
    positive,
    positive_number,
    progress_to_stderr,
)
from codesign.errors import InputError
from codesign.files import atomic_write_json, read_json


def cmd_search(args) -> int:
    output_dir("--out", args.out)
    # The small inputs first: bad input is refused before torch is imported.
    lists = _read_space(args.space) if args.space else None
    act_bits = tuple(ints("--act-bits", args.act_bits)) if args.act_bits else None
    from codesign.jaq.hwspace import HardwareSpace
    from codesign.jaq.pipeline import run_search
    from codesign.jaq.search import BudgetError, SearchSettings

    space = HardwareSpace.from_dict(lists) if lists is not None else HardwareSpace()
    overrides = {name: getattr(args, name)
                 for name in ("seed", "warmup_epochs", "search_epochs", "retrain_fp_epochs", "retrain_qat_epochs",
                              "max_luts", "max_cycles", "device", "batch", "latency_weight", "area_weight",
                              "energy_weight")
                 if getattr(args, name) is not None}
    if act_bits:
        overrides["act_bits"] = act_bits
    settings = SearchSettings(space=space, baselines=not args.no_baselines, **overrides)
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    try:
        with progress_to_stderr():
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


def _read_space(name: str) -> dict:
    """The ``--space`` file's lists, read before torch is imported; `HardwareSpace.from_dict` checks the fields."""
    data = read_json(name, "--space", "JSON file of hardware-space lists")
    if not isinstance(data, dict):
        raise InputError("--space", name, "a JSON object of lists per hardware field")
    return data


def register(commands) -> None:
    p = commands.add_parser("search", help="JAQ co-search of network, bits and accelerator on digits -> "
                                           "design.json, model, report (resumes an interrupted run)")
    p.add_argument("--out", default="build/search", metavar="DIR")
    add_seed(p, None, help="random seed, an integer >= 0 (default 0)")
    epochs = {"type": int, "action": Checked, "check": non_negative}
    p.add_argument("--warmup-epochs", **epochs, help="float supernet epochs before the search (default 40)")
    p.add_argument("--search-epochs", type=int, action=Checked, check=positive, help="search epochs (default 12)")
    p.add_argument("--retrain-fp-epochs", **epochs, help="float fine-tune epochs of each final network")
    p.add_argument("--retrain-qat-epochs", **epochs, help="QAT epochs of each final network")
    p.add_argument("--max-luts", type=float, action=Checked, check=positive_number,
                   help="hard budget: PE-array LUTs (the PE table's estimate)")
    p.add_argument("--max-cycles", type=float, action=Checked, check=positive_number,
                   help="hard budget: predicted cycles per batch")
    p.add_argument("--batch", type=int, action=Checked, check=int_range(1, 4096),
                   help="images per accelerator run; cycles are per batch (default 32)")
    p.add_argument("--act-bits", metavar="B1,B2", help="activation widths to search (default 8: the accelerator "
                                                       "computes every activation at its act_bits)")
    for name in ("latency", "energy", "area"):
        p.add_argument(f"--{name}-weight", type=float, action=Checked, check=non_negative_number,
                       help=f"the {name} term's weight in the search's loss, a finite number >= 0")
    p.add_argument("--space", metavar="SPACE.json", help="hardware space: lists per field (codesign.jaq.hwspace)")
    add_device(p, default=None)
    add_threads(p, None)
    p.add_argument("--no-baselines", action="store_true", help="skip the fixed-hardware and random searches")
    p.add_argument("--restart", action="store_true", help="discard the checkpoint and start over")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=cmd_search, prog=p.prog)

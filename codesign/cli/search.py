"""`codesign search`: the JAQ co-search of network, weight bits and accelerator on digits.

Its flags sit beside the handler. The handler imports the search (torch) inside the function, so `codesign --help`
does not pay for it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from codesign.cli.options import add_device, ints
from codesign.errors import InputError
from codesign.files import atomic_write_json


def cmd_search(args) -> int:
    from codesign.jaq.hwspace import HardwareSpace
    from codesign.jaq.pipeline import run_search
    from codesign.jaq.search import BudgetError, SearchSettings

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
        overrides["act_bits"] = tuple(ints("--act-bits", args.act_bits))
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


def register(commands) -> None:
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
    add_device(p, default=None)
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-baselines", action="store_true", help="skip the fixed-hardware and random searches")
    p.add_argument("--restart", action="store_true", help="discard the checkpoint and start over")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=cmd_search)

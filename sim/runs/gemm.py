"""One random GEMM of a given shape on the RTL, checked against the integer reference: `codesign sim gemm`.

`run_gemm` cuts it the simplest way (whole K per tile, row and column tiles padded with zeros) and runs the tiles on
the bare array core (`sim.tile`); `run_gemm_system` (``--system``) compiles it with a mapping of the compiler's space
(`codesign.compiler.program`, by default `simple_mapping`) and runs the program on the whole accelerator from
simulated DRAM (`sim.system`). `gemm_job` and `check_gemm_job` (one program's simulation job and its check) serve the
layer and network runs and the calibration too.
"""

from __future__ import annotations

import numpy as np

from codesign.compiler.mapping import Gemm, Mapping, simple_mapping
from codesign.compiler.program import Program, compile_gemm
from codesign.errors import InputError
from codesign.hw.config import HardwareConfig
from codesign.hw.reference import Requant, gemm_requant
from sim.system.runner import run_session
from sim.tile.runner import run_tiles
from sim.tile.tiles import Tile, expected_cycles


def parse_bits(text: str, n: int, cfg: HardwareConfig) -> np.ndarray:
    """``"4"`` (every channel) or ``"2,4,8,..."`` (one per output channel) -> N bit widths, validated."""
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise InputError("--bits", text, "comma-separated integers") from None
    if len(values) not in (1, n):
        raise InputError("--bits", text, f"one bit width, or one per output channel (N={n})")
    for v in values:
        if not 1 <= v <= cfg.weight_bits_max:
            raise InputError("--bits", v, f"integers from 1 to weight_bits_max={cfg.weight_bits_max}")
    return np.broadcast_to(np.array(values, dtype=np.int64), (n,)).copy()


def random_gemm(cfg: HardwareConfig, m: int, k: int, n: int, bits: np.ndarray, rng: np.random.Generator):
    """Random operands within every bound: unsigned activations, per-channel weights, a spread-out requant."""
    for name, value, hi in (("--m", m, 1 << 16), ("--k", k, cfg.max_k), ("--n", n, 1 << 16)):
        if not 1 <= value <= hi:
            raise InputError(name, value, f"an integer from 1 to {hi}")
    a = rng.integers(0, 1 << cfg.act_bits, size=(m, k))
    w = np.stack([rng.integers(-(1 << (b - 1)), 1 << (b - 1), size=k) for b in bits], axis=1)
    out_bits = cfg.act_bits
    spread = cfg.act_bits + int(bits.max()) + k.bit_length() // 2
    shift = np.full(n, min(cfg.shift_max, 16 + max(0, spread - out_bits)))
    requant = Requant(bias=rng.integers(-(1 << 10), 1 << 10, n), mult=rng.integers(1 << 14, 1 << 15, n),
                      shift=shift, relu=True, out_bits=out_bits)
    return a, w, requant


def split_tiles(cfg: HardwareConfig, a, w, bits, requant: Requant, seed: int) -> list[tuple[slice, slice, Tile]]:
    """Row tiles of ``rows`` and column tiles of ``cols``, zero-padded at the edges."""
    m, k = a.shape
    n = w.shape[1]
    tiles = []
    for r0 in range(0, m, cfg.rows):
        for c0 in range(0, n, cfg.cols):
            rows, cols = slice(r0, min(r0 + cfg.rows, m)), slice(c0, min(c0 + cfg.cols, n))
            ta = np.zeros((cfg.rows, k), dtype=np.int64)
            ta[: rows.stop - rows.start] = a[rows]
            tw = np.zeros((k, cfg.cols), dtype=np.int64)
            tw[:, : cols.stop - cols.start] = w[:, cols]
            tbits = np.full(cfg.cols, int(bits[cols].max()), dtype=np.int64)  # padding columns cost nothing extra
            tbits[: cols.stop - cols.start] = bits[cols]
            pad = cfg.cols - (cols.stop - cols.start)
            rq = Requant(bias=np.pad(requant.bias[cols], (0, pad)), mult=np.pad(requant.mult[cols], (0, pad)),
                         shift=np.pad(requant.shift[cols], (0, pad)), relu=requant.relu, out_bits=requant.out_bits)
            tiles.append((rows, cols, Tile(a=ta, w=tw, w_bits=tbits, requant=rq, act_signed=False,
                                           filler_seed=seed + len(tiles))))
    return tiles


def run_gemm(cfg: HardwareConfig, m: int, k: int, n: int, bits: np.ndarray, *, seed: int = 0,
             simulator: str = "verilator", stall: bool = False) -> dict:
    rng = np.random.default_rng(seed)
    a, w, requant = random_gemm(cfg, m, k, n, bits, rng)
    want = gemm_requant(cfg, a, w, bits, requant, act_signed=False)
    placed = split_tiles(cfg, a, w, bits, requant, seed)
    results = run_tiles(cfg, [tile for _, _, tile in placed], simulator=simulator, stall=stall)
    got = np.zeros_like(want)
    for (rows, cols, _), result in zip(placed, results):
        got[rows, cols] = result.out[: rows.stop - rows.start, : cols.stop - cols.start]
    mismatches = int(np.count_nonzero(got != want))
    return {
        "bit_exact": mismatches == 0,
        "mismatches": mismatches,
        "cycles": sum(r.cycles for r in results),
        "formula_cycles": sum(expected_cycles(cfg, tile) for _, _, tile in placed),
        "tiles": len(placed),
        "m": m, "k": k, "n": n,
        "bits": bits.tolist(),
        "seed": seed,
        "simulator": simulator,
        "stall": stall,
        "config": cfg.to_dict(),
    }


def gemm_job(program: Program, *, latency: int = 0, backpressure: float = 0.0, seed: int = 0,
             timeout_cycles: int | None = None) -> dict:
    """A `sim.system.testbench` job that loads ``program`` and its operands into DRAM, runs it and reads C back."""
    if timeout_cycles is None:
        moved = sum(len(blob) for _, blob in program.memory)
        timeout_cycles = 4 * program.compute_cycles + (latency + 4) * moved + 10_000
    return {
        "memory": {"latency": latency, "backpressure": backpressure, "seed": seed},
        "steps": [*({"op": "write", "addr": addr, "data": blob.hex()} for addr, blob in program.memory),
                  {"op": "run", "prog_addr": program.prog_addr, "length": len(program.commands),
                   "timeout_cycles": timeout_cycles},
                  {"op": "read", "addr": program.out_addr, "bytes": program.out_bytes}],
    }


def check_gemm_job(program: Program, want: np.ndarray, outputs: list) -> dict:
    """The figures of one finished `gemm_job`: bit-exactness against ``want`` and the performance counters."""
    run, blob = outputs[-2], bytes.fromhex(outputs[-1])
    got = program.decode_c(blob)
    mismatches = int(np.count_nonzero(got != want))
    counters = run["counters"]
    return {
        "bit_exact": mismatches == 0 and run["error"] == "NONE" and not run["timed_out"],
        "mismatches": mismatches,
        "error": run["error"],
        "timed_out": run["timed_out"],
        "cycles": counters["cycles"],
        "compute_cycles": counters["compute_cycles"],
        "stall_cycles": counters["stall_cycles"],
        "bytes_read": counters["bytes_read"],
        "bytes_written": counters["bytes_written"],
        "array_cycles_formula": program.compute_cycles,
        "commands": len(program.commands),
    }


def run_gemm_system(cfg: HardwareConfig, m: int, k: int, n: int, bits: np.ndarray, *, seed: int = 0,
                    simulator: str = "verilator", latency: int = 0, backpressure: float = 0.0,
                    mapping: Mapping | None = None) -> dict:
    """`codesign sim gemm --system`: the GEMM compiled (with ``mapping``, by default `simple_mapping`) and run as a
    program on the whole accelerator, from simulated DRAM."""
    rng = np.random.default_rng(seed)
    a, w, requant = random_gemm(cfg, m, k, n, bits, rng)
    want = gemm_requant(cfg, a, w, bits, requant, act_signed=False)
    mapping = mapping or simple_mapping(cfg, Gemm(m, k, n, tuple(int(b) for b in bits)))
    program = compile_gemm(cfg, a, w, bits, requant, mapping)
    outputs = run_session(cfg, [gemm_job(program, latency=latency, backpressure=backpressure, seed=seed)],
                          simulator=simulator)[0]
    return {**check_gemm_job(program, want, outputs), "m": m, "k": k, "n": n, "bits": bits.tolist(), "seed": seed,
            "mapping": mapping.to_dict(),
            "latency": latency, "backpressure": backpressure, "simulator": simulator, "config": cfg.to_dict()}

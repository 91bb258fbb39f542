"""sim.runs.gemm: bit-width parsing, operands in bounds, edge tiling, system jobs and their check, one RTL run."""

import numpy as np
import pytest

from codesign.compiler.mapping import Gemm, simple_mapping
from codesign.compiler.program import compile_gemm
from codesign.errors import InputError
from codesign.hw.config import HardwareConfig
from codesign.hw.reference import gemm_requant
from sim.runs.gemm import check_gemm_job, gemm_job, parse_bits, random_gemm, run_gemm, split_tiles
from sim.tile.tiles import expected, expected_cycles

CFG = HardwareConfig(rows=2, cols=3, digit_bits=2)


def test_parse_bits():
    assert parse_bits("4", 5, CFG).tolist() == [4] * 5
    assert parse_bits("2,3,8", 3, CFG).tolist() == [2, 3, 8]
    bits = parse_bits("6", 2, CFG)
    bits[0] = 1                                              # a writable copy, not a broadcast view
    assert bits.tolist() == [1, 6]


@pytest.mark.parametrize("text, message", [
    ("2,x", "--bits: '2,x' is not allowed; expected comma-separated integers"),
    ("2,4", "--bits: '2,4' is not allowed; expected one bit width, or one per output channel (N=3)"),
    ("2,9,4", "--bits: 9 is not allowed; expected integers from 1 to weight_bits_max=8"),
    ("0", "--bits: 0 is not allowed"),
])
def test_parse_bits_refuses(text, message):
    with pytest.raises(InputError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        parse_bits(text, 3, CFG)


def test_random_gemm_is_within_every_bound():
    bits = np.array([1, 2, 5, 8, 3])
    a, w, requant = random_gemm(CFG, 7, 300, 5, bits, np.random.default_rng(0))
    assert a.shape == (7, 300) and w.shape == (300, 5)
    assert a.min() >= 0 and a.max() < 1 << CFG.act_bits and a.max() > 200      # unsigned, spread out
    for c, b in enumerate(bits):
        assert w[:, c].min() >= -(1 << (b - 1)) and w[:, c].max() <= (1 << (b - 1)) - 1
    requant.validate(CFG, 5)                                  # raises if a field is out of the config's range
    assert requant.relu and requant.out_bits == CFG.act_bits
    bits = np.full(5, 8)
    a, w, requant = random_gemm(CFG, 20, 64, 5, bits, np.random.default_rng(0))
    out = gemm_requant(CFG, a, w, bits, requant, act_signed=False)
    assert len(np.unique(out)) > 10                           # the requantization does not clamp everything


@pytest.mark.parametrize("name, m, k, n", [("--m", 0, 4, 4), ("--k", 4, CFG.max_k + 1, 4), ("--n", 4, 4, 1 << 17)])
def test_random_gemm_refuses_bad_shapes(name, m, k, n):
    with pytest.raises(InputError, match=f"^{name}: "):
        random_gemm(CFG, m, k, n, np.full(max(n, 1), 4), np.random.default_rng(0))


def test_split_tiles_cover_the_gemm_with_zero_padding():
    """Each tile's reference output, cut to its place, reassembles the whole GEMM's."""
    bits = np.array([2, 8, 4, 3, 5])
    a, w, requant = random_gemm(CFG, 5, 9, 5, bits, np.random.default_rng(1))
    placed = split_tiles(CFG, a, w, bits, requant, seed=3)
    assert len(placed) == 3 * 2                               # ceil(5 / 2) row tiles x ceil(5 / 3) column tiles
    got = np.full((5, 5), -999)
    for (rows, cols, tile), out in zip(placed, expected(CFG, [t for _, _, t in placed])):
        assert tile.a.shape == (CFG.rows, 9) and tile.w.shape == (9, CFG.cols)
        assert not tile.a[rows.stop - rows.start:].any() and not tile.w[:, cols.stop - cols.start:].any()
        got[rows, cols] = out[:rows.stop - rows.start, :cols.stop - cols.start]
    np.testing.assert_array_equal(got, gemm_requant(CFG, a, w, bits, requant, act_signed=False))
    # padding columns take the tile's widest real width, so they add no digits
    last = placed[-1][2]
    assert last.w_bits.tolist() == [3, 5, 5]


@pytest.fixture(scope="module")
def program():
    cfg = HardwareConfig(rows=4, cols=4, digit_bits=2, axi_data_bits=128)
    bits = np.array([4, 8, 2, 6, 3])
    a, w, requant = random_gemm(cfg, 6, 20, 5, bits, np.random.default_rng(2))
    mapping = simple_mapping(cfg, Gemm(6, 20, 5, tuple(bits.tolist())))
    return compile_gemm(cfg, a, w, bits, requant, mapping)


def test_gemm_job_writes_the_image_runs_and_reads_c(program):
    job = gemm_job(program, latency=30, backpressure=0.2, seed=4)
    assert job["memory"] == {"latency": 30, "backpressure": 0.2, "seed": 4}
    *writes, run, read = job["steps"]
    assert [(s["op"], s["addr"], bytes.fromhex(s["data"])) for s in writes] == [
        ("write", addr, blob) for addr, blob in program.memory]
    moved = sum(len(blob) for _, blob in program.memory)
    assert run == {"op": "run", "prog_addr": program.prog_addr, "length": len(program.commands),
                   "timeout_cycles": 4 * program.compute_cycles + 34 * moved + 10_000}
    assert read == {"op": "read", "addr": program.out_addr, "bytes": program.out_bytes}
    assert gemm_job(program, timeout_cycles=77)["steps"][-2]["timeout_cycles"] == 77


def test_check_gemm_job_compares_c_and_reports_the_counters(program):
    blob = bytes(range(256)) * (program.out_bytes // 256 + 1)
    blob = blob[:program.out_bytes]
    want = program.decode_c(blob)
    counters = {"cycles": 900, "compute_cycles": 300, "stall_cycles": 50, "bytes_read": 4096, "bytes_written": 64}
    run = {"done": True, "error": "NONE", "error_pc": 0, "timed_out": False, "counters": counters}
    report = check_gemm_job(program, want, [None, run, blob.hex()])
    assert report["bit_exact"] and report["mismatches"] == 0
    assert {k: report[k] for k in counters} == counters
    assert report["array_cycles_formula"] == program.compute_cycles and report["commands"] == len(program.commands)

    wrong = bytearray(blob)
    wrong[0] ^= 0x01
    assert check_gemm_job(program, want, [run, bytes(wrong).hex()])["mismatches"] == 1
    assert not check_gemm_job(program, want, [{**run, "error": "READ_RESPONSE"}, blob.hex()])["bit_exact"]
    assert not check_gemm_job(program, want, [{**run, "timed_out": True}, blob.hex()])["bit_exact"]


def test_run_gemm_on_the_tile_harness():
    """One small GEMM through `TileHarness` on Verilator (the 2x3 model tests/sim/tile/test_runner.py builds: K = 8
    at 8 bits fits its memories)."""
    bits = np.array([8, 2, 5, 3])
    report = run_gemm(CFG, 3, 8, 4, bits, seed=5)
    assert report["bit_exact"] and report["mismatches"] == 0
    assert report["tiles"] == 2 * 2
    assert report["cycles"] == report["formula_cycles"]
    a, w, requant = random_gemm(CFG, 3, 8, 4, bits, np.random.default_rng(5))
    assert report["formula_cycles"] == sum(expected_cycles(CFG, t) for _, _, t in split_tiles(CFG, a, w, bits,
                                                                                                 requant, 5))
    assert (report["m"], report["k"], report["n"], report["bits"]) == (3, 8, 4, [8, 2, 5, 3])

"""The simulated DRAM on Verilator: latency per burst, backpressure, SLVERR ranges, and settings undone per job."""

import numpy as np
import pytest

from codesign.compiler.mapping import Gemm, simple_mapping
from codesign.compiler.program import compile_gemm
from codesign.hw import isa
from codesign.hw.config import HardwareConfig
from codesign.hw.reference import gemm_requant
from sim.runs.gemm import check_gemm_job, gemm_job, random_gemm
from sim.system.memory import pauses
from sim.system.runner import run_session

# The 4x4 configuration of tests/sim/system/test_runner.py: its Verilator model is shared.
CFG = HardwareConfig(rows=4, cols=4, digit_bits=2, axi_data_bits=128, act_buf_bytes=256, wgt_buf_bytes=256,
                     out_buf_bytes=256, param_buf_bytes=256)
LATENCY = 60


def test_pauses_are_reproducible_with_the_asked_probability():
    first = [next(g) for g in [pauses(0.3, 7)] for _ in range(2000)]
    generator = pauses(0.3, 7)
    assert [next(generator) for _ in range(2000)] == first
    assert 0.25 < sum(first) / len(first) < 0.35
    assert not any(next(pauses(0.0, 1)) for _ in range(50))


@pytest.fixture(scope="module")
def session():
    bits = np.array([4, 8, 2, 5, 7, 3])
    a, w, requant = random_gemm(CFG, 9, 30, 6, bits, np.random.default_rng(21))
    program = compile_gemm(CFG, a, w, bits, requant, simple_mapping(CFG, Gemm(9, 30, 6, tuple(bits.tolist()))))
    plain = gemm_job(program)
    jobs = [
        plain,
        gemm_job(program, latency=LATENCY),
        gemm_job(program, backpressure=0.5, seed=3),
        {"memory": {"faults": [(program.prog_addr, program.prog_addr + 16)]}, "steps": plain["steps"]},
        {"memory": {"faults": [(program.out_addr, program.out_addr + program.out_bytes)]}, "steps": plain["steps"]},
        plain,                                         # every setting of the jobs before is undone
    ]
    results = run_session(CFG, jobs)
    return program, gemm_requant(CFG, a, w, bits, requant, act_signed=False), results


def test_latency_is_paid_per_read_burst(session):
    program, want, results = session
    plain, slow = (check_gemm_job(program, want, results[i]) for i in (0, 1))
    assert plain["bit_exact"] and slow["bit_exact"]
    # every read burst (a program fetch or a load row at least) waits LATENCY cycles after its address, and the
    # memory takes one address at a time: the waits add up (a burst's data may still overlap the next one's wait)
    fetches = -(-len(program.commands) * isa.COMMAND_BYTES // isa.FETCH_BYTES)
    load_rows = sum(c.rows for c in program.commands if getattr(c, "opcode", None) in isa.LOADS)
    assert slow["cycles"] >= LATENCY * (fetches + load_rows)
    assert slow["cycles"] > plain["cycles"] + LATENCY
    assert slow["compute_cycles"] == plain["compute_cycles"] == program.compute_cycles


def test_backpressure_slows_the_run_but_changes_no_result(session):
    program, want, results = session
    plain, pressed = (check_gemm_job(program, want, results[i]) for i in (0, 2))
    assert pressed["bit_exact"] and pressed["cycles"] > plain["cycles"]
    assert pressed["bytes_read"] == plain["bytes_read"] and pressed["bytes_written"] == plain["bytes_written"]


def test_fault_ranges_answer_slverr(session):
    _, _, results = session
    fetch_fault, store_fault = results[3][-2], results[4][-2]
    assert fetch_fault["error"] == "READ_RESPONSE" and fetch_fault["done"] and not fetch_fault["timed_out"]
    assert store_fault["error"] == "WRITE_RESPONSE" and store_fault["done"] and not store_fault["timed_out"]


def test_a_job_without_settings_runs_as_fast_as_the_first(session):
    program, want, results = session
    first, slow, pressed, last = (check_gemm_job(program, want, results[i]) for i in (0, 1, 2, 5))
    assert last["bit_exact"]
    assert abs(last["cycles"] - first["cycles"]) <= 0.1 * first["cycles"]
    assert last["cycles"] < min(slow["cycles"], pressed["cycles"])

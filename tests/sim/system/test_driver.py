"""The host Driver on Verilator: identify, a run that times out, SOFT_RESET, a GEMM with its counters read back."""

import numpy as np
import pytest

from codesign.compiler.mapping import Gemm, simple_mapping
from codesign.compiler.program import compile_gemm
from codesign.hw import csr, isa
from codesign.hw.config import HardwareConfig
from codesign.hw.isa import Compute, End, Opcode
from codesign.hw.reference import gemm_requant
from sim.runs.gemm import gemm_job, random_gemm
from sim.system.runner import run_session

# The 4x4 configuration of tests/sim/system/test_runner.py: its Verilator model is shared.
CFG = HardwareConfig(rows=4, cols=4, digit_bits=2, axi_data_bits=128, act_buf_bytes=256, wgt_buf_bytes=256,
                     out_buf_bytes=256, param_buf_bytes=256)
HANG_ADDR = 0x400000


@pytest.fixture(scope="module")
def session():
    bits = np.array([8, 3, 5, 2, 6])
    a, w, requant = random_gemm(CFG, 6, 24, 5, bits, np.random.default_rng(11))
    program = compile_gemm(CFG, a, w, bits, requant, simple_mapping(CFG, Gemm(6, 24, 5, tuple(bits.tolist()))))
    # a COMPUTE waiting for a LOAD that never comes: the program never ends
    hang = isa.assemble([Compute(k=1, pop_prev=True), End()])
    jobs = [
        {"steps": [{"op": "identify"},
                   {"op": "write", "addr": HANG_ADDR, "data": hang.hex()},
                   {"op": "run", "prog_addr": HANG_ADDR, "length": 2, "timeout_cycles": 3000},
                   {"op": "soft_reset"}]},
        gemm_job(program),
    ]
    results = run_session(CFG, jobs)
    return program, gemm_requant(CFG, a, w, bits, requant, act_signed=False), results


def test_identify_reads_the_configuration_registers(session):
    identity = session[2][0][0]
    assert identity["version"] == csr.VERSION
    assert identity["config"] == {name[4:].lower(): value for name, value in csr.config_values(CFG).items()}


def test_a_run_past_its_timeout_is_reported_not_hung(session):
    run = session[2][0][2]
    assert run["timed_out"] and not run["done"] and run["error"] == "NONE"
    assert run["counters"]["cycles"] >= 3000                 # the counter runs while the program waits


def test_after_soft_reset_a_program_runs_and_its_counters_add_up(session):
    program, want, results = session
    run, blob = results[1][-2], bytes.fromhex(results[1][-1])
    assert run["done"] and run["error"] == "NONE" and not run["timed_out"]
    np.testing.assert_array_equal(program.decode_c(blob), want)
    counters = run["counters"]
    loads = sum(c.rows * c.row_bytes for c in program.commands if getattr(c, "opcode", None) in isa.LOADS)
    stores = sum(c.rows * c.row_bytes for c in program.commands if getattr(c, "opcode", None) == Opcode.STORE)
    assert counters["bytes_read"] == loads + len(program.commands) * isa.COMMAND_BYTES
    assert counters["bytes_written"] == stores
    assert counters["compute_cycles"] == program.compute_cycles
    assert 0 < counters["stall_cycles"] < counters["cycles"]

"""The system cocotb testbench on Verilator, driven through its JSON files: every step's output, and a bad step."""

import json

import pytest

from codesign.hw import csr, isa
from codesign.hw.config import HardwareConfig
from codesign.hw.isa import End
from sim.system.runner import model_for

# The 4x4 configuration of tests/sim/system/test_runner.py: its Verilator model is shared.
CFG = HardwareConfig(rows=4, cols=4, digit_bits=2, axi_data_bits=128, act_buf_bytes=256, wgt_buf_bytes=256,
                     out_buf_bytes=256, param_buf_bytes=256)


def run_jobs(tmp_path, jobs):
    jobs_path, results_path = tmp_path / "jobs.json", tmp_path / "results.json"
    jobs_path.write_text(json.dumps(jobs))
    model_for(CFG).run("sim.system.testbench", {"CODESIGN_SYSTEM_JOBS": str(jobs_path),
                                                "CODESIGN_SYSTEM_RESULTS": str(results_path)})
    return json.loads(results_path.read_text())


def test_every_step_has_its_output(tmp_path):
    data = bytes(range(37))
    end = isa.assemble([End()])
    jobs = [
        {"steps": [{"op": "write", "addr": 0x1234, "data": data.hex()},
                   {"op": "read", "addr": 0x1230, "bytes": 45},
                   {"op": "identify"}]},
        {"memory": {"latency": 5, "backpressure": 0.3, "seed": 1},
         "steps": [{"op": "write", "addr": 0x8000, "data": end.hex()},
                   {"op": "run", "prog_addr": 0x8000, "length": 1, "timeout_cycles": 2000},
                   {"op": "soft_reset"},
                   {"op": "read", "addr": 0x1234, "bytes": 4}]},
    ]
    first, second = run_jobs(tmp_path, jobs)
    assert first[0] is None
    assert bytes.fromhex(first[1]) == bytes(4) + data + bytes(4)      # DRAM starts zeroed
    assert first[2]["config"]["rows"] == 4 and first[2]["version"] == csr.VERSION
    write, run, reset, read = second
    assert write is None and reset is None
    assert set(run) == {"done", "error", "error_pc", "timed_out", "counters"}
    assert run["done"] and run["error"] == "NONE" and not run["timed_out"]
    assert set(run["counters"]) == set(csr.COUNTERS) and run["counters"]["bytes_read"] == isa.COMMAND_BYTES
    assert bytes.fromhex(read) == data[:4]                            # memory persists across jobs


def test_an_unknown_step_fails_the_session(tmp_path, monkeypatch):
    """As outside pytest (the CLI): the failed cocotb test becomes `Model.run`'s error, and no results are left."""
    monkeypatch.delenv("PYTEST_CURRENT_TEST")
    with pytest.raises(RuntimeError, match="1 of 1 cocotb tests failed"):
        run_jobs(tmp_path, [{"steps": [{"op": "identify"}, {"op": "erase"}]}])
    assert not (tmp_path / "results.json").exists()

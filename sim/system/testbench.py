"""cocotb testbench: replays host sessions on the whole `Accelerator` through `Driver`.

A session (JSON, named by ``CODESIGN_SYSTEM_JOBS``) is a list of jobs; each sets up the memory model (latency,
backpressure, fault ranges) and runs steps: ``write`` bytes into DRAM, ``run`` a program, ``read`` bytes back,
``soft_reset``, ``identify``. The results (``CODESIGN_SYSTEM_RESULTS``) are checked by the caller in plain Python.
"""

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles

from sim.system.driver import Driver
from sim.system.memory import Memory

CLOCK_NS = 10


@cocotb.test()
async def run_session(dut):
    with open(os.environ["CODESIGN_SYSTEM_JOBS"]) as f:
        jobs = json.load(f)

    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    memory = Memory(dut)
    driver = Driver(dut, memory)
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)

    results = []
    for job in jobs:
        memory.configure(**job.get("memory", {}))
        outputs = []
        for step in job["steps"]:
            op = step["op"]
            if op == "write":
                memory.write(step["addr"], bytes.fromhex(step["data"]))
                outputs.append(None)
            elif op == "read":
                outputs.append(memory.read(step["addr"], step["bytes"]).hex())
            elif op == "run":
                result = await driver.run(step["prog_addr"], step["length"], step["timeout_cycles"])
                outputs.append(result.to_dict())
            elif op == "soft_reset":
                await driver.soft_reset()
                outputs.append(None)
            elif op == "identify":
                outputs.append(await driver.identify())
            else:
                raise ValueError(f"unknown step {op!r}")
        results.append(outputs)

    tmp = os.environ["CODESIGN_SYSTEM_RESULTS"] + ".tmp"
    with open(tmp, "w") as f:
        json.dump(results, f)
    os.replace(tmp, os.environ["CODESIGN_SYSTEM_RESULTS"])

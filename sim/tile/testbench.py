"""cocotb testbench: runs a list of tiles on `TileHarness`, one await per tile.

The jobs come from a JSON file named by ``CODESIGN_TILE_JOBS`` (written by `sim.build.run_tiles`); the output rows
and cycle counts go to ``CODESIGN_TILE_RESULTS``. Checking against the integer reference happens in the caller, in
plain Python, where a mismatch can be reported with the whole tile at hand.
"""

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge, with_timeout

CLOCK_NS = 10


@cocotb.test()
async def run_tiles(dut):
    with open(os.environ["CODESIGN_TILE_JOBS"]) as f:
        spec = json.load(f)
    rows = spec["rows"]

    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    dut.start.value = 0
    dut.stall.value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    # Inputs change on falling edges only: a write right after a rising edge races the flops in Icarus.
    await FallingEdge(dut.clk)
    dut.rst.value = 0

    results = []
    for job in spec["jobs"]:
        for address, word in enumerate(job["act_words"]):
            dut.act_mem[address].value = word
        for address, word in enumerate(job["wgt_words"]):
            dut.wgt_mem[address].value = word
        dut.command.value = job["command"]
        dut.act_beats.value = len(job["act_words"])
        dut.wgt_beats.value = len(job["wgt_words"])
        dut.stall.value = int(job["stall"])
        dut.start.value = 1
        await FallingEdge(dut.clk)
        dut.start.value = 0
        await with_timeout(RisingEdge(dut.done), job["timeout_cycles"] * CLOCK_NS, "ns")
        await ReadOnly()
        results.append({
            "rows": [int(dut.out_mem[r].value) for r in range(rows)] if job["emit"] else [],
            "cycles": int(dut.cycles.value),
        })
        await FallingEdge(dut.clk)

    tmp = os.environ["CODESIGN_TILE_RESULTS"] + ".tmp"
    with open(tmp, "w") as f:
        json.dump(results, f)
    os.replace(tmp, os.environ["CODESIGN_TILE_RESULTS"])

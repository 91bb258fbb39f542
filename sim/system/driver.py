"""`Driver`: the host side of the accelerator, with the calls a real driver makes, over cocotbext-axi in simulation.

A board driver would map the registers and share DRAM with the device; here `AxiLiteMaster` is the CPU's bus and
`Memory` the DRAM. Nothing in the flow is simulation-only: identify, discover the configuration, copy data and
program in, write PROG_ADDR / PROG_LEN, START, wait for the interrupt (with a timeout), read STATUS and counters.
"""

from __future__ import annotations

from dataclasses import dataclass

from cocotb.triggers import ClockCycles, First, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster

from codesign.hw import csr
from codesign.hw.csr import COUNTERS, Control, Error, Status
from sim.system.memory import Memory, quiet


@dataclass
class RunResult:
    done: bool
    error: Error
    error_pc: int
    timed_out: bool
    counters: dict

    def to_dict(self) -> dict:
        return {"done": self.done, "error": self.error.name, "error_pc": self.error_pc, "timed_out": self.timed_out,
                "counters": self.counters}


class Driver:
    def __init__(self, dut, memory: Memory, prefix: str = "s_axil"):
        self.dut = dut
        self.memory = memory
        self.regs = AxiLiteMaster(AxiLiteBus.from_prefix(dut, prefix), dut.clk, dut.rst)
        quiet(self.regs.read_if, self.regs.write_if)

    async def read_reg(self, name: str) -> int:
        return await self.regs.read_dword(csr.OFFSETS[name])

    async def write_reg(self, name: str, value: int) -> None:
        await self.regs.write_dword(csr.OFFSETS[name], value)

    async def identify(self) -> dict:
        """ID and version, and the hardware configuration read from the CFG_* registers."""
        ident = await self.read_reg("ID")
        if ident != csr.ID_VALUE:
            raise RuntimeError(f"ID register reads 0x{ident:08x}, expected 0x{csr.ID_VALUE:08x}")
        config = {r.name[4:].lower(): await self.read_reg(r.name) for r in csr.REGISTERS if r.name.startswith("CFG_")}
        return {"version": await self.read_reg("VERSION"), "config": config}

    async def counters(self) -> dict:
        values = {}
        for name in COUNTERS:
            low = await self.read_reg(f"{name.upper()}_LO")      # latches _HI
            values[name] = low | (await self.read_reg(f"{name.upper()}_HI")) << 32
        return values

    async def start(self, prog_addr: int, length: int) -> None:
        await self.write_reg("PROG_ADDR", prog_addr)
        await self.write_reg("PROG_LEN", length)
        await self.write_reg("CONTROL", Control.START)

    async def wait(self, timeout_cycles: int) -> bool:
        """Wait for the interrupt; False on timeout."""
        if not int(self.dut.irq.value):
            timeout = ClockCycles(self.dut.clk, timeout_cycles)
            if await First(RisingEdge(self.dut.irq), timeout) is timeout:
                return False
        return True

    async def run(self, prog_addr: int, length: int, timeout_cycles: int) -> RunResult:
        await self.start(prog_addr, length)
        await ClockCycles(self.dut.clk, 2)           # let DONE of a previous program clear
        finished = await self.wait(timeout_cycles)
        status = await self.read_reg("STATUS")
        return RunResult(done=bool(status & Status.DONE), error=Error((status >> csr.ERROR_SHIFT) & 0xFF),
                         error_pc=await self.read_reg("ERROR_PC"), timed_out=not finished,
                         counters=await self.counters())

    async def soft_reset(self) -> None:
        await self.write_reg("CONTROL", Control.SOFT_RESET)

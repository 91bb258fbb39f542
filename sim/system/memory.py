"""The simulated DRAM behind the accelerator's AXI4 port: cocotbext-axi's `AxiRam`, with a memory latency, random
backpressure on every channel and address ranges that answer with SLVERR."""

from __future__ import annotations

import logging
import random
import warnings

from cocotb.triggers import ClockCycles
from cocotbext.axi import AxiBus, AxiRam

# cocotbext-axi 0.1.28 itself still calls cocotb's deprecated ``setimmediatevalue`` (nothing in how we use it does):
# one DeprecationWarning per AXI channel in every simulation's log, about code that is not ours.
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"cocotbext\.axi\.")


def pauses(probability: float, seed: int):
    """A cocotbext-axi pause generator: True (hold the channel) with ``probability`` each cycle, reproducibly."""
    rng = random.Random(seed)
    while True:
        yield rng.random() < probability


def quiet(*interfaces) -> None:
    """cocotbext-axi logs every transfer at INFO: thousands of lines per program."""
    for interface in interfaces:
        interface.log.setLevel(logging.WARNING)


class Memory:
    """``size`` bytes of DRAM on ``dut``'s ``m_axi`` port.

    ``latency`` cycles pass between accepting a burst's address and its first data beat (read) or its response
    (write). cocotbext-axi serves one burst at a time, so the latency is paid per burst, not overlapped: a memory
    slower than a real DRAM controller, which makes the utilization figures conservative.
    """

    def __init__(self, dut, size: int = 1 << 24, prefix: str = "m_axi"):
        self.clock = dut.clk
        self.ram = AxiRam(AxiBus.from_prefix(dut, prefix), dut.clk, dut.rst, size=size)
        quiet(self.ram.read_if, self.ram.write_if)
        self.latency = 0
        self.faults: list[tuple[int, int]] = []
        self._delay(self.ram.read_if.ar_channel)
        self._delay(self.ram.write_if.aw_channel)
        self._fail(self.ram.read_if, "_read")
        self._fail(self.ram.write_if, "_write")

    def configure(self, *, latency: int = 0, backpressure: float = 0.0, seed: int = 0,
                  faults: list[tuple[int, int]] = ()) -> None:
        self.latency = latency
        self.faults = [tuple(f) for f in faults]
        channels = (self.ram.read_if.ar_channel, self.ram.read_if.r_channel, self.ram.write_if.aw_channel,
                    self.ram.write_if.w_channel, self.ram.write_if.b_channel)
        for i, channel in enumerate(channels):
            channel.set_pause_generator(pauses(backpressure, seed * 8 + i) if backpressure else None)
            # Removing a generator leaves the channel in whatever pause state it last set: release it.
            channel.pause = False if not backpressure else channel.pause

    def write(self, addr: int, data: bytes) -> None:
        self.ram.write(addr, data)

    def read(self, addr: int, length: int) -> bytes:
        return self.ram.read(addr, length)

    # cocotbext-axi has no latency or fault injection: wrap the address sinks and the data accessors it calls.
    def _delay(self, channel) -> None:
        receive = channel.recv

        async def delayed_recv():
            transaction = await receive()
            if self.latency:
                await ClockCycles(self.clock, self.latency)
            return transaction

        channel.recv = delayed_recv

    def _fail(self, interface, method: str) -> None:
        access = getattr(interface, method)

        async def checked(address, *args):
            if any(lo <= address < hi for lo, hi in self.faults):
                raise OSError(f"fault at 0x{address:x}")     # cocotbext-axi answers SLVERR
            return await access(address, *args)

        setattr(interface, method, checked)

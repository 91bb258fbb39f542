"""Dependency tokens between the LOAD, COMPUTE and STORE units (the scheme is described in `codesign.hw.isa`)."""

from contextlib import contextmanager

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

TOKEN_BITS = 8


class TokenQueue(wiring.Component):
    """A counter of tokens sent from one unit to another: ``push`` adds one, ``pop`` takes one (when ``available``).

    Ports
        push       In   1
        pop        In   1     only while ``available``
        available  Out  1
    """

    push: In(1)
    pop: In(1)
    available: Out(1)

    def elaborate(self, platform):
        m = Module()
        count = Signal(TOKEN_BITS)
        with m.If(self.push & ~self.pop):
            m.d.sync += count.eq(count + 1)
        with m.Elif(self.pop & ~self.push):
            m.d.sync += count.eq(count - 1)
        m.d.comb += self.available.eq(count != 0)
        return m


def dependency_members() -> dict:
    """The ports every unit has: its command queue's tokens from and to its two neighbours, and the halt."""
    return {
        "prev_available": In(1), "next_available": In(1),
        "pop_prev": Out(1), "pop_next": Out(1), "push_prev": Out(1), "push_next": Out(1),
        "halt": In(1),
    }


@contextmanager
def next_command(m: Module, unit, cmd):
    """The two states every unit starts a command with. IDLE: take the next command from the queue into ``cmd``.
    WAIT: wait for the tokens it pops (drop it when halted). The body of the ``with`` runs in the cycle the tokens
    are taken: it starts the command and names the next state."""
    with m.State("IDLE"):
        m.d.comb += [unit.cmd.ready.eq(1), unit.idle.eq(1)]
        with m.If(unit.cmd.valid):
            m.d.sync += cmd.eq(unit.cmd.payload)
            m.next = "WAIT"
    with m.State("WAIT"):
        ready = acquire(m, unit, cmd)
        with m.If(unit.halt):
            m.next = "IDLE"
        with m.Elif(ready):
            take(m, unit, cmd)
            yield


def acquire(m: Module, unit, header) -> Signal:
    """Comb logic: the tokens that ``header`` asks for are there; take them when the returned signal is high."""
    ready = Signal()
    m.d.comb += ready.eq((~header.pop_prev | unit.prev_available) & (~header.pop_next | unit.next_available))
    return ready


def take(m: Module, unit, header) -> None:
    m.d.comb += [unit.pop_prev.eq(header.pop_prev), unit.pop_next.eq(header.pop_next)]


def release(m: Module, unit, header) -> None:
    m.d.comb += [unit.push_prev.eq(header.push_prev), unit.push_next.eq(header.push_next)]

"""Dependency tokens in Amaranth's simulator: a TokenQueue counts pushes and pops; every unit has the token ports."""

from amaranth.hdl import Shape
from amaranth.lib import wiring
from amaranth.sim import Simulator

from rtl_gen.dependency import TOKEN_BITS, TokenQueue, dependency_members


def run_queue(events):
    """Drive (push, pop) per cycle; returns ``available`` before each cycle's edge and after the last."""
    dut = TokenQueue()
    seen = []

    async def bench(ctx):
        for push, pop in events:
            ctx.set(dut.push, push)
            ctx.set(dut.pop, pop)
            seen.append(ctx.get(dut.available))
            await ctx.tick()
        ctx.set(dut.push, 0)
        ctx.set(dut.pop, 0)
        seen.append(ctx.get(dut.available))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return seen


def test_tokens_are_counted():
    # push 3, pop 1, push and pop together (no change), pop 2: empty again
    events = [(1, 0), (1, 0), (1, 0), (0, 1), (1, 1), (0, 1), (0, 1)]
    assert run_queue(events) == [0, 1, 1, 1, 1, 1, 1, 0]


def test_a_token_is_available_the_cycle_after_its_push():
    assert run_queue([(0, 0), (1, 0), (0, 0), (0, 1), (0, 0)]) == [0, 0, 1, 1, 0, 0]


def test_the_counter_holds_many_outstanding_tokens():
    pushes = (1 << TOKEN_BITS) - 1
    seen = run_queue([(1, 0)] * pushes + [(0, 1)] * pushes)
    assert seen[0] == 0 and all(seen[1:-1]) and seen[-1] == 0


def test_dependency_members_are_the_units_token_ports():
    members = dependency_members()
    assert {name for name, member in members.items() if member.flow == wiring.In} == {
        "prev_available", "next_available", "halt"}
    assert {name for name, member in members.items() if member.flow == wiring.Out} == {
        "pop_prev", "pop_next", "push_prev", "push_next"}
    assert all(Shape.cast(member.shape).width == 1 for member in members.values())

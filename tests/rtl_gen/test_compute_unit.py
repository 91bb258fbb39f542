"""ComputeUnit in Amaranth's simulator: token wait, a tile for `tile_cycles`, overlapped commands, bad records and
ranges refused."""

import pytest
from amaranth.sim import Simulator

from codesign.hw import isa
from codesign.hw.config import HardwareConfig
from codesign.hw.csr import Error
from codesign.hw.isa import Compute
from codesign.hw.timing import tile_cycles
from rtl_gen.compute_unit import ComputeUnit

CFG = HardwareConfig(rows=2, cols=2, digit_bits=2, act_buf_bytes=256, wgt_buf_bytes=256, out_buf_bytes=256,
                     param_buf_bytes=256)


def record(bias=0, mult=1, shift=0, bits=8) -> int:
    """One column's 8-byte parameter record (`codesign.hw.isa`): bias int32, mult u16, shift u8, weight bits u8."""
    return (bias & 0xFFFF_FFFF) | mult << 32 | shift << 48 | bits << 56


def run(command, params, *, token_after=3, halt=False, cycles=30):
    """One command with the parameter word ``params`` (a record per column); its token comes ``token_after``
    cycles after it is taken (or ``halt`` is raised then instead)."""
    dut = ComputeUnit(CFG)
    out = {"errors": [], "stalled": [], "busy": 0, "pushes": 0, "param_reads": [], "rows": [], "push_next": []}

    async def bench(ctx):
        ctx.set(dut.param_data, sum(r << (64 * c) for c, r in enumerate(params)))
        ctx.set(dut.cmd.payload, isa.encode(command))
        ctx.set(dut.cmd.valid, 1)
        await ctx.tick()
        ctx.set(dut.cmd.valid, 0)
        for cycle in range(cycles):
            if cycle == token_after:
                ctx.set(dut.halt if halt else dut.prev_available, 1)
            _, _, error, stalled, busy, pop, push_prev, push_next, param_en, param_addr, out_en, out_addr, \
                out_data = await ctx.tick().sample(dut.error, dut.stalled, dut.array_busy, dut.pop_prev,
                                                   dut.push_prev, dut.push_next, dut.param_en, dut.param_addr,
                                                   dut.out_en, dut.out_addr, dut.out_data)
            if pop:
                ctx.set(dut.prev_available, 0)
            if error:
                out["errors"].append(Error(error))
            out["stalled"].append(stalled)
            out["busy"] += busy
            out["pushes"] += push_prev + push_next
            if param_en:
                out["param_reads"].append(param_addr)
            if out_en:
                out["rows"].append((cycle, out_addr, out_data))
            if push_next:
                out["push_next"].append(cycle)
        out["idle"] = ctx.get(dut.idle)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return out


@pytest.mark.parametrize("bad", [record(bits=0), record(bits=9), record(shift=CFG.shift_max + 1)])
def test_a_bad_parameter_record_is_refused(bad):
    command = Compute(k=4, param_addr=0x40, pop_prev=True, push_prev=True)
    out = run(command, [record(), bad])
    assert out["errors"] == [Error.BAD_FIELD]
    assert out["param_reads"] == [0x40]                  # the record was read from the command's address
    assert out["busy"] == 0 and out["pushes"] == 0 and out["idle"]


def test_weights_past_the_buffer_are_refused():
    # K = 10 steps of 8-bit weights at g = 2: 40 one-byte digit planes from 240 run past the 256-byte buffer
    out = run(Compute(k=10, wgt_addr=240), [record(), record(bits=3)])
    assert out["errors"] == [Error.BUFFER_RANGE] and out["busy"] == 0 and out["idle"]


def test_a_command_waits_stalled_for_its_token_and_a_halt_drops_it():
    command = Compute(k=4, pop_prev=True, push_prev=True)
    out = run(command, [record(), record()], token_after=6, halt=True)
    # stalled from the cycle after it is taken until the halt, then dropped: no error, nothing run
    assert out["stalled"][:6] == [1] * 6 and not any(out["stalled"][6:])
    assert out["errors"] == [] and out["busy"] == 0 and out["pushes"] == 0 and out["param_reads"] == []
    assert out["idle"]


def test_a_tile_runs_for_the_timing_formula_and_writes_its_rows():
    """Zero operands (the buffers read 0): each output is its column's requantized bias, so the rows show that the
    parameter word reached the array; the array is busy exactly `tile_cycles`, and push_next follows the last row."""
    command = Compute(k=4, out_addr=0x10, pop_prev=True, push_prev=True, push_next=True, emit=True, relu=False)
    out = run(command, [record(bias=5), record(bias=-3, bits=3)], cycles=60)
    assert out["errors"] == [] and out["idle"]
    assert out["busy"] == tile_cycles(CFG, 4, 8)
    words = isa.word_bytes(CFG)
    assert [(addr, data) for _, addr, data in out["rows"]] == [(0x10 + r * words.out, 5 | (-3 & 0xFF) << 8)
                                                              for r in range(CFG.rows)]
    assert out["pushes"] == 2 and out["push_next"] == [out["rows"][-1][0]]


def back_to_back(commands, params, *, late=0):
    """Offer ``commands`` one after another, as fast as the unit takes them, the third one only from cycle ``late``:
    per cycle whether the array was busy, and the output addresses written and the cycles of push_next."""
    dut = ComputeUnit(CFG)
    seen = {"busy": [], "rows": [], "pushes": []}

    async def bench(ctx):
        ctx.set(dut.param_data, sum(r << (64 * c) for c, r in enumerate(params)))
        queue = list(commands)
        for cycle in range(120):
            ctx.set(dut.cmd.valid, bool(queue) and (len(queue) != len(commands) - 2 or cycle >= late))
            ctx.set(dut.cmd.payload, isa.encode(queue[0]) if queue else 0)
            _, _, taken, array_busy, out_en, out_addr, push_next = await ctx.tick().sample(
                dut.cmd.valid & dut.cmd.ready, dut.array_busy, dut.out_en, dut.out_addr, dut.push_next)
            if taken:
                queue.pop(0)
            seen["busy"].append(array_busy)
            if out_en:
                seen["rows"].append(out_addr)
            if push_next:
                seen["pushes"].append(cycle)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return seen


def test_back_to_back_commands_keep_the_array_busy():
    """Commands overlap: the next one is taken, checked and its reads started while the array feeds the tile
    before it, so the array takes it the cycle after that tile's last beat (one idle cycle, the handshake). Each
    emitting tile's rows still come out, in order, each followed by its push_next."""
    commands = [Compute(k=4, out_addr=0x10 * i, push_next=True, emit=True) for i in range(3)]
    seen = back_to_back(commands, [record(), record()])
    busy = seen["busy"]
    first = busy.index(1)
    feed = tile_cycles(CFG, 4, 8)
    assert busy[first:first + 3 * feed + 2] == [1] * feed + [0] + [1] * feed + [0] + [1] * feed
    assert sum(busy) == 3 * feed
    words = isa.word_bytes(CFG)
    assert seen["rows"] == [0x10 * i + r * words.out for i in range(3) for r in range(CFG.rows)]
    assert len(seen["pushes"]) == 3


def test_a_drain_push_is_never_lost_to_a_tile_that_ends_beside_it():
    """A K split of one column tile into K = 1 chunks, twice: each second chunk emits and pushes. Whatever cycle the
    third command comes in, a tile without a push that ends in the cycle of the previous drain's last row must not
    swallow that row's push_next (it did: a STORE then waited forever)."""
    commands = [Compute(k=1, emit=False, push_prev=True),
                Compute(k=1, accumulate=True, emit=True, push_prev=True, push_next=True),
                Compute(k=1, emit=False), Compute(k=1, accumulate=True, emit=True, out_addr=0x40, push_next=True)]
    for late in range(40):
        seen = back_to_back(commands, [record(bits=2), record(bits=2)], late=late)
        assert (len(seen["rows"]), len(seen["pushes"])) == (2 * CFG.rows, 2), late

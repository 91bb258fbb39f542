"""Dma against a Python AXI4 memory: bursts <= 256 beats within 4 KiB, in-order data under backpressure, errors."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from rtl_gen.axi import BURST_INCR, RESP_OKAY
from rtl_gen.dma import MAX_BURST_BEATS, PAGE_BYTES, Dma

SLVERR = 2


def word_at(addr: int, bus: int) -> int:
    """The memory's content: each beat is its own address pattern, so misplaced beats show."""
    return sum(((addr + i) * 7 + 3) % 256 << (8 * i) for i in range(bus))


def simulate(data_bits, reads, writes, *, rng, faults=(), busy=0.4):
    """Run read requests ``[(addr, beats, tag)]`` and write requests ``[(addr, beats)]`` (their data: random
    beats) at once, every channel stalled at random; ``faults`` are address ranges answered with SLVERR.

    Returns the bursts seen on AR and AW, the read beats delivered (data, tag, error), the written memory, the
    W beats with their ``wlast``, the cycles with ``wr_error`` and the idle flags at the end."""
    bus = data_bits // 8
    dut = Dma(data_bits)
    axi = dut.axi
    out = {"ar": [], "aw": [], "read": [], "memory": {}, "wlast": [], "wr_errors": 0}
    write_data = [int.from_bytes(rng.bytes(bus), "little") for _ in range(sum(b for _, b in writes))]

    def chance():
        return rng.random() >= busy

    async def bench(ctx):
        rd_reqs, wr_reqs, wr_words = list(reads), list(writes), list(write_data)
        r_bursts, w_bursts, b_pending = [], [], []
        r_beat = w_beat = 0
        expected_reads = sum(b for _, b, _ in reads)
        # valid, once raised, stays until its transfer: on our side (wr_data, R, B), checked on the DMA's (AR, AW, W)
        wr_valid = r_valid = b_valid = False
        held = {}
        cycles = 0
        while len(out["read"]) < expected_reads or wr_reqs or wr_words or w_bursts or b_pending:
            cycles += 1
            assert cycles < 20_000, "the DMA stopped"
            # requests and data from the units
            ctx.set(dut.rd_req.valid, bool(rd_reqs))
            if rd_reqs:
                addr, beats, tag = rd_reqs[0]
                ctx.set(dut.rd_req.payload, {"addr": addr, "beats": beats, "tag": tag})
            ctx.set(dut.wr_req.valid, bool(wr_reqs))
            if wr_reqs:
                ctx.set(dut.wr_req.payload, {"addr": wr_reqs[0][0], "beats": wr_reqs[0][1], "tag": 0})
            wr_valid = bool(wr_words) and (wr_valid or chance())
            ctx.set(dut.wr_data.valid, wr_valid)
            ctx.set(dut.wr_data.payload, wr_words[0] if wr_words else 0)
            ctx.set(dut.rd_data.ready, chance())
            # the memory: address channels, read data, write data, write responses
            ctx.set(axi.arready, chance())
            ctx.set(axi.awready, chance())
            ctx.set(axi.wready, chance())
            r_valid = bool(r_bursts) and (r_valid or chance())
            ctx.set(axi.rvalid, r_valid)
            if r_bursts:
                addr, length = r_bursts[0]
                beat_addr = addr + r_beat * bus
                ctx.set(axi.rdata, word_at(beat_addr, bus))
                ctx.set(axi.rlast, r_beat == length - 1)
                ctx.set(axi.rresp, SLVERR if any(lo <= beat_addr < hi for lo, hi in faults) else RESP_OKAY)
            b_valid = bool(b_pending) and (b_valid or chance())
            ctx.set(axi.bvalid, b_valid)
            ctx.set(axi.bresp, b_pending[0] if b_pending else 0)

            _, _, *s = await ctx.tick().sample(
                dut.rd_req.valid & dut.rd_req.ready, dut.wr_req.valid & dut.wr_req.ready,
                axi.arvalid, axi.arready, axi.araddr, axi.arlen, axi.arsize, axi.arburst,
                axi.awvalid, axi.awready, axi.awaddr, axi.awlen, axi.awsize, axi.awburst,
                axi.rvalid & axi.rready, dut.rd_data.payload.data, dut.rd_data.payload.tag,
                dut.rd_data.payload.error,
                axi.wvalid, axi.wready, axi.wdata, axi.wlast, axi.wstrb,
                dut.wr_data.valid & dut.wr_data.ready, axi.bvalid & axi.bready, dut.wr_error)
            (rd_req, wr_req, arvalid, arready, araddr, arlen, arsize, arburst, awvalid, awready, awaddr, awlen,
             awsize, awburst, r, r_data, r_tag, r_error, wvalid, wready, wdata, wlast, wstrb, wr_data, b,
             wr_error) = s
            for channel, valid, ready, values in (("ar", arvalid, arready, (araddr, arlen)),
                                                  ("aw", awvalid, awready, (awaddr, awlen)),
                                                  ("w", wvalid, wready, (wdata, wlast))):
                if channel in held:
                    assert valid and values == held.pop(channel), f"{channel} changed before its transfer"
                if valid and not ready:
                    held[channel] = values
            ar, aw, w = arvalid and arready, awvalid and awready, wvalid and wready
            if rd_req:
                rd_reqs.pop(0)
            if wr_req:
                wr_reqs.pop(0)
            if ar:
                assert (arsize, arburst) == ((bus - 1).bit_length(), BURST_INCR)
                out["ar"].append((araddr, arlen + 1))
                r_bursts.append((araddr, arlen + 1))
            if aw:
                assert (awsize, awburst) == ((bus - 1).bit_length(), BURST_INCR)
                out["aw"].append((awaddr, awlen + 1))
                w_bursts.append((awaddr, awlen + 1))
            if r:
                r_valid = False
                out["read"].append((r_data, r_tag, r_error))
                r_beat += 1
                if r_beat == r_bursts[0][1]:
                    r_bursts.pop(0)
                    r_beat = 0
            if wr_data:
                assert w, "a data beat taken but not written"
                wr_valid = False
                wr_words.pop(0)
            if w:
                assert w_bursts, "a W beat before its burst's address"
                addr, length = w_bursts[0]
                assert wstrb == (1 << bus) - 1
                out["memory"][addr + w_beat * bus] = wdata
                out["wlast"].append(wlast)
                assert wlast == (w_beat == length - 1)
                w_beat += 1
                if w_beat == length:
                    w_bursts.pop(0)
                    b_pending.append(SLVERR if any(lo <= addr < hi for lo, hi in faults) else RESP_OKAY)
                    w_beat = 0
            if b:
                b_valid = False
                b_pending.pop(0)
            out["wr_errors"] += wr_error
            if b_pending or w_bursts or wr_words:
                assert not ctx.get(dut.wr_idle)
        for _ in range(2):
            await ctx.tick()
        out["idle"] = (ctx.get(dut.rd_idle), ctx.get(dut.wr_idle))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    out["write_data"] = write_data
    return out


def check_bursts(bursts, requests, bus):
    """Every burst inside one 4 KiB page and at most 256 beats; together they cover the requests in order."""
    covered = []
    for addr, beats in bursts:
        assert 1 <= beats <= MAX_BURST_BEATS
        assert addr // PAGE_BYTES == (addr + beats * bus - 1) // PAGE_BYTES, (hex(addr), beats)
        covered += [addr + i * bus for i in range(beats)]
    assert covered == [addr + i * bus for addr, beats in requests for i in range(beats)]


@pytest.mark.parametrize("data_bits", [64, 256])
def test_bursts_split_at_pages_and_256_beats(data_bits):
    bus = data_bits // 8
    # one beat before a page end, then long runs; a request of exactly one page; a short one
    reads = [(PAGE_BYTES - bus, 600, 1), (3 * PAGE_BYTES, PAGE_BYTES // bus, 0), (0x20, 3, 1)]
    writes = [(2 * PAGE_BYTES - 5 * bus, 300), (0x10000, 2)]
    rng = np.random.default_rng(data_bits)
    out = simulate(data_bits, reads, writes, rng=rng)
    check_bursts(out["ar"], [(a, b) for a, b, _ in reads], bus)
    check_bursts(out["aw"], writes, bus)
    assert max(beats for _, beats in out["ar"]) == min(MAX_BURST_BEATS, PAGE_BYTES // bus)
    # read data in request order, each beat tagged with its request's tag, no errors
    want = [(word_at(a + i * bus, bus), tag, 0) for a, beats, tag in reads for i in range(beats)]
    assert out["read"] == want
    # write data lands at consecutive addresses, in order
    addrs = [a + i * bus for a, beats in writes for i in range(beats)]
    assert [out["memory"][a] for a in addrs] == out["write_data"]
    assert sum(out["wlast"]) == len(out["aw"])
    assert out["wr_errors"] == 0 and out["idle"] == (1, 1)


def test_error_responses_are_flagged():
    bus = 8
    reads = [(0x1000, 8, 0)]
    writes = [(0x2000, 4), (0x3000, 4)]
    out = simulate(64, reads, writes, rng=np.random.default_rng(3), faults=[(0x1010, 0x1018), (0x3000, 0x3020)])
    assert [error for _, _, error in out["read"]] == [0, 0, 1, 0, 0, 0, 0, 0]
    assert [data for data, _, _ in out["read"]] == [word_at(0x1000 + i * bus, bus) for i in range(8)]
    assert out["wr_errors"] == 1                          # one burst answered SLVERR
    assert out["idle"] == (1, 1)


def test_without_backpressure_a_read_burst_streams_every_cycle():
    """With every channel ready, the beats of a 4 KiB read on a 64-bit bus arrive without a gap: the next burst's
    address is issued ahead of its data."""
    dut = Dma(64)
    axi = dut.axi
    seen = {"beats": []}

    async def bench(ctx):
        ctx.set(dut.rd_req.valid, 1)
        ctx.set(dut.rd_req.payload, {"addr": 0, "beats": 512, "tag": 0})
        ctx.set(dut.rd_data.ready, 1)
        ctx.set(axi.arready, 1)
        bursts, beat = [], 0
        for cycle in range(560):
            ctx.set(axi.rvalid, bool(bursts))
            ctx.set(axi.rlast, bool(bursts) and beat == bursts[0] - 1)
            _, _, req, ar, arlen, r = await ctx.tick().sample(dut.rd_req.valid & dut.rd_req.ready,
                                                              axi.arvalid & axi.arready, axi.arlen,
                                                              axi.rvalid & axi.rready)
            if req:
                ctx.set(dut.rd_req.valid, 0)
            if ar:
                bursts.append(arlen + 1)
            if r:
                seen["beats"].append(cycle)
                beat += 1
                if beat == bursts[0]:
                    bursts.pop(0)
                    beat = 0

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    beats = seen["beats"]
    assert len(beats) == 512 and beats == list(range(beats[0], beats[0] + 512))

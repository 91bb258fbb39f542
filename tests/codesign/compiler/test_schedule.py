"""The schedule: every tile once, in the mapping's loop order, halves alternating, outputs numbered for the slots."""

from collections import Counter

import numpy as np
import pytest

from codesign.compiler.layout import lay_out
from codesign.compiler.mapping import Gemm, Mapping, plan
from codesign.compiler.schedule import OUT_SLOTS, Halves, out_slots, schedule
from codesign.hw.config import HardwareConfig
from codesign.hw.isa import Opcode
from codesign.hw.reference import Requant

CFG = HardwareConfig(rows=4, cols=4, digit_bits=2, axi_data_bits=128, act_buf_bytes=2048, wgt_buf_bytes=1024,
                     out_buf_bytes=256, param_buf_bytes=256)
M, K, N = 13, 20, 11                   # 4 row tiles, 3 column tiles


def _schedule(mapping, k=K):
    rng = np.random.default_rng(0)
    bits = rng.integers(2, 9, N)
    a = rng.integers(0, 256, size=(M, k))
    w = np.stack([rng.integers(-(1 << (b - 1)), 1 << (b - 1), size=k) for b in bits], axis=1)
    requant = Requant(bias=np.zeros(N), mult=np.ones(N), shift=np.zeros(N), relu=True, out_bits=8)
    p = plan(CFG, Gemm(M, k, N, tuple(int(b) for b in bits)), mapping)
    layout = lay_out(p, a, w, bits, requant, base=0, row_major=False)
    return p, layout, schedule(p, layout)


@pytest.mark.parametrize("order", ["weights", "acts"])
def test_resident_steps_stream_the_inner_blocks_past_each_outer_block(order):
    p, layout, s = _schedule(Mapping(bm=2, bn=2, order=order))
    halves = Halves.of(CFG)
    assert len(s.steps) == 2 * 2                             # 2 row blocks x 2 column blocks
    tiles = [(t.i, t.j) for step in s.steps for t in step.computes]
    assert sorted(tiles) == [(i, j) for i in range(4) for j in range(3)]
    assert all(t.emit and not t.accumulate and t.k == K for step in s.steps for t in step.computes)
    outer = Opcode.LOAD_WGT if order == "weights" else Opcode.LOAD_ACT
    inner = Opcode.LOAD_ACT if order == "weights" else Opcode.LOAD_WGT
    for q, step in enumerate(s.steps):
        opcodes = [load.opcode for load in step.loads]
        assert opcodes.count(inner) == 1                      # the streaming block, every step
        assert opcodes.count(outer) == (q % 2 == 0)           # the resident block, once per outer block
        streaming = next(load for load in step.loads if load.opcode == inner)
        half = halves.act if inner == Opcode.LOAD_ACT else halves.wgt
        assert streaming.buf_addr == (q % 2) * half           # halves alternate per step
    first = s.steps[0].loads[0]
    assert first.dram_addr == (layout.act[0, 0] if first.opcode == Opcode.LOAD_ACT else layout.wgt[0, 0])


def test_split_steps_load_each_chunk_and_emit_on_the_last():
    p, _, s = _schedule(Mapping(kc=8), k=20)
    chunks = len(p.chunks)
    assert chunks == 3 and len(s.steps) == p.m_tiles * p.n_tiles * chunks
    for n, step in enumerate(s.steps):
        (tile,) = step.computes
        c = n % chunks
        assert (tile.accumulate, tile.emit, tile.k) == (c > 0, c == chunks - 1, (8, 8, 4)[c])
        assert [load.opcode for load in step.loads] == [Opcode.LOAD_ACT, Opcode.LOAD_WGT, Opcode.LOAD_PARAM]
        assert step.loads[0].buf_addr == (n % 2) * Halves.of(CFG).act
    assert Counter((t.i, t.j) for step in s.steps for t in step.computes) == \
        {(i, j): chunks for i in range(p.m_tiles) for j in range(p.n_tiles)}


def test_outputs_are_numbered_in_program_order_and_rotate_over_the_slots():
    _, _, s = _schedule(Mapping(kc=8), k=20)
    emitting = [t for step in s.steps for t in step.computes if t.emit]
    assert [t.out_index for t in emitting] == list(range(s.emitted))
    assert all(t.out_index is None for step in s.steps for t in step.computes if not t.emit)
    assert [s.out_buf_addr(t) for t in emitting[:s.slots + 1]] == \
        [e * s.slot_bytes for e in range(s.slots)] + [0]


@pytest.mark.parametrize("out_buf, slot, want", [(256, 128, 2), (256, 64, 4), (4096, 64, OUT_SLOTS), (256, 200, 2)])
def test_out_slots_take_what_fits_from_two_to_out_slots(out_buf, slot, want):
    cfg = HardwareConfig(out_buf_bytes=out_buf)
    assert out_slots(cfg, slot) == want

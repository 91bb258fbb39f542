"""The DRAM layout: regions in order and aligned, slots holding the ISA's words, and C decoded in both layouts."""

import numpy as np
import pytest

from codesign.compiler.layout import OPERAND_BASE, OUTPUT_FILL, act_slots, decode_c, lay_out, param_words
from codesign.compiler.mapping import Gemm, Mapping, plan
from codesign.hw.config import HardwareConfig
from codesign.hw.isa import word_bytes
from codesign.hw.operands import pack_lanes, param_record, unpack_lanes
from codesign.hw.reference import Requant

CFG = HardwareConfig(rows=4, cols=4, digit_bits=2, axi_data_bits=128, act_buf_bytes=2048, wgt_buf_bytes=1024,
                     out_buf_bytes=256, param_buf_bytes=256)
ROW_MAJOR = HardwareConfig(rows=2, cols=16, digit_bits=2, axi_data_bits=128)    # an out word of one bus beat


def _operands(cfg, m, k, n, seed=0):
    rng = np.random.default_rng(seed)
    bits = rng.integers(2, 9, n)
    a = rng.integers(0, 256, size=(m, k))
    w = np.stack([rng.integers(-(1 << (b - 1)), 1 << (b - 1), size=k) for b in bits], axis=1)
    requant = Requant(bias=rng.integers(-99, 99, n), mult=rng.integers(1, 999, n), shift=rng.integers(0, 9, n),
                      relu=False, out_bits=8)
    return a, w, bits, requant


@pytest.mark.parametrize("mapping", [Mapping(), Mapping(kc=7)])
def test_regions_follow_each_other_aligned_a_then_w_then_params_then_the_output(mapping):
    m, k, n = 9, 20, 6
    a, w, bits, requant = _operands(CFG, m, k, n)
    p = plan(CFG, Gemm(m, k, n, tuple(int(b) for b in bits)), mapping)
    layout = lay_out(p, a, w, bits, requant, base=0x1000, row_major=False)
    addrs = [addr for addr, _ in layout.image]
    assert addrs[0] == 0x1000 + OPERAND_BASE and addrs == sorted(addrs)
    assert all(addr % 64 == 0 for addr in addrs)
    chunks = len(p.chunks)
    assert len(layout.image) == 2 * chunks + 2                   # A and W per chunk, parameters, output
    for c in range(chunks):                                      # the slots of a chunk are contiguous
        assert [layout.act[i, c] for i in range(p.m_tiles)] == \
            [layout.act[0, c] + i * p.act_slot for i in range(p.m_tiles)]
    assert layout.param == [addrs[-2] + j * p.param_slot for j in range(p.n_tiles)]
    assert (layout.out_addr, layout.out_bytes) == (addrs[-1], p.m_tiles * p.n_tiles * p.out_slot)
    assert layout.image[-1][1] == bytes([OUTPUT_FILL]) * layout.out_bytes


def test_act_slots_hold_one_act_word_per_reduction_step_zero_padded():
    a, w, bits, requant = _operands(CFG, 5, 3, 4)
    p = plan(CFG, Gemm(5, 3, 4, tuple(int(b) for b in bits)), Mapping())
    (slots,) = act_slots(p, a)
    size = word_bytes(CFG).act
    assert len(slots) == p.m_tiles == 2 and all(len(s) == p.act_slot for s in slots)
    for i, slot in enumerate(slots):
        words = [int.from_bytes(slot[step * size:(step + 1) * size], "little") for step in range(3)]
        tile = np.zeros((CFG.rows, 3), dtype=np.int64)
        tile[:len(a[i * 4:(i + 1) * 4])] = a[i * 4:(i + 1) * 4]
        assert np.array_equal(unpack_lanes(words, CFG.act_bits, CFG.rows, signed=False), tile.T)


def test_param_words_follow_the_channel_order_and_pad_with_1_bit_zero_columns():
    bits = (8, 2, 4, 2, 3)
    requant = Requant(bias=[10, -20, 30, -40, 50], mult=[1, 2, 3, 4, 5], shift=[6, 7, 8, 9, 10], relu=True,
                      out_bits=8)
    p = plan(CFG, Gemm(4, 8, 5, bits), Mapping(group=True))
    words = param_words(p, requant, np.array([bits[c] for c in p.permutation] + [1, 1, 1]))
    want = b"".join(param_record(requant.bias[c], requant.mult[c], requant.shift[c], bits[c]) for c in p.permutation)
    want += param_record(0, 0, 0, 1) * 3
    assert b"".join(word[:CFG.cols * 8] for word in words) == want
    assert all(len(word) == p.param_slot for word in words)


@pytest.mark.parametrize("cfg, row_major", [(CFG, False), (ROW_MAJOR, False), (ROW_MAJOR, True)])
def test_decode_c_reads_each_tile_where_the_stores_put_it_and_undoes_the_permutation(cfg, row_major):
    m, k, n = 5, 6, 19
    a, w, bits, requant = _operands(cfg, m, k, n, seed=3)
    p = plan(cfg, Gemm(m, k, n, tuple(int(b) for b in bits)), Mapping(group=True))
    assert p.permutation != tuple(range(n))
    layout = lay_out(p, a, w, bits, requant, base=0, row_major=row_major)
    c = np.random.default_rng(0).integers(-128, 128, size=(p.m_tiles * cfg.rows, p.n_tiles * cfg.cols))
    blob = bytearray(layout.out_bytes)
    out_word = word_bytes(cfg).out
    for i in range(p.m_tiles):
        for j in range(p.n_tiles):
            rows = c[i * cfg.rows:(i + 1) * cfg.rows, j * cfg.cols:(j + 1) * cfg.cols]
            for r, word in enumerate(pack_lanes(rows, cfg.act_bits)):
                at = layout.c_tile(i, j) + r * layout.c_row_stride
                blob[at:at + out_word] = word.to_bytes(out_word, "little")
    got = decode_c(layout, bytes(blob), signed=True)
    want = np.empty((m, n), dtype=np.int64)
    want[:, list(p.permutation)] = c[:m, :n]
    assert np.array_equal(got, want)
    if row_major:                                # row r of C is one run of bytes
        assert layout.c_tile(1, 0) == cfg.rows * layout.c_row_bytes and layout.c_row_stride == layout.c_row_bytes

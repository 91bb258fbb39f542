"""The ISA's operand encodings: known words, and every encoding undone by its decoder."""

import numpy as np
import pytest

from codesign.hw.config import HardwareConfig
from codesign.hw.isa import PARAM_RECORD_BYTES, word_bytes
from codesign.hw.operands import (
    PARAM_RECORD_FIELDS,
    digit_planes,
    pack_lanes,
    param_record,
    unpack_lanes,
    words_to_bytes,
)


def test_pack_lanes_puts_element_i_at_bits_i_times_width_in_twos_complement():
    assert pack_lanes(np.array([[1, -1, 2]]), 4) == [0x2F1]
    assert pack_lanes(np.array([[0, 0], [3, 1]]), 2) == [0, 0b0111]


@pytest.mark.parametrize("width, lanes, signed", [(1, 5, False), (2, 3, True), (8, 8, True), (8, 64, False),
                                                  (13, 7, True)])
def test_unpack_lanes_undoes_pack_lanes(width, lanes, signed):
    rng = np.random.default_rng(width * lanes)
    lo, hi = (-(1 << (width - 1)), 1 << (width - 1)) if signed else (0, 1 << width)
    values = rng.integers(lo, hi, size=(6, lanes))
    out = unpack_lanes(pack_lanes(values, width), width, lanes, signed=signed)
    assert out.dtype == np.int64 and np.array_equal(out, values)


def test_digit_planes_known_words():
    cfg = HardwareConfig(rows=1, cols=2, digit_bits=2)
    # column 0: 5 in 4 bits = 01 01; column 1: -2 in 3 bits = 110 -> digits 10, 01
    assert digit_planes(cfg, np.array([[5, -2]]), [4, 3], 2) == [0b1001, 0b0101]


@pytest.mark.parametrize("g", [1, 2, 4, 8])
def test_digit_planes_hold_each_columns_own_bits_and_filler_only_above(g):
    cfg = HardwareConfig(rows=2, cols=5, digit_bits=g, weight_bits_max=8)
    rng = np.random.default_rng(g)
    bits = np.array([2, 3, 5, 8, 1])
    w = np.stack([rng.integers(-(1 << (b - 1)), 1 << (b - 1), size=7) for b in bits], axis=1)
    d = cfg.digits(int(bits.max()))
    for seed in (None, 11):
        words = digit_planes(cfg, w, bits, d, filler_seed=seed)
        assert len(words) == 7 * d
        digits = unpack_lanes(words, g, 5, signed=False).reshape(7, d, 5)          # K x D x cols
        value = (digits << (g * np.arange(d))[None, :, None]).sum(axis=1)
        assert np.array_equal(value & ((1 << bits) - 1), w & ((1 << bits) - 1))
        if seed is None:
            assert np.array_equal(value >> bits, np.zeros_like(value))


def test_param_record_layout():
    assert PARAM_RECORD_BYTES == sum(size for _, size, _ in PARAM_RECORD_FIELDS) == 8
    record = param_record(-2, 0x1234, 7, 5)
    assert record == b"\xfe\xff\xff\xff\x34\x12\x07\x05"
    assert int.from_bytes(record[:4], "little", signed=True) == -2
    assert param_record(np.int64(3), np.int64(0), np.int64(0), np.int64(1)) == b"\x03\0\0\0\0\0\0\x01"


@pytest.mark.parametrize("fields", [(1 << 31, 0, 0, 1), (0, 1 << 16, 0, 1), (0, -1, 0, 1), (0, 0, 256, 1)])
def test_param_record_refuses_a_value_outside_its_field(fields):
    with pytest.raises(OverflowError):
        param_record(*fields)


def test_words_to_bytes_is_little_endian_and_padded_to_bus_beats():
    assert words_to_bytes([1, 0x0302], 2, 8) == b"\x01\x00\x02\x03\x00\x00\x00\x00"
    assert words_to_bytes([], 4, 16) == b""
    cfg = HardwareConfig()
    words = word_bytes(cfg)
    blob = words_to_bytes(pack_lanes(np.arange(24).reshape(3, 8), cfg.act_bits), words.act, words.bus)
    assert len(blob) % words.bus == 0 and blob[:words.act] == bytes(range(8))

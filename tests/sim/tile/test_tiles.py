"""Tile encoding against Amaranth's own layouts: the fast packer must produce the words the RTL expects."""

import numpy as np
from amaranth.lib import data

from codesign.hw.config import HardwareConfig
from codesign.hw.operands import pack_lanes
from sim.tile.tiles import encode, random_tile


def test_pack_lanes_matches_array_layout():
    rng = np.random.default_rng(0)
    for width, lanes in [(1, 7), (2, 3), (8, 8), (8, 64)]:
        values = rng.integers(-(1 << (width - 1)), 1 << width, size=(5, lanes))
        layout = data.ArrayLayout(width, lanes)
        want = [layout.const([int(v) & ((1 << width) - 1) for v in row]).as_bits() for row in values]
        assert pack_lanes(values, width) == want


def test_weight_words_hold_each_columns_digits_lsb_first():
    cfg = HardwareConfig(rows=2, cols=3, digit_bits=2, weight_bits_max=8)
    tile = random_tile(cfg, np.random.default_rng(3), k=4, w_bits=[2, 5, 8])
    tile.filler_seed = None
    words = encode(cfg, tile).wgt_words
    assert len(words) == 4 * 4                                  # K * ceil(8 / 2)
    for k in range(4):
        for c, bits in enumerate([2, 5, 8]):
            digits = [(words[k * 4 + j] >> (2 * c)) & 3 for j in range(4)]
            value = sum(d << (2 * j) for j, d in enumerate(digits))
            assert value == int(tile.w[k, c]) & ((1 << bits) - 1)

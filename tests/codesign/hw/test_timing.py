"""The closed-form cycle counts of codesign.hw.timing against hand-computed cases."""

import pytest

from codesign.hw.config import HardwareConfig
from codesign.hw.timing import REQUANT_LATENCY, bank_cycles, drain_cycles, fill_cycles, tile_cycles


def test_requantization_is_five_stages():
    assert REQUANT_LATENCY == 5


@pytest.mark.parametrize("rows, cols, fill, drain", [(1, 1, 1, 7), (8, 8, 15, 14), (4, 16, 19, 10), (16, 2, 17, 22)])
def test_fill_and_drain(rows, cols, fill, drain):
    cfg = HardwareConfig(rows=rows, cols=cols)
    assert fill_cycles(cfg) == fill                 # rows + cols - 1: through the skew to PE(rows-1, cols-1)
    assert drain_cycles(cfg) == drain               # the copy, one row per cycle, the requantization pipeline
    assert bank_cycles(cfg) == fill + drain + 1     # the capture wave, the drain, the release


@pytest.mark.parametrize("g, k, bits, cycles", [
    (2, 10, 8, 10 * 4),           # 8-bit weights at g = 2: four digits per step
    (2, 10, 7, 10 * 4),           # 7 bits still take four digits
    (2, 10, 3, 10 * 2),
    (1, 3, 5, 3 * 5),             # bit-serial
    (4, 1, 1, 1 * 1),
    (8, 100, 8, 100),             # bit-parallel: one cycle per step (the skew is crossed under the next tile)
    (8, 100, 2, 100),
])
def test_tile_cycles(g, k, bits, cycles):
    cfg = HardwareConfig(rows=8, cols=8, digit_bits=g)
    assert tile_cycles(cfg, k, bits) == cycles


def test_tile_cycles_scale_with_k_and_digits():
    cfg = HardwareConfig(rows=4, cols=2, digit_bits=2)
    assert tile_cycles(cfg, 2 * 37, 6) == 2 * tile_cycles(cfg, 37, 6)
    assert tile_cycles(cfg, 37, 8) - tile_cycles(cfg, 37, 4) == 37 * 2

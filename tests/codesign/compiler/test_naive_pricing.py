"""The plain-Python pricing loop: its best mapping equals BatchTile's exactly, one mapping at a time as on the grid."""

import math

import pytest
import torch

from codesign.compiler.batchtile import (
    N_RESIDENT,
    Constants,
    HardwareBatch,
    LayerBatch,
    grid_index,
    predict,
    price_mappings,
)
from codesign.compiler.mapping import Gemm, Mapping, enumerate_mappings
from codesign.compiler.naive_pricing import GRID_POINTS, api_search, price_grid, price_mapping, search, tile_digits
from codesign.hw.config import HardwareConfig

CONFIGS = [
    HardwareConfig(rows=4, cols=4, digit_bits=2, axi_data_bits=128, act_buf_bytes=1024, wgt_buf_bytes=512,
                   param_buf_bytes=256),
    HardwareConfig(rows=8, cols=8, digit_bits=1),
    HardwareConfig(rows=2, cols=3, digit_bits=8, axi_data_bits=256, out_buf_bytes=256),
]
GEMMS = [Gemm(30, 27, 10, (2, 8, 4, 4, 3, 8, 2, 6, 5, 8)), Gemm(1, 300, 7, (4,) * 7), Gemm(64, 9, 1, (3,)),
         Gemm(49, 1000, 20, (8,) * 20)]
COUNTS = [1, 2, 6, 1]


def batchtile(configs, gemms, counts):
    return price_mappings(HardwareBatch.from_configs(configs, dtype=torch.float64),
                          LayerBatch.from_gemms(gemms, counts, dtype=torch.float64), Constants())


def test_tile_digits_by_hand():
    cfg = HardwareConfig(rows=4, cols=4, digit_bits=2)
    # sorted bits 2 2 3 4 | 4 5 8 8 | 8 -> widest per tile 4, 8, 8 -> digits 2, 4, 4
    assert tile_digits(cfg, Gemm(1, 1, 9, (8, 2, 4, 8, 3, 5, 2, 4, 8))) == (3.0, 10.0, 4.0)
    assert tile_digits(HardwareConfig(rows=4, cols=4, digit_bits=8), Gemm(1, 1, 5, (1,) * 5)) == (2.0, 2.0, 1.0)


def test_the_best_point_equals_batchtiles_exactly():
    naive = search(CONFIGS, GEMMS, COUNTS)
    costs = batchtile(CONFIGS, GEMMS, COUNTS)
    best = costs.best()
    assert len(naive.cycles[0][0]) == GRID_POINTS == costs.cycles.shape[-1]
    for h in range(len(CONFIGS)):
        for layer in range(len(GEMMS)):
            grid = naive.cycles[h][layer]
            assert [math.isfinite(v) for v in grid] == costs.valid[h, layer].tolist()
            assert naive.index[h][layer] == int(best["index"][h, layer])
            assert naive.best[h][layer] == pytest.approx(float(best["cycles"][h, layer]), rel=1e-12)
            assert naive.best[h][layer] == min(grid)
        assert naive.totals[h] == pytest.approx(sum(naive.best[h]), rel=1e-12)


def test_a_layer_is_priced_count_times():
    gemm = GEMMS[0]
    once, thrice = price_grid(CONFIGS[0], gemm), price_grid(CONFIGS[0], gemm, 3)
    assert [3 * a if math.isfinite(a) else a for a in once] == pytest.approx(thrice, rel=1e-12)


def test_one_mapping_costs_what_its_grid_point_costs():
    costs = batchtile(CONFIGS, GEMMS, [1] * len(GEMMS))
    for h, cfg in enumerate(CONFIGS):
        for layer, gemm in enumerate(GEMMS):
            grid = price_grid(cfg, gemm)
            for mapping in enumerate_mappings(cfg, gemm):
                if not mapping.group:
                    continue
                try:
                    index = grid_index(costs, h, layer, mapping)
                except KeyError:                   # a block extent the grid does not price
                    continue
                assert price_mapping(cfg, gemm, mapping) == grid[index]
                if math.isfinite(grid[index]):
                    assert grid[index] == pytest.approx(predict(cfg, gemm, mapping), rel=1e-12)


def test_a_chunk_outside_the_grid_is_not_priced():
    cfg, gemm = CONFIGS[0], GEMMS[3]
    assert price_mapping(cfg, gemm, Mapping(kc=3)) == math.inf
    assert all(math.isinf(v) for v in price_grid(cfg, gemm)[:N_RESIDENT])    # K = 1000 fits no resident block


def test_the_library_api_loop_finds_the_same_best():
    uniform = [Gemm(30, 27, 10, (8,) * 10), Gemm(1, 300, 7, (4,) * 7), Gemm(64, 9, 1, (3,))]
    loop = api_search(CONFIGS, uniform, [1, 1, 1])
    naive = search(CONFIGS, uniform, [1, 1, 1])
    for h in range(len(CONFIGS)):
        assert loop[h] == pytest.approx(naive.best[h], rel=1e-12)

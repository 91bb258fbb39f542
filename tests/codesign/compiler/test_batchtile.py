import math
import random

import numpy as np
import pytest
import torch

from codesign.bench.batchtile import hardware_candidates, network_gemms
from codesign.compiler.batchtile import N_RESIDENT, HardwareBatch, LayerBatch, predict_dram_bytes, price_mappings
from codesign.compiler.depthwise import plan_depthwise
from codesign.compiler.mapping import K_SPLITS, ORDERS, Gemm, Mapping, Window, enumerate_mappings, fit_problem, plan
from codesign.compiler.naive_pricing import GRID_POINTS, search
from codesign.compiler.program import compile_depthwise, compile_gemm
from codesign.hw.config import HardwareConfig
from sim.runs.gemm import random_gemm

CONFIGS = [
    HardwareConfig(rows=4, cols=8, digit_bits=2),
    HardwareConfig(rows=8, cols=4, digit_bits=1, act_buf_bytes=1024, wgt_buf_bytes=512, param_buf_bytes=256),
    HardwareConfig(rows=16, cols=16, digit_bits=4, axi_data_bits=128),
    HardwareConfig(rows=2, cols=3, digit_bits=8, axi_data_bits=256, out_buf_bytes=256),
]
BITS = (2, 3, 4, 5, 6, 8)


def random_gemms(seed: int, count: int = 6) -> list[Gemm]:
    """Random shapes (K from 1 to past every buffer) with mixed per-channel bits; every third one uniform."""
    rng = random.Random(seed)
    gemms = []
    for i in range(count):
        n = rng.randint(1, 70)
        bits = (rng.choice(BITS),) * n if i % 3 == 0 else tuple(rng.choice(BITS) for _ in range(n))
        gemms.append(Gemm(rng.randint(1, 300), rng.choice((1, 9, 27, rng.randint(1, 700), 3000)), n, bits))
    return gemms


def priced(configs, gemms, counts=None, dtype=torch.float32):
    return price_mappings(HardwareBatch.from_configs(configs, dtype=dtype),
                          LayerBatch.from_gemms(gemms, counts, dtype=dtype))


def decoded_mappings(costs, h: int, layer: int) -> dict[int, Mapping]:
    """Every valid grid point of (h, layer) as the grouped `Mapping` it stands for."""
    found = {}
    shape = costs.cycles.shape[:2]
    for index in torch.nonzero(costs.valid[h, layer]).flatten().tolist():
        d = costs.decode(torch.full(shape, index))
        found[index] = Mapping(bm=int(d["bm"][h, layer]), bn=int(d["bn"][h, layer]), kc=int(d["kc"][h, layer]),
                               order=ORDERS[int(d["order"][h, layer])], group=True)
    return found


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_naive_loop_reproduces_batchtile(seed):
    gemms = random_gemms(seed)
    counts = [1, 3, 1, 2, 1, 7]
    naive = search(CONFIGS, gemms, counts)
    costs = priced(CONFIGS, gemms, counts)
    best = costs.best()
    assert costs.cycles.shape[-1] == GRID_POINTS
    for h in range(len(CONFIGS)):
        for layer in range(len(gemms)):
            grid = naive.cycles[h][layer]
            theirs = costs.cycles[h, layer].double().tolist()
            assert [math.isfinite(v) for v in grid] == costs.valid[h, layer].tolist()
            for mine, other in zip(grid, theirs):
                if math.isfinite(mine):
                    assert other == pytest.approx(mine, rel=1e-4)
            chosen = int(best["index"][h, layer])
            assert chosen == naive.index[h][layer] or grid[chosen] == pytest.approx(naive.best[h][layer], rel=1e-9)
        assert float(best["cycles"][h].sum()) == pytest.approx(naive.totals[h], rel=1e-5)


@pytest.mark.parametrize("seed", [3, 4])
def test_every_valid_point_fits_the_buffers(seed):
    gemms = random_gemms(seed)
    costs = priced(CONFIGS, gemms)
    for h, cfg in enumerate(CONFIGS):
        for layer, gemm in enumerate(gemms):
            for index, mapping in decoded_mappings(costs, h, layer).items():
                assert fit_problem(plan(cfg, gemm, mapping)) is None, (cfg, gemm, index, mapping)


@pytest.mark.parametrize("seed", [5, 6])
def test_valid_points_are_the_grouped_mapping_space(seed):
    """Uniform bits: exactly `enumerate_mappings`. Mixed bits: a subset, because BatchTile sizes every weight block
    by its widest column tile while `fit_problem` sums the block's actual tiles."""
    gemms = random_gemms(seed)
    costs = priced(CONFIGS, gemms)
    for h, cfg in enumerate(CONFIGS):
        for layer, gemm in enumerate(gemms):
            found = set(decoded_mappings(costs, h, layer).values())
            space = {m for m in enumerate_mappings(cfg, gemm) if m.group}
            assert len(found) == int(costs.valid[h, layer].sum())       # no point repeats another
            if len(set(gemm.bits)) == 1:
                assert found == space
            else:
                assert found <= space


def test_best_picks_the_cheapest_valid_point():
    costs = priced(CONFIGS, random_gemms(7))
    best = costs.best()
    cheapest = torch.where(costs.valid, costs.cycles, torch.inf).min(dim=-1).values
    assert torch.equal(best["cycles"], cheapest)
    picked = costs.cycles.gather(-1, best["index"].unsqueeze(-1)).squeeze(-1)
    assert torch.equal(picked, best["cycles"])
    assert bool(costs.valid.gather(-1, best["index"].unsqueeze(-1)).all())


def test_grouping_mixed_bits_costs_no_more_than_the_widest_bits():
    rng = random.Random(8)
    mixed = [Gemm(rng.randint(8, 400), rng.randint(8, 600), n, tuple(rng.choice(BITS) for _ in range(n)))
             for n in (5, 24, 64)]
    widest = [Gemm(g.m, g.k, g.n, (max(g.bits),) * g.n) for g in mixed]
    costs = priced(CONFIGS, mixed + widest)
    low, high = costs.cycles[:, :3], costs.cycles[:, 3:]
    assert torch.equal(costs.valid[:, :3], costs.valid[:, 3:])       # fit depends on the widest tile only
    assert bool((low <= high).all())
    assert bool((costs.best()["cycles"][:, :3] <= costs.best()["cycles"][:, 3:]).all())
    assert bool((low < high).any())


def test_k_chunks_start_at_the_whole_k_when_it_fits():
    cfg = HardwareConfig(rows=8, cols=8, digit_bits=2)
    costs = priced([cfg], [Gemm(64, 96, 16, (8,) * 16)])
    assert float(costs.kc_largest[0, 0]) == 96
    split = costs.valid[0, 0, N_RESIDENT:].tolist()
    assert split == [False] + [True] * (K_SPLITS - 1)              # kc = K is the resident mapping, not a split
    assert bool(costs.valid[0, 0, :N_RESIDENT].any())


def test_chunks_of_k_or_more_are_never_valid():
    costs = priced(CONFIGS, random_gemms(9))
    d = {s: costs.decode(torch.full(costs.cycles.shape[:2], N_RESIDENT + s)) for s in range(K_SPLITS)}
    for s in range(K_SPLITS):
        too_big = (d[s]["kc"] >= costs.k) | (d[s]["kc"] < 1)
        assert not bool((costs.valid[..., N_RESIDENT + s] & too_big).any())


def test_a_layer_larger_than_the_buffers_still_has_a_k_split():
    cfg = HardwareConfig(rows=8, cols=8, digit_bits=2, act_buf_bytes=256, wgt_buf_bytes=256)
    gemm = Gemm(100, 4000, 20, (8,) * 20)
    costs = priced([cfg], [gemm])
    assert not bool(costs.valid[0, 0, :N_RESIDENT].any())
    assert bool(costs.valid[0, 0, N_RESIDENT])
    assert float(costs.kc_largest[0, 0]) < gemm.k
    best = costs.best()
    assert int(best["index"][0, 0]) >= N_RESIDENT and math.isfinite(float(best["cycles"][0, 0]))
    mapping = Mapping(kc=int(best["kc"][0, 0]))
    assert fit_problem(plan(cfg, gemm, mapping)) is None


def test_bench_space_is_mobilenet_v2_on_64_candidates():
    assert len(network_gemms()) == 53
    assert len(network_gemms("mixed")) == 53          # a depthwise layer is one entry, whatever its bits
    candidates = hardware_candidates()
    assert len(set(candidates)) == 64


# The benchmark's command (`codesign bench batchtile`) and its report: tests/codesign/cli/test_bench.py.


def test_the_library_api_loop_finds_the_same_best_cycles():
    """The benchmark's second baseline: enumerate_mappings + price_mapping per mapping, uniform bits."""
    import math as _math

    from codesign.compiler.batchtile import Constants, HardwareBatch, LayerBatch, price_mappings
    from codesign.compiler.mapping import Gemm
    from codesign.compiler.naive_pricing import api_search
    from codesign.hw.config import HardwareConfig

    configs = [HardwareConfig(rows=4, cols=8, digit_bits=2), HardwareConfig(rows=8, cols=8, digit_bits=8,
                                                                             axi_data_bits=128)]
    gemms = [Gemm(196, 96, 24, (8,) * 24), Gemm(49, 9, 1, (8,)), Gemm(1, 1280, 100, (8,) * 100)]
    best = price_mappings(HardwareBatch.from_configs(configs), LayerBatch.from_gemms(gemms), Constants()).best()
    loop = api_search(configs, gemms, [1, 1, 1], Constants())
    for h in range(len(configs)):
        for layer in range(len(gemms)):
            assert loop[h][layer] == pytest.approx(float(best["cycles"][h, layer]), rel=1e-5) or \
                (_math.isinf(loop[h][layer]) and _math.isinf(float(best["cycles"][h, layer])))



def test_a_damaged_calibration_file_names_the_file_and_the_key(tmp_path):
    from codesign.compiler.batchtile import load_constants
    from codesign.errors import InputError

    path = tmp_path / "calibration.json"
    path.write_text('{"constants": {"beat": 2.0, "calibrated": true}}')
    assert load_constants(path).beat == 2.0 and load_constants(path).calibrated
    for text, message in [('{"constants": {"beat": 2.0', "calibration: .* expected a valid JSON file written by "),
                          ("{}", "calibration.json constants: 'missing' is not allowed"),
                          ('{"constants": {"beet": 1}}', r"calibration.json constants: \{'beet': 1\} is not allowed"),
                          ('{"constants": {"beat": "1"}}', "calibration.json constants: ")]:
        path.write_text(text)
        with pytest.raises(InputError, match=message):
            load_constants(path)


def random_depthwise(seed: int, count: int = 8) -> list[Gemm]:
    """Depthwise layers of every kernel and stride, from a few pixels to wider than the small config's buffer."""
    rng = random.Random(seed)
    gemms = []
    for i in range(count):
        kh, kw = rng.randint(1, 7), rng.randint(1, 7)
        window = Window(height=rng.randint(kh, 60), width=rng.randint(kw, 130), kernel=(kh, kw),
                        stride=rng.choice((1, 2)), padding=rng.randint(0, min(kh, kw) - 1), images=rng.randint(1, 3))
        n = rng.randint(1, 70)
        bits = (rng.choice(BITS),) * n if i % 3 == 0 else tuple(rng.choice(BITS) for _ in range(n))
        gemms.append(Gemm(window.images * window.out_h * window.out_w, kh * kw, n, bits, window))
    return gemms


@pytest.mark.parametrize("seed", [0, 1])
def test_depthwise_layers_are_priced_as_the_compiler_plans_them(seed):
    """A depthwise layer has two points, the compiler's depthwise program and the per-channel fallback: the naive
    loop (whose fit is `plan_depthwise`'s) agrees with BatchTile, with GEMMs in the same batch."""
    gemms = random_depthwise(seed) + random_gemms(seed, count=2)
    naive = search(CONFIGS, gemms)
    costs = priced(CONFIGS, gemms)
    for h in range(len(CONFIGS)):
        for layer, gemm in enumerate(gemms):
            grid = naive.cycles[h][layer]
            assert [math.isfinite(v) for v in grid] == costs.valid[h, layer].tolist(), (h, gemm)
            if gemm.window is not None:
                assert not any(math.isfinite(v) for v in grid[2:]) and math.isfinite(grid[1])
            for mine, other in zip(grid, costs.cycles[h, layer].double().tolist()):
                if math.isfinite(mine):
                    assert other == pytest.approx(mine, rel=1e-4)
    assert any(costs.valid[h, layer, 0] for h in range(len(CONFIGS)) for layer in range(8))


def test_a_depthwise_window_no_buffer_half_holds_falls_back_and_wide_rows_go_in_strips():
    """Seven rows of one 16-pixel tile's window do not fit 256 bytes: the layer runs as per-channel GEMMs. A row of
    300 pixels does not fit twice in 2 KiB, so its bands are cut into strips, priced as the compiler plans them."""
    cfg = HardwareConfig(rows=16, cols=16, act_buf_bytes=512)
    window = Window(height=20, width=20, kernel=(7, 7), stride=1, padding=3)
    tight = Gemm(400, 49, 16, (8,) * 16, window)
    wide_window = Window(height=9, width=300, kernel=(3, 3), stride=2, padding=1)
    wide = Gemm(wide_window.out_h * 150, 9, 16, (4,) * 16, wide_window)
    small = HardwareConfig(rows=4, cols=4, act_buf_bytes=2048)
    costs = priced([cfg, small], [tight, wide])
    naive = search([cfg, small], [tight, wide])
    assert not costs.valid[0, 0, 0] and costs.valid[0, 0, 1] and naive.index[0][0] == 1
    fallback = priced([cfg], [Gemm(400, 49, 1, (8,))], [16]).best()["cycles"][0, 0]
    assert float(costs.cycles[0, 0, 1]) == pytest.approx(float(fallback))
    assert bool(costs.valid[1, 1, 0]) and plan_depthwise(small, wide).strips > 1
    assert float(costs.cycles[1, 1, 0]) == pytest.approx(naive.cycles[1][1][0], rel=1e-4)


@pytest.mark.parametrize("cfg", [HardwareConfig(rows=4, cols=4, digit_bits=2, axi_data_bits=128, act_buf_bytes=256,
                                                wgt_buf_bytes=256, out_buf_bytes=256, param_buf_bytes=256),
                                 HardwareConfig(rows=8, cols=8, digit_bits=8)], ids=["4x4-small", "8x8-g8"])
def test_dram_bytes_are_the_programs_own_with_uniform_bits(cfg):
    """Every mapping of a few GEMMs and a depthwise layer: the model's DRAM bytes equal what the compiled program
    moves (its DMA commands and its own fetch), exactly; the RTL's counters equal the latter (tests/sim/system).
    Mixed bits are priced through the average column tile, so only uniform bits are exact."""
    rng = np.random.default_rng(0)
    for m, k, n, bits in ((13, 40, 11, 2), (30, 100, 17, 8), (16, 9, 1, 5), (6, 600, 5, 3)):
        gemm = Gemm(m, k, n, (bits,) * n)
        w_bits = np.full(n, bits)
        for mapping in (mp for mp in enumerate_mappings(cfg, gemm) if mp.group):
            a, w, requant = random_gemm(cfg, m, k, n, w_bits, rng)
            program = compile_gemm(cfg, a, w, w_bits, requant, mapping)
            assert predict_dram_bytes(cfg, gemm, mapping) == program.dram_bytes, (gemm, mapping)
    channels, height, width, kernel, stride, padding = 10, 9, 11, 3, 2, 1
    window = Window(height, width, (kernel, kernel), stride, padding)
    gemm = Gemm(window.out_h * window.out_w, kernel * kernel, channels, (4,) * channels, window)
    if cfg.act_buf_bytes >= 1024:                  # the small buffers take no frame row of this layer
        x = rng.integers(0, 1 << cfg.act_bits, size=(1, channels, height, width))
        _, w, requant = random_gemm(cfg, 1, kernel * kernel, channels, np.full(channels, 4), rng)
        program = compile_depthwise(cfg, x, w.T.reshape(channels, kernel, kernel), np.full(channels, 4), requant,
                                    stride=stride, padding=padding)
        assert predict_dram_bytes(cfg, gemm, Mapping()) == program.dram_bytes

"""The mapping space: plan geometry computed by hand, the fit rules with the field they name, enumeration, defaults."""

import pytest

from codesign.compiler.mapping import (
    K_SPLITS,
    Gemm,
    Mapping,
    check_fits,
    enumerate_mappings,
    fit_problem,
    plan,
    simple_mapping,
)
from codesign.errors import InputError
from codesign.hw.config import HardwareConfig

# words: act 4 bytes (4 rows x 8 bits), wgt 1 byte (4 digits of 2 bits), param 32 bytes, out 4 bytes; bus 16 bytes
CFG = HardwareConfig(rows=4, cols=4, digit_bits=2, axi_data_bits=128, act_buf_bytes=1024, wgt_buf_bytes=512,
                     out_buf_bytes=256, param_buf_bytes=256)
GEMM = Gemm(10, 20, 6, (8, 2, 4, 2, 8, 3))


def test_mapping_and_gemm_refuse_bad_fields():
    with pytest.raises(InputError, match="^mapping.order: 'rows' is not allowed; expected one of"):
        Mapping(order="rows")
    with pytest.raises(InputError, match="^mapping.bn: 0 is not allowed"):
        Mapping(bn=0)
    with pytest.raises(InputError, match=r"^gemm.bits: 2 is not allowed; expected one bit width per output channel "
                                         r"\(3\)"):
        Gemm(1, 1, 3, (8, 8))


def test_plan_geometry_by_hand():
    p = plan(CFG, GEMM, Mapping())
    assert p.permutation == (1, 3, 5, 2, 0, 4)                 # channels sorted by bits, stably
    assert p.tile_bits == (4, 8)                               # sorted [2, 2, 3, 4 | 8, 8, pad, pad]
    assert (p.m_tiles, p.n_tiles, p.chunks, p.resident) == (3, 2, ((0, 20),), True)
    assert p.act_slot == 80                                    # 20 words of 4 bytes
    assert p.wgt_slots == ((48,), (80,))                       # 20 x 2 digits -> 40 -> 48; 20 x 4 digits -> 80
    assert (p.param_slot, p.out_slot, p.row_major_possible) == (32, 16, False)
    assert p.act_block_bytes() == 80 and p.wgt_block_bytes() == 80
    wide = plan(CFG, GEMM, Mapping(bm=3, bn=2))
    assert (wide.act_block_bytes(), wide.wgt_block_bytes()) == (240, 128)


def test_plan_without_grouping_and_with_k_chunks():
    ungrouped = plan(CFG, GEMM, Mapping(group=False))
    assert ungrouped.permutation == tuple(range(6)) and ungrouped.tile_bits == (8, 8)
    chunked = plan(CFG, GEMM, Mapping(kc=7))
    assert chunked.chunks == ((0, 7), (7, 14), (14, 20)) and not chunked.resident
    assert chunked.act_slot == 32                              # 7 x 4 = 28 bytes, bus-aligned
    assert chunked.wgt_slots == ((16, 16, 16), (32, 32, 32))   # 14, 14, 12 and 28, 28, 24 bytes, bus-aligned
    assert plan(CFG, GEMM, Mapping(kc=20)).chunks == ((0, 20),)  # kc = K is the whole K


def test_row_major_output_needs_whole_beats():
    cfg = HardwareConfig(rows=8, cols=8, axi_data_bits=64)         # an output row of 8 bytes: one beat
    assert plan(cfg, Gemm(8, 8, 8, (8,) * 8), Mapping()).row_major_possible


@pytest.mark.parametrize("changes, k, mapping, problem", [
    ({}, 20, Mapping(bm=2, kc=7), "a K split needs bm = bn = 1"),
    ({}, 20, Mapping(bm=4), "a block larger than the whole GEMM"),
    ({}, 20, Mapping(bn=3), "a block larger than the whole GEMM"),
    ({"max_k": 16}, 20, Mapping(), "K chunk 20 exceeds max_k=16"),
    ({}, 20, Mapping(kc=25), "K chunk 25 exceeds max_k"),
    ({"act_buf_bytes": 256}, 20, Mapping(bm=3), "act_buf_bytes=256 holds less than two blocks of 240 bytes"),
    # both column tiles at K = 40: 40 x 2 digits + 40 x 4 digits of one byte
    ({"wgt_buf_bytes": 256}, 40, Mapping(bn=2), "wgt_buf_bytes=256 holds less than two blocks of 240 bytes"),
])
def test_fit_problems_say_what_does_not_fit(changes, k, mapping, problem):
    p = plan(CFG.replace(**changes), Gemm(10, k, 6, GEMM.bits), mapping)
    assert problem in fit_problem(p)
    with pytest.raises(InputError) as info:
        check_fits(p, "conv3")
    assert info.value.field.startswith(f"conv3 (M=10 K={k} N=6) mapping {{")
    assert problem in str(info.value.value)


def test_a_fitting_mapping_has_no_problem():
    assert fit_problem(plan(CFG, GEMM, Mapping(bm=3, bn=2))) is None
    check_fits(plan(CFG, GEMM, Mapping()))


def test_enumerated_mappings_all_fit_and_cover_both_orders():
    found = enumerate_mappings(CFG, GEMM)
    assert found and len(set(found)) == len(found)
    assert all(fit_problem(plan(CFG, GEMM, m)) is None for m in found)
    assert {m.order for m in found} == {"weights", "acts"} and {m.group for m in found} == {True, False}
    assert Mapping(bm=3, bn=2, order="acts") in found and Mapping() in found
    # K chunks: the largest that fits (bm = bn = 1) and its halvings, all below K
    chunks = sorted({m.kc for m in found if m.kc}, reverse=True)
    assert chunks and chunks[0] == 10 and all(1 <= kc < GEMM.k for kc in chunks)
    assert chunks == sorted({10 >> h for h in range(K_SPLITS)} - {0}, reverse=True)


def test_uniform_bits_are_not_enumerated_twice():
    gemm = Gemm(10, 20, 6, (4,) * 6)
    assert all(m.group for m in enumerate_mappings(CFG, gemm))


def test_a_k_larger_than_the_buffers_only_has_k_splits():
    gemm = Gemm(4, 600, 4, (8,) * 4)
    found = enumerate_mappings(CFG, gemm)
    assert found and all(m.kc and (m.bm, m.bn) == (1, 1) for m in found)
    largest = max(m.kc for m in found)
    assert fit_problem(plan(CFG, gemm, Mapping(kc=largest))) is None
    assert fit_problem(plan(CFG, gemm, Mapping(kc=largest + 1))) is not None


def test_simple_mapping():
    assert simple_mapping(CFG, GEMM) == Mapping()
    big = Gemm(4, 600, 4, (8,) * 4)
    mapping = simple_mapping(CFG, big)
    assert mapping.kc and fit_problem(plan(CFG, big, mapping)) is None
    assert fit_problem(plan(CFG, big, Mapping(kc=mapping.kc + 1))) is not None
    # an output buffer of one tile is refused by HardwareConfig itself; a parameter buffer of one word is not
    tiny_param = HardwareConfig(rows=4, cols=64, param_buf_bytes=256)     # one parameter word is 512 bytes
    with pytest.raises(InputError, match="param_buf_bytes=256 holds less than two blocks") as info:
        simple_mapping(tiny_param, Gemm(16, 8, 64, (8,) * 64), "fc")
    assert info.value.field.startswith("fc (M=16 K=8 N=64)")

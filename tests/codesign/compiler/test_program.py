"""The compiler: programs that respect the token protocol and the buffers, and run bit-exact on the RTL for every
mapping of the space."""

from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codesign.compiler.mapping import (
    MAX_ROW_BYTES,
    Gemm,
    Mapping,
    enumerate_mappings,
    fit_problem,
    plan,
    simple_mapping,
)
from codesign.compiler.program import compile_gemm, dma_rows
from codesign.compiler.schedule import Load
from codesign.errors import InputError
from codesign.hw.config import HardwareConfig
from codesign.hw.isa import Compute, Dma, Opcode
from codesign.hw.reference import gemm_requant
from sim.runs.gemm import check_gemm_job, gemm_job, random_gemm
from sim.system.runner import run_session

SMALL = dict(act_buf_bytes=256, wgt_buf_bytes=256, out_buf_bytes=256, param_buf_bytes=256)
CFG = HardwareConfig(rows=4, cols=4, digit_bits=2, axi_data_bits=128, **SMALL)     # tests/sim/test_system's build
ROOMY = HardwareConfig(rows=4, cols=4, digit_bits=2, axi_data_bits=128, act_buf_bytes=2048, wgt_buf_bytes=1024,
                       out_buf_bytes=256, param_buf_bytes=256)


def _operands(cfg, m, k, n, seed, bits=None):
    rng = np.random.default_rng(seed)
    bits = rng.integers(2, cfg.weight_bits_max + 1, n) if bits is None else np.asarray(bits)
    a, w, requant = random_gemm(cfg, m, k, n, bits, rng)
    return a, w, bits, requant, gemm_requant(cfg, a, w, bits, requant, act_signed=False)


def _token_traffic(commands) -> Counter:
    """Tokens sent minus tokens taken on each of the four queues (all zero for a balanced program)."""
    balance = Counter()
    unit = {Opcode.LOAD_ACT: "load", Opcode.LOAD_WGT: "load", Opcode.LOAD_PARAM: "load", Opcode.COMPUTE: "compute",
            Opcode.STORE: "store"}
    chain = ["load", "compute", "store"]
    for c in commands:
        if c.opcode not in unit:
            continue
        here = chain.index(unit[c.opcode])
        for flag, other, sending in (("push_next", 1, True), ("push_prev", -1, True), ("pop_next", 1, False),
                                     ("pop_prev", -1, False)):
            if getattr(c, flag):
                src, dst = (here, here + other) if sending else (here + other, here)
                balance[(chain[src], chain[dst])] += 1 if sending else -1
    return balance


@given(m=st.integers(1, 40), k=st.integers(1, 300), n=st.integers(1, 30), seed=st.integers(0, 1000))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_enumerated_mapping_fits_and_balances_its_tokens(m, k, n, seed):
    a, w, bits, requant, _ = _operands(ROOMY, m, k, n, seed)
    gemm = Gemm(m, k, n, tuple(int(b) for b in bits))
    mappings = enumerate_mappings(ROOMY, gemm)
    assert mappings, "the space always holds at least the K-split mapping"
    for mapping in mappings[:: max(1, len(mappings) // 6)]:
        assert fit_problem(plan(ROOMY, gemm, mapping)) is None
        program = compile_gemm(ROOMY, a, w, bits, requant, mapping)
        assert all(v == 0 for v in _token_traffic(program.commands).values()), mapping
        for c in program.commands:                  # every transfer inside its buffer
            if isinstance(c, Dma):
                size = {Opcode.LOAD_ACT: ROOMY.act_buf_bytes, Opcode.LOAD_WGT: ROOMY.wgt_buf_bytes,
                        Opcode.LOAD_PARAM: ROOMY.param_buf_bytes, Opcode.STORE: ROOMY.out_buf_bytes}[c.opcode]
                assert c.buf_addr + c.bytes <= size
            if isinstance(c, Compute):
                assert c.k <= ROOMY.max_k


def test_grouping_sorts_channels_by_bits_and_decoding_undoes_it():
    bits = (8, 2, 8, 2, 3, 2, 8, 2)
    p = plan(ROOMY, Gemm(4, 16, 8, bits), Mapping(group=True))
    assert p.tile_bits == (2, 8)                    # the four 2-bit channels share a column tile
    assert sorted(p.permutation) == list(range(8))
    assert plan(ROOMY, Gemm(4, 16, 8, bits), Mapping(group=False)).tile_bits == (8, 8)


def test_a_layer_that_fits_no_mapping_is_an_error_naming_the_buffer():
    tiny = HardwareConfig(rows=4, cols=32, digit_bits=1, axi_data_bits=256, **SMALL)   # 256-byte parameter words
    gemm = Gemm(64, 9, 64, (4,) * 64)
    assert enumerate_mappings(tiny, gemm) == []
    with pytest.raises(InputError, match=r"\(M=64 K=9 N=64\).*'param_buf_bytes=256 holds less than two blocks of 256"):
        simple_mapping(tiny, gemm)
    with pytest.raises(InputError, match=r"conv7 \(M=64 K=9 N=64\).*wgt_buf_bytes=256 holds less than two blocks"):
        compile_gemm(tiny, *(_operands(tiny, 64, 9, 64, 0)[:4]), Mapping(), name="conv7")


def test_every_mapping_runs_bit_exact_on_the_rtl():
    """One simulation: every valid mapping of two GEMMs (one whose K fits the buffers, one that must be split)."""
    jobs, checks = [], []
    for m, k, n, seed in ((13, 40, 11, 3), (6, 600, 5, 4)):
        a, w, bits, requant, want = _operands(ROOMY, m, k, n, seed)
        gemm = Gemm(m, k, n, tuple(int(b) for b in bits))
        mappings = enumerate_mappings(ROOMY, gemm)
        resident = [mp for mp in mappings if mp.kc == 0]
        assert (len({mp.order for mp in resident}), len({(mp.bm, mp.bn) for mp in resident}) > 4) == (2, True) \
            if k == 40 else not resident
        for mapping in mappings:
            program = compile_gemm(ROOMY, a, w, bits, requant, mapping)
            jobs.append(gemm_job(program, latency=5, backpressure=0.1, seed=len(jobs)))
            checks.append((mapping, program, want))
    assert len(jobs) >= 10
    results = run_session(ROOMY, jobs)
    for (mapping, program, want), outputs in zip(checks, results, strict=True):
        report = check_gemm_job(program, want, outputs)
        assert report["bit_exact"], (mapping, report)
        assert report["compute_cycles"] == program.compute_cycles, mapping


def test_simple_mapping_is_the_whole_k_when_it_fits():
    assert simple_mapping(ROOMY, Gemm(8, 64, 8, (8,) * 8)) == Mapping()
    split = simple_mapping(CFG, Gemm(8, 1000, 8, (8,) * 8))
    assert 1 <= split.kc < 1000 and (split.bm, split.bn) == (1, 1)


@given(m=st.integers(1, 20), k=st.integers(1, 700), n=st.integers(1, 14), seed=st.integers(0, 1 << 16),
       pick=st.floats(0, 1))
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_random_mapping_of_a_random_gemm_runs_bit_exact_on_the_rtl(m, k, n, seed, pick):
    a, w, bits, requant, want = _operands(ROOMY, m, k, n, seed)
    mappings = enumerate_mappings(ROOMY, Gemm(m, k, n, tuple(int(b) for b in bits)))
    mapping = mappings[min(int(pick * len(mappings)), len(mappings) - 1)]
    program = compile_gemm(ROOMY, a, w, bits, requant, mapping)
    outputs = run_session(ROOMY, [gemm_job(program, latency=3, backpressure=0.2, seed=seed)])[0]
    assert check_gemm_job(program, want, outputs)["bit_exact"], mapping


@pytest.mark.parametrize("nbytes, shapes", [(64, [(1, 64)]), (MAX_ROW_BYTES, [(1, MAX_ROW_BYTES)]),
                                            (3 * MAX_ROW_BYTES + 16, [(3, MAX_ROW_BYTES), (1, 16)])])
def test_a_load_is_cut_into_dma_rows_of_at_most_max_row_bytes(nbytes, shapes):
    commands = dma_rows(Load(Opcode.LOAD_WGT, dram_addr=0x4000, buf_addr=0x100, nbytes=nbytes))
    assert [(c.rows, c.row_bytes) for c in commands] == shapes
    assert sum(c.bytes for c in commands) == nbytes
    assert all(c.opcode == Opcode.LOAD_WGT for c in commands)
    last = commands[-1]
    assert last.dram_addr - 0x4000 == last.buf_addr - 0x100 == nbytes - last.bytes

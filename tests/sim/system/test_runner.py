"""The whole accelerator on Verilator: GEMM and depthwise programs from simulated DRAM, latency and backpressure,
errors."""

import numpy as np
import pytest

from codesign.compiler.mapping import Gemm, simple_mapping
from codesign.compiler.program import PROGRAM_BASE, compile_depthwise, compile_gemm, concatenate
from codesign.hw import csr, isa
from codesign.hw.config import HardwareConfig
from codesign.hw.isa import Compute, Dma, DwCompute, End, Opcode
from codesign.hw.reference import Requant, depthwise_requant, gemm_requant
from sim.build import simulator_available
from sim.runs.gemm import check_gemm_job, gemm_job, random_gemm
from sim.system.runner import run_session

SMALL = dict(act_buf_bytes=256, wgt_buf_bytes=256, out_buf_bytes=256, param_buf_bytes=256)
CONFIGS = {
    "4x4-g2-bus128-small": HardwareConfig(rows=4, cols=4, digit_bits=2, axi_data_bits=128, **SMALL),
    "3x5-g1-bus256": HardwareConfig(rows=3, cols=5, digit_bits=1, axi_data_bits=256, **SMALL),
    "8x8-g8-bus64": HardwareConfig(rows=8, cols=8, digit_bits=8, axi_data_bits=64),
}


def _gemm(cfg, m, k, n, seed, act_signed=False, out_layout="tiles", base=PROGRAM_BASE):
    rng = np.random.default_rng(seed)
    bits = rng.integers(2, cfg.weight_bits_max + 1, n)
    a, w, requant = random_gemm(cfg, m, k, n, bits, rng)
    if act_signed:
        a = a - (1 << (cfg.act_bits - 1))
        requant = type(requant)(bias=requant.bias, mult=requant.mult, shift=requant.shift, relu=False,
                                out_bits=requant.out_bits)
    want = gemm_requant(cfg, a, w, bits, requant, act_signed=act_signed)
    mapping = simple_mapping(cfg, Gemm(len(a), k, n, tuple(bits.tolist())))
    return compile_gemm(cfg, a, w, bits, requant, mapping, act_signed=act_signed, out_layout=out_layout,
                        base=base), want


# Per config, depthwise layers (channels, height, width, kernel, stride, padding): every kernel and stride, odd
# sizes, channels not a multiple of the columns; the small buffers hold only a few narrow frame rows.
JOINED_BASE = 0xC00000
DEPTHWISE = {
    "4x4-g2-bus128-small": [(6, 5, 3, 3, 1, 1), (5, 6, 13, 3, 1, 1)],          # the second in strips
    "3x5-g1-bus256": [(7, 6, 9, 2, 1, 1), (5, 5, 7, 1, 2, 0)],                 # 256 bytes: small windows only
    "8x8-g8-bus64": [(13, 10, 10, 3, 2, 1), (9, 8, 11, 7, 1, 3), (10, 9, 12, 5, 2, 2), (8, 12, 12, 7, 2, 3)],
}


def _depthwise(cfg, channels, height, width, kernel, stride, padding, seed, act_signed=False, base=PROGRAM_BASE):
    """A random depthwise layer (mixed bits 2..8 per channel) as a program, and its reference output."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(2, cfg.weight_bits_max + 1, channels)
    lo = -(1 << (cfg.act_bits - 1)) if act_signed else 0
    x = rng.integers(lo, lo + (1 << cfg.act_bits), size=(1, channels, height, width))
    w = np.stack([rng.integers(-(1 << (b - 1)), 1 << (b - 1), size=(kernel, kernel)) for b in bits])
    requant = Requant(bias=rng.integers(-(1 << 10), 1 << 10, channels), mult=rng.integers(1 << 14, 1 << 15, channels),
                      shift=np.full(channels, 16 + cfg.act_bits), relu=not act_signed, out_bits=cfg.act_bits)
    want = depthwise_requant(cfg, x, w, bits, requant, stride=stride, padding=padding, act_signed=act_signed)
    want = want.transpose(0, 2, 3, 1).reshape(-1, channels)                  # C[M, N]: NHWC pixels by channels
    program = compile_depthwise(cfg, x, w, bits, requant, stride=stride, padding=padding, act_signed=act_signed,
                                base=base)
    return program, want


def _one_program(parts):
    """A job running ``parts`` ((program, want) each, DRAM images apart) as one program (`concatenate`), reading
    every part's output region back."""
    joined = isa.assemble(concatenate([program for program, _ in parts]))
    return {"memory": {"latency": 20, "backpressure": 0.2, "seed": 3},
            "steps": [*({"op": "write", "addr": addr, "data": blob.hex()}
                        for program, _ in parts for addr, blob in program.memory[1:]),
                      {"op": "write", "addr": JOINED_BASE, "data": joined.hex()},
                      {"op": "run", "prog_addr": JOINED_BASE, "length": len(joined) // isa.COMMAND_BYTES,
                       "timeout_cycles": 200_000},
                      *({"op": "read", "addr": program.out_addr, "bytes": program.out_bytes} for program, _ in parts)]}


def _bad_run(commands_or_blob, timeout=5000):
    blob = commands_or_blob if isinstance(commands_or_blob, bytes) else isa.assemble(commands_or_blob)
    return [{"op": "write", "addr": 0x400000, "data": blob.hex()},
            {"op": "run", "prog_addr": 0x400000, "length": len(blob) // isa.COMMAND_BYTES, "timeout_cycles": timeout}]


def _then_recover(bad_steps, program, **memory):
    """A failing program, SOFT_RESET, then a good GEMM: its results must be right."""
    good = gemm_job(program)
    return {"memory": memory, "steps": bad_steps + [{"op": "soft_reset"}] + good["steps"]}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_system(name):
    cfg = CONFIGS[name]
    words = isa.word_bytes(cfg)
    bus = words.bus
    big = cfg.act_buf_bytes < 1024           # small buffers: K is split into chunks, the array accumulates
    m, k, n = (13, 70, 11) if big else (19, 37, 21)
    plain, want_plain = _gemm(cfg, m, k, n, seed=1)
    signed, want_signed = _gemm(cfg, m - 4, k + 9, n - 3, seed=2, act_signed=True)
    # C row-major through 2-D strided stores where the output word is whole beats (the 8x8 array on a 64-bit bus).
    rows_possible = isa.word_bytes(cfg).out % bus == 0
    slow, want_slow = _gemm(cfg, m + 2, k, n + 2, seed=3, out_layout="rows" if rows_possible else "tiles")
    operand_addr, operand = plain.memory[1]
    zero_params = 0x500000

    jobs = [
        {"steps": [{"op": "identify"}]},
        gemm_job(plain),
        gemm_job(signed, backpressure=0.3, seed=5),
        gemm_job(slow, latency=100, backpressure=0.2, seed=6),
        # ---- errors: the right code, nothing hangs, and the next program after a soft reset is right
        _then_recover(_bad_run(bytes([0x0F]) + bytes(15)), plain),
        _then_recover(_bad_run([Dma(opcode=Opcode.LOAD_ACT, dram_addr=0x10000, buf_addr=cfg.act_buf_bytes - bus,
                                    rows=1, row_bytes=2 * bus), End()]), plain),
        _then_recover(_bad_run([Dma(opcode=Opcode.LOAD_WGT, dram_addr=0x10000 + bus // 2, rows=1, row_bytes=bus),
                                End()]), plain),
        _then_recover(_bad_run([Dma(opcode=Opcode.LOAD_PARAM, dram_addr=zero_params, rows=1,
                                    row_bytes=max(words.param, bus), push_next=True),
                                Compute(k=1, pop_prev=True), End()]), plain),
        _then_recover(_bad_run([Dma(opcode=Opcode.LOAD_ACT, dram_addr=0x10000, rows=1, row_bytes=bus)]), plain),
        {"memory": {"faults": [(operand_addr, operand_addr + len(operand))]}, "steps": gemm_job(plain)["steps"]},
        {"memory": {"faults": [(plain.out_addr, plain.out_addr + plain.out_bytes)], "latency": 7},
         "steps": gemm_job(plain)["steps"]},
        gemm_job(plain),                      # after the AXI errors (the last one without a soft reset)
    ]
    jobs[-1]["steps"].insert(0, {"op": "soft_reset"})
    # ---- depthwise: layers between GEMMs in the same session, one under latency and backpressure; DW_COMPUTE's
    # own field checks
    depthwise = [_depthwise(cfg, *shape, seed=20 + i, act_signed=i == 1) for i, shape in enumerate(DEPTHWISE[name])]
    dw_base = len(jobs)
    jobs += [gemm_job(program, latency=40 * (i % 2), backpressure=0.3 * (i % 2), seed=8 + i)
             for i, (program, _) in enumerate(depthwise)] + [gemm_job(plain)]
    # a depthwise layer between two pointwise layers in one program (independent operands, DRAM images apart)
    one_program = [_gemm(cfg, 2 * cfg.rows + 1, 16, cfg.cols + 3, seed=30, base=0x400000),
                   _depthwise(cfg, *DEPTHWISE[name][0], seed=31, base=0x600000),
                   _gemm(cfg, 3 * cfg.rows, 24, 2 * cfg.cols - 1, seed=32, base=0x800000)]
    jobs.append(_one_program(one_program))
    dw_errors = len(jobs)
    dw_params = [Dma(opcode=Opcode.LOAD_PARAM, dram_addr=zero_params, rows=1, row_bytes=max(words.param, bus),
                     push_next=True)]
    jobs += [_then_recover(_bad_run(dw_params + [DwCompute(kh=0, pop_prev=True), End()]), plain),
             _then_recover(_bad_run(dw_params + [DwCompute(row_pitch=words.out + words.out // 2, pop_prev=True),
                                                 End()]), plain),
             _then_recover(_bad_run(dw_params + [DwCompute(kh=7, kw=7, row_pitch=cfg.act_buf_bytes // 4,
                                                           pop_prev=True), End()]), plain)]
    results = run_session(cfg, jobs)

    identity = results[0][0]
    assert identity["version"] == csr.VERSION
    assert identity["config"] == {r.name[4:].lower(): v for r, v in
                                  ((r, csr.config_values(cfg)[r.name]) for r in csr.REGISTERS
                                   if r.name.startswith("CFG_"))}

    for index, (program, want) in ((1, (plain, want_plain)), (2, (signed, want_signed)), (3, (slow, want_slow))):
        report = check_gemm_job(program, want, results[index])
        assert report["bit_exact"], (index, report)
        assert report["compute_cycles"] == program.compute_cycles       # the array's own formula, exactly
        assert report["bytes_read"] + report["bytes_written"] == program.dram_bytes
        assert report["bytes_written"] >= program.plan.gemm.m * program.plan.gemm.n * cfg.act_bits // 8
        assert 0 < report["stall_cycles"] < report["cycles"]

    expected_errors = [
        (4, "ILLEGAL_OPCODE", 0), (5, "BUFFER_RANGE", 0), (6, "ALIGNMENT", 0), (7, "BAD_FIELD", None),
        (8, "PROGRAM_OVERRUN", 1),
    ]
    for index, code, pc in expected_errors:
        bad = results[index][1]
        assert bad["error"] == code and bad["done"] and not bad["timed_out"], (index, bad)
        if pc is not None:
            assert bad["error_pc"] == pc
        assert check_gemm_job(plain, want_plain, results[index])["bit_exact"], index

    for index, code in ((9, "READ_RESPONSE"), (10, "WRITE_RESPONSE")):
        run = results[index][-2]
        assert run["error"] == code and run["done"] and not run["timed_out"], (index, run)
    assert check_gemm_job(plain, want_plain, results[11])["bit_exact"]

    for index, (program, want) in enumerate(depthwise):
        report = check_gemm_job(program, want, results[dw_base + index])
        assert report["bit_exact"], (index, report)
        assert report["compute_cycles"] == program.compute_cycles       # `depthwise_tile_cycles`, exactly
        assert report["bytes_read"] + report["bytes_written"] == program.dram_bytes
    assert check_gemm_job(plain, want_plain, results[dw_errors - 2])["bit_exact"]
    run, *outputs = results[dw_errors - 1][-4:]
    assert run["error"] == "NONE" and run["done"] and not run["timed_out"], run
    for (program, want), blob in zip(one_program, outputs, strict=True):
        np.testing.assert_array_equal(program.decode_c(bytes.fromhex(blob)), want)
    assert run["counters"]["compute_cycles"] == sum(program.compute_cycles for program, _ in one_program)
    for index, code in ((dw_errors, "BAD_FIELD"), (dw_errors + 1, "ALIGNMENT"), (dw_errors + 2, "BUFFER_RANGE")):
        bad = results[index][1]
        assert bad["error"] == code and bad["done"] and not bad["timed_out"], (index, bad)
        assert bad["error_pc"] == 1
        assert check_gemm_job(plain, want_plain, results[index])["bit_exact"], index


@pytest.mark.skipif(not simulator_available("icarus"), reason="iverilog is not installed")
def test_system_on_icarus():
    """The second simulator on a small configuration: a GEMM under latency and backpressure, an error, recovery."""
    cfg = HardwareConfig(rows=2, cols=3, digit_bits=2, axi_data_bits=64, **SMALL)
    program, want = _gemm(cfg, 5, 40, 7, seed=9)
    jobs = [gemm_job(program, latency=13, backpressure=0.25, seed=2),
            _then_recover(_bad_run(bytes([0x0F]) + bytes(15)), program)]
    results = run_session(cfg, jobs, simulator="icarus")
    assert check_gemm_job(program, want, results[0])["bit_exact"]
    assert results[1][1]["error"] == "ILLEGAL_OPCODE"
    assert check_gemm_job(program, want, results[1])["bit_exact"]

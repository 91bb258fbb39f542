"""sim.runs.layer without the RTL: a layer's GEMMs compiled with their best mappings, and its report's arithmetic."""

import dataclasses

import numpy as np
import pytest

from codesign.compiler.batchtile import Constants
from codesign.compiler.mapping import Mapping
from codesign.errors import InputError
from codesign.hw.config import HardwareConfig
from codesign.ir.layers import Conv2d, HostOp, Linear, gemms
from sim.runs.gemm import gemm_job
from sim.runs.layer import compile_layer, layer_report

CFG = HardwareConfig(rows=4, cols=4, digit_bits=2, axi_data_bits=128, act_buf_bytes=256, wgt_buf_bytes=256,
                     out_buf_bytes=256, param_buf_bytes=256)
CONSTANTS = Constants(calibrated=True)


def test_a_conv_layer_is_one_gemm_with_its_best_mapping():
    layer = Conv2d("conv", 2, 6, 3, padding=1, stride=2, in_h=6, in_w=6, batch=2, w_bits=(2, 3, 4, 5, 6, 8))
    compiled = compile_layer(CFG, layer, seed=1, latency=15, constants=CONSTANTS)
    (program,), (want,), (best,) = compiled.programs, compiled.expected, compiled.mapped
    assert program.plan.gemm == gemms(layer)[0].gemm
    assert want.shape == (2 * 3 * 3, 6) and want.min() >= 0 and len(np.unique(want)) > 3   # ReLU, unsigned
    assert program.plan.mapping == Mapping(**best["mapping"])
    assert compiled.jobs == [gemm_job(program, latency=15)]
    assert compiled.counts == [1] and (compiled.latency, compiled.seed, compiled.calibrated) == (15, 1, True)
    again = compile_layer(CFG, layer, seed=1, latency=15, constants=CONSTANTS)
    np.testing.assert_array_equal(again.expected[0], want)                   # the seed decides the operands
    assert not np.array_equal(compile_layer(CFG, layer, seed=2, constants=CONSTANTS).expected[0], want)


def test_a_depthwise_layer_runs_whole_on_the_depthwise_mode():
    layer = Conv2d("dw", 6, 6, 3, padding=1, groups=6, in_h=4, in_w=5, w_bits=(2, 4, 2, 8, 4, 2))
    compiled = compile_layer(CFG, layer, constants=CONSTANTS)
    (program,), (want,), (best,) = compiled.programs, compiled.expected, compiled.mapped
    assert program.plan.gemm == gemms(layer)[0].gemm and best["depthwise"] and compiled.counts == [1]
    assert want.shape == (4 * 5, 6) and len(np.unique(want)) > 1
    assert program.plan.strips > 1                       # 256 bytes hold three rows of one tile's window only


def test_a_depthwise_layer_the_buffers_cannot_window_runs_one_group_per_bit_pattern():
    """Stride 2: three rows of a 4-pixel tile's 9-pixel window (48 bytes each) overfill a 128-byte half."""
    layer = Conv2d("dw", 6, 6, 3, padding=1, stride=2, groups=6, in_h=4, in_w=4, w_bits=(2, 4, 2, 8, 4, 2))
    compiled = compile_layer(CFG, layer, constants=CONSTANTS)
    assert [p.plan.gemm.bits for p in compiled.programs] == [(2,), (4,), (8,)]
    assert compiled.counts == [3, 2, 1]
    assert all(e.shape == (4, 1) for e in compiled.expected)
    assert [m["name"] for m in compiled.mapped] == ["dw[0][2-bit]", "dw[0][4-bit]", "dw[0][8-bit]"]


def test_a_host_layer_is_refused():
    with pytest.raises(InputError, match="^pool: 'HostOp' is not allowed"):
        compile_layer(CFG, HostOp("pool", "global_avgpool", (4, 2, 2)), constants=CONSTANTS)


def test_the_report_sums_each_gemm_times_its_count():
    """Outputs whose C is what the reference expects (made so here), and counters per program."""
    layer = Conv2d("dw", 4, 4, 3, padding=1, stride=2, groups=4, in_h=4, in_w=4, w_bits=(2, 8, 2, 2))
    compiled = compile_layer(CFG, layer, constants=CONSTANTS)                 # per-channel GEMMs (see above)
    blobs = [bytes(p.out_bytes) for p in compiled.programs]
    compiled = dataclasses.replace(compiled, expected=[p.decode_c(b) for p, b in zip(compiled.programs, blobs)])
    results = []
    for i, blob in enumerate(blobs):
        counters = {"cycles": 1000 + i, "compute_cycles": 100, "stall_cycles": 10, "bytes_read": 500 + i,
                    "bytes_written": 20}
        results.append([{"done": True, "error": "NONE", "error_pc": 0, "timed_out": False, "counters": counters},
                        blob.hex()])
    report = layer_report(compiled, results, CFG)
    assert compiled.counts == [3, 1] and report["bit_exact"]
    assert report["cycles_measured"] == 1000 * 3 + 1001 * 1
    assert report["dram_bytes_measured"] == 520 * 3 + 521 * 1
    assert report["cycles_predicted"] == pytest.approx(sum(m["cycles"] for m in compiled.mapped))
    assert report["dram_bytes_predicted"] == pytest.approx(sum(m["dram_bytes"] for m in compiled.mapped))
    assert report["mapping"] == [m["mapping"] for m in compiled.mapped]
    assert [g["cycles_measured"] for g in report["gemms"]] == [1000, 1001]
    assert [g["count"] for g in report["gemms"]] == [3, 1]
    assert report["layer"] == "dw" and report["config"] == CFG.to_dict()

    results[1][-1] = (bytes([1]) * compiled.programs[1].out_bytes).hex()       # another C for the second GEMM
    assert not layer_report(compiled, results, CFG)["bit_exact"]


def test_a_single_gemm_layer_reports_its_mapping_plainly():
    layer = Linear("fc", 24, 5, batch=3)
    compiled = compile_layer(CFG, layer, constants=CONSTANTS)
    blob = bytes(compiled.programs[0].out_bytes)
    compiled = dataclasses.replace(compiled, expected=[compiled.programs[0].decode_c(blob)])
    run = {"done": True, "error": "NONE", "error_pc": 0, "timed_out": False,
           "counters": {"cycles": 5, "compute_cycles": 1, "stall_cycles": 1, "bytes_read": 1, "bytes_written": 1}}
    report = layer_report(compiled, [[run, blob.hex()]], CFG)
    assert report["mapping"] == compiled.mapped[0]["mapping"]
    assert compiled.expected[0].shape == (3, 5)

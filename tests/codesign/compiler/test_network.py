"""A whole integer network compiled without simulation: model checks, per-layer programs and mappings, files."""

import json

import numpy as np
import pytest
import torch

from codesign.compiler.mapping import Mapping
from codesign.compiler.network import check_model, compile_layer, compile_network, price_network, write_programs
from codesign.errors import InputError
from codesign.hw import isa
from codesign.hw.config import HardwareConfig
from codesign.ir.executor import run_model
from codesign.quant.export import export_quantnet
from codesign.quant.qmodel import build_quantnet

CFG = HardwareConfig(rows=4, cols=4, digit_bits=2, axi_data_bits=128, act_buf_bytes=2048, wgt_buf_bytes=1024,
                     out_buf_bytes=256, param_buf_bytes=256)


def _conv(cin, cout, kernel, *, stride=1, depthwise=False, relu=True):
    return {"in": cin, "out": cout, "kernel": kernel, "stride": stride, "depthwise": depthwise, "relu": relu,
            "w_bits": [2 + c % 7 for c in range(cout)], "act_bits": 8}


# stem -> one block (expand, 3x3 depthwise, project, residual add) -> head -> classifier
SPEC = {"in_channels": 1, "image_size": 6, "classes": 5, "stem": _conv(1, 4, 3),
        "blocks": [{"expand": _conv(4, 6, 1), "depthwise": _conv(6, 6, 3, depthwise=True),
                    "project": _conv(6, 4, 1, relu=False), "add_bits": 8}],
        "head": _conv(4, 8, 1), "classifier": {"in": 8, "out": 5, "w_bits": [8, 4, 3, 2, 6], "act_bits": 8}}
ACCELERATOR = ["stem", "blocks.0.expand", "blocks.0.depthwise", "blocks.0.project", "head", "classifier"]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    net = build_quantnet(SPEC).set_quantized().train()
    for _ in range(2):                                 # initialize the LSQ steps
        net(torch.rand(16, 1, 6, 6))
    return export_quantnet(net.eval(), CFG)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (2, 1, 6, 6))


@pytest.fixture(scope="module")
def compiled(model, images):
    return compile_network(CFG, model, images)


def test_every_accelerator_gemm_gets_a_program(model, compiled):
    assert [layer.name for layer in model.layers if layer.kind != "add"] == ACCELERATOR
    names = [item["layer"] for item in compiled]
    assert sorted(set(names), key=names.index) == ACCELERATOR           # model order, the add stays on the host
    counts = {name: names.count(name) for name in ACCELERATOR}
    assert counts == dict.fromkeys(ACCELERATOR, 1)                     # a depthwise layer too: one DW_COMPUTE program
    gemms = {item["layer"]: item["program"].plan.gemm for item in compiled if item["index"] == 0}
    # M = images x output pixels; the classifier sees the pooled head
    assert (gemms["stem"].m, gemms["stem"].k, gemms["stem"].n) == (2 * 6 * 6, 9, 4)      # a padded 3x3
    depthwise = gemms["blocks.0.depthwise"]
    assert (depthwise.m, depthwise.k, depthwise.n) == (2 * 6 * 6, 9, 6) and depthwise.window.padding == 1
    assert gemms["classifier"].m == 2
    assert gemms["stem"].bits == tuple(int(b) for b in model.layers[0].w_bits)


def test_programs_use_the_priced_mappings_and_the_models_own_inputs(model, images, compiled):
    plans, calibrated = price_network(CFG, model, len(images), 20)
    assert isinstance(calibrated, bool) and set(plans) == set(ACCELERATOR)
    golden = run_model(model, np.asarray(images, dtype=np.int64), CFG)
    by_layer = {layer.name: layer for layer in model.layers}
    for name in ACCELERATOR:
        layer = by_layer[name]
        again = compile_layer(CFG, layer, golden[layer.inputs[0]], plans[name])
        programs = [item["program"] for item in compiled if item["layer"] == name]
        assert [p.memory for p in programs] == [p.memory for p in again]
        for program in programs:
            best = plans[name][program.plan.gemm.bits]
            assert best["depthwise"] == (program.plan.gemm.window is not None) and best["cycles"] > 0
            if not best["depthwise"]:
                assert program.plan.mapping == Mapping(**best["mapping"])


def test_a_model_the_config_cannot_run_is_refused_by_layer_and_field(model, images):
    with pytest.raises(InputError, match=r"^stem w_bits: 5 is not allowed; expected at most weight_bits_max=4"):
        check_model(CFG.replace(weight_bits_max=4), model)
    with pytest.raises(InputError, match=r"^stem out_bits: 8 is not allowed"):
        check_model(CFG.replace(act_bits=6, max_k=256), model)
    with pytest.raises(InputError, match=r"^stem K: 9 is not allowed; expected at most max_k=8"):
        check_model(CFG.replace(max_k=8), model)
    with pytest.raises(InputError, match="^stem "):
        compile_network(CFG.replace(weight_bits_max=4), model, images)


def test_write_programs_lays_out_each_program_and_its_manifest(tmp_path, compiled):
    path = write_programs(tmp_path / "programs", compiled)
    assert path == tmp_path / "programs" / "programs.json"
    entries = json.loads(path.read_text())["programs"]
    assert [(e["layer"], e["index"]) for e in entries] == [(c["layer"], c["index"]) for c in compiled]
    for entry, item in zip(entries, compiled):
        program = item["program"]
        binary = (path.parent / entry["commands"]).read_bytes()
        assert binary == program.binary and len(isa.disassemble_bytes(binary)) == entry["prog_len"]
        dram = (path.parent / entry["dram"]).read_bytes()
        for segment, (addr, blob) in zip(entry["segments"], program.memory, strict=True):
            assert segment["addr"] == addr and dram[segment["offset"]:segment["offset"] + segment["bytes"]] == blob
        assert len(dram) == sum(s["bytes"] for s in entry["segments"])
        assert (entry["prog_addr"], entry["out_addr"], entry["out_bytes"], entry["compute_cycles"]) == (
            program.prog_addr, program.out_addr, program.out_bytes, program.compute_cycles)
    assert not list(path.parent.glob("*.tmp"))


@pytest.mark.parametrize("name", ["../escape", "/abs", ".hidden"])
def test_write_programs_refuses_a_layer_name_that_is_no_plain_file_name(tmp_path, compiled, name):
    with pytest.raises(InputError, match=r"^layer name: .* expected 1 to 64 characters"):
        write_programs(tmp_path / "programs", [{**compiled[0], "layer": name}])
    assert not (tmp_path / "escape.0.bin").exists() and not (tmp_path / "programs").exists()

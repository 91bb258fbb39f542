import json
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from codesign.compiler.mapping import Gemm, Window
from codesign.errors import InputError
from codesign.hw.config import HardwareConfig
from codesign.hw.reference import Requant
from codesign.ir.layers import (
    Conv2d,
    HostOp,
    Linear,
    Lowered,
    check_layer_bits,
    depthwise_window,
    from_integer_model,
    gemms,
    layers_from_json,
    layers_to_json,
    load_layers,
    macs,
    mobilenet_v2,
    placement,
    save_layers,
)
from codesign.quant.export import IntegerLayer, IntegerModel


def error(message: str):
    return pytest.raises(InputError, match=f"^{re.escape(message)}$")


# ---- lowering


@pytest.mark.parametrize("kw", [
    dict(in_channels=3, out_channels=8, kernel=3, in_h=17, in_w=17),
    dict(in_channels=3, out_channels=8, kernel=3, stride=2, padding=1, in_h=17, in_w=16),
    dict(in_channels=4, out_channels=6, kernel=(3, 5), stride=(2, 1), padding=(0, 2), dilation=(2, 1),
         in_h=15, in_w=9),
    dict(in_channels=6, out_channels=4, kernel=3, dilation=3, padding=2, groups=2, in_h=11, in_w=12),
    dict(in_channels=5, out_channels=5, kernel=3, stride=2, padding=1, groups=5, in_h=7, in_w=7),
    dict(in_channels=2, out_channels=2, kernel=1, stride=3, in_h=7, in_w=8),
])
def test_conv_output_size_and_gemm_match_torch(kw):
    conv = Conv2d("conv", batch=2, **kw)
    x = torch.randn(2, conv.in_channels, conv.in_h, conv.in_w)
    weight = torch.randn(conv.out_channels, conv.in_channels // conv.groups, *conv.kernel)
    y = F.conv2d(x, weight, None, conv.stride, conv.padding, conv.dilation, conv.groups)
    assert y.shape[1:] == conv.out_shape
    [lowered] = gemms(conv, windowed=False)
    assert lowered.count == conv.groups
    assert (lowered.gemm.m, lowered.gemm.k, lowered.gemm.n) == (
        y.shape[0] * y.shape[2] * y.shape[3], weight[0].numel(), conv.out_channels // conv.groups)
    assert macs(conv) == y.numel() * weight[0].numel()       # every output sums one filter's products
    if conv.depthwise:                                      # on the depthwise mode: one GEMM of every channel
        [windowed] = gemms(conv)
        assert (windowed.count, windowed.gemm.n, windowed.gemm.m) == (1, conv.out_channels, lowered.gemm.m)


def test_depthwise_lowers_to_one_windowed_gemm_or_per_channel_gemms_merged_by_bits():
    bits = tuple((2, 4, 8)[c % 3] for c in range(32))
    dw = Conv2d("dw", 32, 32, 3, padding=1, groups=32, in_h=14, in_w=14, batch=2, w_bits=bits)
    assert dw.depthwise and placement(dw) == "accelerator"
    window = Window(height=14, width=14, kernel=(3, 3), stride=1, padding=1, images=2)
    assert depthwise_window(dw) == window
    assert gemms(dw) == [Lowered(Gemm(2 * 14 * 14, 9, 32, bits, window))]
    assert gemms(dw, windowed=False) == [Lowered(Gemm(2 * 14 * 14, 9, 1, (b,)), count)
                                         for b, count in ((2, 11), (4, 11), (8, 10))]
    assert macs(dw) == sum(lowered.macs for lowered in gemms(dw, windowed=False))


@pytest.mark.parametrize("kw, why", [
    (dict(kernel=9, padding=4), "a kernel wider than 7"),
    (dict(kernel=3, stride=3), "stride 3"),
    (dict(kernel=3, stride=(1, 2)), "two strides"),
    (dict(kernel=3, padding=(1, 0)), "two paddings"),
    (dict(kernel=3, dilation=2), "dilation"),
    (dict(kernel=3, padding=3), "padding as wide as the kernel"),
])
def test_depthwise_convs_the_mode_cannot_take_lower_per_channel(kw, why):
    dw = Conv2d("dw", 8, 8, groups=8, in_h=20, in_w=20, **kw)
    assert depthwise_window(dw) is None, why
    assert all(lowered.gemm.window is None and lowered.gemm.n == 1 for lowered in gemms(dw))


def test_grouped_conv_takes_each_groups_bits():
    conv = Conv2d("g", 4, 4, 1, groups=2, in_h=3, in_w=3, w_bits=(2, 4, 2, 4))
    assert not conv.depthwise
    assert gemms(conv) == [Lowered(Gemm(9, 2, 2, (2, 4)), 2)]
    conv = Conv2d("g", 4, 4, 1, groups=2, in_h=3, in_w=3, w_bits=(2, 4, 4, 4))
    assert gemms(conv) == [Lowered(Gemm(9, 2, 2, (2, 4))), Lowered(Gemm(9, 2, 2, (4, 4)))]


def test_linear_and_host_op_lowering():
    fc = Linear("fc", 1280, 1000, batch=4, w_bits=4)
    assert gemms(fc) == [Lowered(Gemm(4, 1280, 1000, (4,) * 1000))]
    assert placement(fc) == "accelerator" and fc.out_shape == (1000, 1, 1)
    pool = HostOp("pool", "avgpool", (8, 7, 9), kernel=3, stride=2)
    assert gemms(pool) == [] and macs(pool) == 0 and placement(pool) == "host"
    assert pool.out_shape == (8, 3, 4)
    assert HostOp("gap", "global_avgpool", (8, 7, 9)).out_shape == (8, 1, 1)
    assert HostOp("add", "add", (8, 7, 9)).out_shape == (8, 7, 9)


# ---- validation


def test_invalid_layers_are_named():
    with error("c1.groups: 3 is not allowed; expected a divisor of in_channels (4) and out_channels (6)"):
        Conv2d("c1", 4, 6, 3, groups=3, in_h=8, in_w=8)
    with error("c2.kernel: (5, 5) is not allowed; expected a kernel whose dilated extent (9 x 9) fits the padded "
               "input (8 x 8)"):
        Conv2d("c2", 4, 4, 5, dilation=2, padding=1, in_h=6, in_w=6)
    with error("c3.w_bits: 17 is not allowed; expected a bit width from 1 to 16"):
        Conv2d("c3", 4, 2, 1, in_h=1, in_w=1, w_bits=(8, 17))
    with error("c4.w_bits: (8, 8, 8) is not allowed; expected a bit width or one per output channel (2)"):
        Conv2d("c4", 4, 2, 1, in_h=1, in_w=1, w_bits=(8, 8, 8))
    with error("c5.act_bits: 0 is not allowed; expected a bit width from 1 to 16"):
        Conv2d("c5", 4, 2, 1, in_h=1, in_w=1, act_bits=0)
    with error("c6.padding: -1 is not allowed; expected an integer >= 0"):
        Conv2d("c6", 4, 2, 1, padding=(0, -1), in_h=1, in_w=1)
    with error("c7.in_h: True is not allowed; expected an integer >= 1"):
        Conv2d("c7", 4, 2, 1, in_h=True, in_w=1)
    with error("fc.out_features: 0 is not allowed; expected an integer >= 1"):
        Linear("fc", 4, 0)
    with error("fc.relu: 'no' is not allowed; expected true or false"):
        Linear("fc", 4, 2, relu="no")
    with error("layer.name: '' is not allowed; expected 1 to 64 characters from A-Z a-z 0-9 _ . -, "
               "not starting with '.'"):
        Linear("", 4, 2)
    with error("h.kind: 'sigmoid' is not allowed; expected one of ['add', 'relu', 'relu6', 'avgpool', 'maxpool', "
               "'global_avgpool']"):
        HostOp("h", "sigmoid", (1, 2, 2))
    with error("h.kernel: 3 is not allowed; expected a pooling window within the input (2 x 4)"):
        HostOp("h", "maxpool", (1, 2, 4), kernel=3)
    with error("h.shape: (1, 2) is not allowed; expected an integer or 3 integers"):
        HostOp("h", "relu", (1, 2))


# ---- networks


def test_mobilenet_v2_layers_shapes_and_macs():
    layers = mobilenet_v2()
    convs = [layer for layer in layers if isinstance(layer, Conv2d)]
    hosts = [layer for layer in layers if isinstance(layer, HostOp)]
    # stem + 17 depthwise + 17 project + 16 expand (not in the t = 1 block) + head = 52 convs, and the classifier
    assert len(convs) == 52 and sum(conv.depthwise for conv in convs) == 17
    assert sum(placement(layer) == "accelerator" for layer in layers) == 53
    assert [h.kind for h in hosts].count("add") == 10 and hosts[-1].kind == "global_avgpool"
    assert len({layer.name for layer in layers}) == len(layers)
    stem, head, fc = layers[0], layers[-3], layers[-1]
    assert stem.out_shape == (32, 112, 112) and head.in_h == head.in_w == 7 and head.out_shape == (1280, 7, 7)
    assert [layers[i].name for i in range(1, 4)] == ["blocks.0.depthwise", "blocks.0.project", "blocks.1.expand"]
    assert fc.in_features == 1280 and fc.out_features == 1000 and not fc.relu
    assert not any(layer.relu for layer in convs if layer.name.endswith("project"))
    total = sum(macs(layer) for layer in layers)
    assert total == 300_774_272 and abs(total / 300e6 - 1) < 0.05       # the paper's 300 M multiply-adds
    assert sum(macs(layer) for layer in mobilenet_v2(batch=2)) == 2 * total
    assert abs(sum(macs(layer) for layer in mobilenet_v2(width=0.5)) / 97e6 - 1) < 0.05   # the paper's table 3


def test_mobilenet_v2_rejects_a_bad_resolution():
    with error("resolution: 0 is not allowed; expected a positive number of pixels"):
        mobilenet_v2(resolution=0)


def _int_layer(name, kind, inputs, out_shape, **kw):
    c = out_shape[0]
    requant = Requant(np.zeros(c), np.ones(c), np.zeros(c), relu=kind != "linear", out_bits=8)
    return IntegerLayer(name=name, kind=kind, inputs=inputs, out_shape=out_shape, requant=requant,
                        in_bits=(4,) * len(inputs), in_signed=(False,) * len(inputs), in_scales=(1.0,) * len(inputs),
                        out_scale=1.0, **kw)


def test_from_integer_model_reads_an_export():
    def conv(name, kind, source, out_shape, weight_shape, bits, **kw):
        return _int_layer(name, kind, (source,), out_shape, weight=np.zeros(weight_shape, np.int64),
                          w_bits=np.array(bits), **kw)

    model = IntegerModel((3, 8, 8), 8, 1 / 255, (
        conv("stem", "conv", "input", (4, 4, 4), (4, 3, 3, 3), [8, 4, 4, 2], stride=2, padding=1),
        conv("dw", "dwconv", "stem", (4, 4, 4), (4, 1, 3, 3), [4, 4, 8, 8], padding=1),
        conv("project", "conv", "dw", (4, 4, 4), (4, 4, 1, 1), [2] * 4),
        _int_layer("add", "add", ("stem", "project"), (4, 4, 4), input_mults=(1, 1)),
        conv("classifier", "linear", "add", (10, 1, 1), (10, 4), [8] * 10, pool=16),
    ))
    stem, dw, project, add, fc = from_integer_model(model, batch=3)
    assert stem == Conv2d("stem", 3, 4, 3, stride=2, padding=1, in_h=8, in_w=8, batch=3, w_bits=(8, 4, 4, 2),
                          act_bits=4)
    assert dw.depthwise and dw.w_bits == (4, 4, 8, 8) and dw.in_h == 4
    assert gemms(dw) == [Lowered(Gemm(48, 9, 4, (4, 4, 8, 8), Window(4, 4, (3, 3), 1, 1, images=3)))]
    assert add == HostOp("add", "add", (4, 4, 4), batch=3, act_bits=4)
    assert gemms(fc) == [Lowered(Gemm(3, 64, 10, (8,) * 10))]      # K = pool * C: the folded average pooling
    for layer, exported in zip((stem, dw, project, add, fc), model.layers):
        assert layer.out_shape == exported.out_shape


# ---- JSON


def test_json_round_trip(tmp_path):
    layers = mobilenet_v2(resolution=32, width=0.5, w_bits=4) + [
        Conv2d("rect", 2, 4, (1, 3), stride=(2, 1), padding=(0, 1), dilation=(1, 2), in_h=5, in_w=6,
               w_bits=(2, 3, 4, 5), relu=False),
        HostOp("mp", "maxpool", (4, 3, 6), kernel=2, stride=2, act_bits=4)]
    path = save_layers(tmp_path / "net.json", layers)
    assert load_layers(path) == layers
    assert json.loads(path.read_text()) == layers_to_json(layers)
    assert layers_to_json(layers[-1:]) == [{"type": "host", "name": "mp", "kind": "maxpool", "shape": [4, 3, 6],
                                            "batch": 1, "kernel": 2, "stride": 2, "act_bits": 4}]
    assert layers_from_json([{"type": "linear", "name": "fc", "in_features": 8, "out_features": 2}]) == [
        Linear("fc", 8, 2)]


def test_json_errors_name_the_entry_and_field(tmp_path):
    conv = {"type": "conv2d", "name": "c", "in_channels": 4, "out_channels": 4, "kernel": 3, "in_h": 5, "in_w": 5}
    with error("layers: 'dict' is not allowed; expected a JSON list of layer objects"):
        layers_from_json({"layers": []})
    with error("layers[0]: 3 is not allowed; expected an object with a 'type' key"):
        layers_from_json([3])
    with error("layers[1].type: 'pool' is not allowed; expected one of ['conv2d', 'linear', 'host']"):
        layers_from_json([conv, {"type": "pool"}])
    with error("layers[0] (c).kernal: 3 is not allowed; expected a conv2d field: one of ['name', 'in_channels', "
               "'out_channels', 'kernel', 'stride', 'padding', 'dilation', 'groups', 'in_h', 'in_w', 'batch', "
               "'w_bits', 'act_bits', 'relu']"):
        layers_from_json([{**conv, "kernal": 3}])
    with error("layers[0] (c).in_w: 'missing' is not allowed; expected a value: conv2d needs ['name', 'in_channels', "
               "'out_channels', 'kernel', 'in_h', 'in_w']"):
        layers_from_json([{k: v for k, v in conv.items() if k != "in_w"}])
    with error("layers[0].name: 'missing' is not allowed; expected a value: host needs ['name', 'kind', 'shape']"):
        layers_from_json([{"type": "host", "kind": "add", "shape": [1, 1, 1]}])
    with error("layers[1] c.groups: 3 is not allowed; expected a divisor of in_channels (4) and out_channels (4)"):
        layers_from_json([{**conv, "name": "b"}, {**conv, "groups": 3}])
    with error("layers[1] c.in_h: '5' is not allowed; expected an integer >= 1"):
        layers_from_json([{**conv, "name": "b"}, {**conv, "in_h": "5"}])
    with error("layers[1].name: 'c' is not allowed; expected a name no earlier layer has"):
        layers_from_json([conv, conv])
    missing = tmp_path / "missing.json"
    with error(f"layers file: {str(missing)!r} is not allowed; expected an existing JSON file: a list of layer "
               "objects"):
        load_layers(missing)
    broken = tmp_path / "broken.json"
    broken.write_text("[{")
    message = (f"layers file: {str(broken)!r} is not allowed; expected a valid JSON file: a list of layer objects "
               "(line 1, column 3: Expecting property name")
    with pytest.raises(InputError, match=re.escape(message)):
        load_layers(broken)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps([{**conv, "in_h": 0}]))
    with error(f"{wrong} layers[0] c.in_h: 0 is not allowed; expected an integer >= 1"):
        load_layers(wrong)


def test_an_empty_layer_list_is_refused(tmp_path):
    with error("layers: '[]' is not allowed; expected a JSON list of at least one layer object"):
        layers_from_json([])
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    with pytest.raises(InputError, match=r"^.*empty.json layers: '\[\]' is not allowed"):
        load_layers(empty)


@pytest.mark.parametrize("name", ["../../escape", "a/b", ".hidden", "x" * 65, "with space", ""])
def test_layer_names_are_safe_file_names(name):
    # a layer's name becomes its program files' names (codesign.compiler.network.write_programs)
    with pytest.raises(InputError, match=r"^layer.name: .* expected 1 to 64 characters from A-Z a-z 0-9 _ . -"):
        Linear(name, 4, 2)
    with pytest.raises(InputError, match=r"^layers\[0\] layer.name: "):
        layers_from_json([{"type": "linear", "name": name, "in_features": 4, "out_features": 2}])


def test_layer_bits_against_the_hardware():
    cfg = HardwareConfig(weight_bits_max=4, act_bits=6, acc_bits=28)
    check_layer_bits(cfg, Conv2d("c", 2, 2, 1, in_h=2, in_w=2, w_bits=(2, 4), act_bits=6))
    check_layer_bits(cfg, HostOp("add", "add", (2, 2, 2), act_bits=6))
    with error("c w_bits: 5 is not allowed; expected at most weight_bits_max=4"):
        check_layer_bits(cfg, Conv2d("c", 2, 2, 1, in_h=2, in_w=2, w_bits=(5, 4), act_bits=6))
    with error("fc act_bits: 8 is not allowed; expected at most act_bits=6"):
        check_layer_bits(cfg, Linear("fc", 4, 2, w_bits=4, act_bits=8))
    with error("add act_bits: 7 is not allowed; expected at most act_bits=6"):
        check_layer_bits(cfg, HostOp("add", "add", (2, 2, 2), act_bits=7))

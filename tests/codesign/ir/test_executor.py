import numpy as np
import pytest
import torch
import torch.nn.functional as F

from codesign.errors import InputError
from codesign.hw.config import HardwareConfig
from codesign.hw.reference import Requant
from codesign.ir.executor import im2col, run_layer, run_model
from codesign.quant.export import IntegerLayer, IntegerModel

CFG = HardwareConfig()


@pytest.mark.parametrize("kernel,stride", [(1, 1), (3, 1), (5, 2), (7, 2)])
def test_im2col_matches_torch_unfold(kernel, stride):
    x = np.random.default_rng(0).integers(0, 255, (2, 6, 7, 3))
    ours = im2col(x, kernel, stride, kernel // 2)
    unfold = F.unfold(torch.tensor(x.transpose(0, 3, 1, 2), dtype=torch.float64), kernel, padding=kernel // 2,
                      stride=stride)                           # N, C*k*k, L
    assert np.array_equal(ours, unfold.permute(0, 2, 1).reshape(-1, 3 * kernel * kernel).numpy())


def _layer(kind, weight, requant, **kw):
    return IntegerLayer(name="l", kind=kind, inputs=("input",), requant=requant, in_bits=(8,), in_signed=(False,),
                        in_scales=(1.0,), out_scale=1.0, weight=weight, **kw)


def test_depthwise_layer_is_the_per_channel_conv():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (2, 5, 5, 4))
    w = rng.integers(-8, 8, (4, 1, 3, 3))
    rq = Requant(rng.integers(-50, 50, 4), rng.integers(2 ** 15, 2 ** 16, 4), np.full(4, 20), True, 8)
    layer = _layer("dwconv", w, rq, out_shape=(4, 5, 5), w_bits=np.full(4, 4), padding=1)
    acc = F.conv2d(torch.tensor(x.transpose(0, 3, 1, 2), dtype=torch.float64), torch.tensor(w, dtype=torch.float64),
                   padding=1, groups=4).numpy().transpose(0, 2, 3, 1).reshape(-1, 4)
    expected = np.clip(((acc.astype(np.int64) + rq.bias) * rq.mult + (1 << 19)) >> 20, 0, 255)
    assert np.array_equal(run_layer(CFG, layer, [x]).reshape(-1, 4), expected)


def test_add_layer_rescales_both_inputs():
    x, f = np.array([[[[10, -4]]]]), np.array([[[[3, 7]]]])
    rq = Requant(np.zeros(2), np.ones(2), np.full(2, 4), False, 8)
    layer = IntegerLayer(name="a", kind="add", inputs=("x", "f"), out_shape=(2, 1, 1), requant=rq, in_bits=(8, 8),
                         in_signed=(True, True), in_scales=(1.0, 1.0), out_scale=1.0, input_mults=(16, 8))
    assert run_layer(CFG, layer, [x, f]).ravel().tolist() == [(160 + 24 + 8) >> 4, (-64 + 56 + 8) >> 4]


def test_bad_kind_and_bad_input_are_refused():
    rq = Requant(np.zeros(1), np.ones(1), np.zeros(1), True, 8)
    layer = _layer("pool", None, rq, out_shape=(1, 1, 1))
    with pytest.raises(InputError, match="kind"):
        run_layer(CFG, layer, [np.zeros((1, 1, 1, 1), np.int64)])
    model = IntegerModel((1, 4, 4), 8, 1 / 255, (layer,))
    with pytest.raises(InputError, match="images"):
        run_model(model, np.zeros((1, 1, 3, 3)))

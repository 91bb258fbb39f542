import numpy as np
import pytest

from codesign.errors import InputError
from codesign.hw.config import HardwareConfig
from codesign.hw.reference import Requant, gemm_accumulate, gemm_requant, requantize

CFG = HardwareConfig()


def requant(n, bias=0, mult=1, shift=0, relu=False, out_bits=8):
    return Requant(bias=np.full(n, bias), mult=np.full(n, mult), shift=np.full(n, shift), relu=relu, out_bits=out_bits)


def test_accumulate_is_the_integer_matrix_product():
    rng = np.random.default_rng(0)
    a = rng.integers(-128, 128, (5, 7))
    w = rng.integers(-8, 8, (7, 3))
    assert (gemm_accumulate(CFG, a, w, 4, act_signed=True) == a @ w).all()


def test_rounding_is_half_up():
    acc = np.array([[5, -5, 6, -6, 7, -7]]).T.repeat(1, axis=1)   # x / 4 with shift 2
    out = requantize(CFG, acc, requant(1, shift=2))
    assert out.ravel().tolist() == [1, -1, 2, -1, 2, -2]      # 1.25, -1.25, 1.5, -1.5, 1.75, -1.75


def test_clamp_and_relu_ranges():
    acc = np.array([[-1000, -3, 0, 3, 1000]]).T
    assert requantize(CFG, acc, requant(1, out_bits=4)).ravel().tolist() == [-8, -3, 0, 3, 7]
    assert requantize(CFG, acc, requant(1, out_bits=4, relu=True)).ravel().tolist() == [0, 0, 0, 3, 15]


def test_bias_mult_shift_per_channel():
    acc = np.array([[100, 100]])
    rq = Requant(bias=np.array([0, 28]), mult=np.array([3, 1]), shift=np.array([2, 3]), relu=False, out_bits=8)
    assert requantize(CFG, acc, rq).tolist() == [[75, 16]]


def test_weights_outside_their_column_width_are_refused():
    a = np.ones((1, 2), dtype=np.int64)
    w = np.array([[1, 8], [0, 0]])
    with pytest.raises(InputError, match=r"W\[0, 1\]: 8 is not allowed; expected a signed 4-bit integer"):
        gemm_accumulate(CFG, a, w, [2, 4], act_signed=False)
    gemm_accumulate(CFG, a, np.array([[1, 7], [-2, -8]]), [2, 4], act_signed=False)


def test_activation_range_depends_on_signedness():
    w = np.ones((1, 1), dtype=np.int64)
    gemm_accumulate(CFG, np.array([[255]]), w, 2, act_signed=False)
    with pytest.raises(InputError, match=r"A\[0, 0\]: 255"):
        gemm_accumulate(CFG, np.array([[255]]), w, 2, act_signed=True)


def test_k_beyond_max_k_is_refused():
    cfg = HardwareConfig(max_k=4)
    with pytest.raises(InputError, match="K: 5"):
        gemm_accumulate(cfg, np.zeros((1, 5)), np.zeros((5, 1)), 2, act_signed=False)


def test_extreme_sum_fits_the_accumulator():
    cfg = HardwareConfig(max_k=4096, acc_bits=28)
    a = np.full((1, 4096), 255)
    w = np.full((4096, 1), -128)
    acc = gemm_accumulate(cfg, a, w, 8, act_signed=False)
    assert acc[0, 0] == -255 * 128 * 4096 >= -(1 << 27)
    assert gemm_requant(cfg, a, w, 8, requant(1, shift=19), act_signed=False)[0, 0] == -128  # -255 clamps

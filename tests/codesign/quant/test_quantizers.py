import math

import pytest
import torch

from codesign.errors import InputError
from codesign.quant.quantizers import (
    ActQuantizer,
    WeightQuantizer,
    fixed_point_multiplier,
    lsq_quantize,
    quant_range,
    round_half_up,
)


def test_round_half_up_matches_the_reference_rule():
    x = torch.tensor([2.5, -2.5, 0.5, -0.5, 1.49, -1.51])
    assert round_half_up(x).tolist() == [3.0, -2.0, 1.0, 0.0, 1.0, -2.0]


def test_ste_passes_gradient_inside_the_range_and_blocks_it_outside():
    v = torch.tensor([-10.0, -0.3, 0.2, 0.7, 10.0], requires_grad=True)
    qn, qp = quant_range(torch.tensor(4), signed=True)
    lsq_quantize(v, torch.tensor(0.5), qn, qp, 1.0).sum().backward()
    assert v.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]


def test_step_gradient_is_the_lsq_formula():
    v = torch.tensor([-10.0, -0.3, 0.2, 0.7, 10.0])
    step = torch.tensor(0.5, requires_grad=True)
    qn, qp = quant_range(torch.tensor(4), signed=True)        # [-8, 7]
    lsq_quantize(v, step, qn, qp, 1.0).backward(torch.ones(5))
    ratio = v / 0.5
    expected = torch.where(ratio <= qn, qn, torch.where(ratio >= qp, qp, torch.floor(ratio + 0.5) - ratio))
    assert step.grad.item() == pytest.approx(expected.sum().item(), abs=1e-6)


def test_weight_quantizer_is_per_channel_with_own_bits():
    weight = torch.randn(3, 4, 3, 3)
    wq = WeightQuantizer([2, 4, 8])
    wq(weight)
    ints = wq.integer(weight)
    for c, bits in enumerate([2, 4, 8]):
        assert ints[c].min() >= -(2 ** (bits - 1)) and ints[c].max() <= 2 ** (bits - 1) - 1
    assert torch.allclose(wq(weight), ints * wq.scale().view(-1, 1, 1, 1))


def test_step_size_learns_toward_lower_error():
    torch.manual_seed(0)
    x = torch.rand(4096) * 3
    aq = ActQuantizer(4, signed=False)
    aq(x)
    aq.step.data.fill_(0.02)        # far too small: most values clip
    optimizer = torch.optim.SGD(aq.parameters(), lr=0.05)
    errors = []
    for _ in range(200):
        loss = ((aq(x) - x) ** 2).mean()
        errors.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert errors[-1] < 0.1 * errors[0]
    assert aq.scale().item() > 0.1


@pytest.mark.parametrize("bits", [[1], [9], []])
def test_bit_widths_out_of_range_are_refused(bits):
    with pytest.raises(InputError, match="w_bits"):
        WeightQuantizer(bits)


def test_fixed_point_multiplier_keeps_sixteen_bits():
    ratios = torch.tensor([1e-6, 0.0123, 0.5, 1.0, 3.7])
    mult, shift = fixed_point_multiplier(ratios)
    assert (mult < 2 ** 16).all() and (mult >= 2 ** 15).all() and (shift >= 0).all()
    approx = mult.double() / torch.pow(2.0, shift.double())
    assert torch.allclose(approx, ratios.double(), rtol=2 ** -15)
    with pytest.raises(InputError, match="requantization ratio"):
        fixed_point_multiplier(torch.tensor([-1.0]))
    assert math.isclose(fixed_point_multiplier(0.75)[0].item() / 2 ** fixed_point_multiplier(0.75)[1].item(), 0.75)

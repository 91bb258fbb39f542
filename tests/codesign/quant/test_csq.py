import pytest
import torch
import torch.nn.functional as F

from codesign.bench.quant import ideal_ratio, saved_for_backward_bytes
from codesign.errors import InputError
from codesign.quant.csq import RecomputedTail, multibranch_conv, rank_channels, split_channels
from codesign.quant.supernet import DIGITS, ArchChoice, SuperNet


def test_rank_is_by_decreasing_absolute_gamma():
    assert rank_channels(torch.tensor([0.1, -3.0, 2.0, 0.5])).tolist() == [1, 2, 3, 0]


def test_split_takes_the_top_fraction_of_the_active_channels():
    rank = torch.tensor([5, 1, 7, 0, 2, 6, 3, 4])
    sel, rest = split_channels(rank, active=8, fraction=0.25)
    assert sel.tolist() == [5, 1] and sorted(rest.tolist()) == [0, 2, 3, 4, 6, 7]
    sel, rest = split_channels(rank, active=4, fraction=0.5)     # a narrower layer: channels 0..3 only
    assert sel.tolist() == [1, 0] and sorted(rest.tolist()) == [2, 3]
    assert len(split_channels(rank, active=8, fraction=0.01)[0]) == 1


def test_schedule_refreshes_every_n_steps():
    net = SuperNet(DIGITS)
    schedule = net.csq_schedule(0.25, refresh_every=3)
    layer = net.stem
    layer.bn.weight.data = torch.arange(16.0)
    schedule.step()                                  # step 0: refresh
    assert layer.rank[0].item() == 15
    layer.bn.weight.data = -torch.arange(16.0).flip(0) * 2
    schedule.step()
    schedule.step()
    assert layer.rank[0].item() == 15                # steps 1, 2: the selection holds
    schedule.step()                                  # step 3: refresh
    assert layer.rank[0].item() == 0
    assert net.csq_fraction == 0.25
    with pytest.raises(InputError, match="fraction"):
        net.csq_schedule(0.0, 1)
    with pytest.raises(InputError, match="refresh_every"):
        net.csq_schedule(0.5, 0)


def test_multibranch_conv_mixes_selected_channels_and_passes_the_rest():
    torch.manual_seed(0)
    x, weight = torch.randn(2, 3, 5, 5), torch.randn(6, 3, 3, 3)
    sel, rest = torch.tensor([4, 1]), torch.tensor([0, 2, 3, 5])
    branches = [lambda w: w.round(), lambda w: 2 * w]
    probs = torch.tensor([[0.25, 0.75], [0.5, 0.5]])
    conv = lambda inp, w: F.conv2d(inp, w, padding=1)      # noqa: E731
    y = multibranch_conv(x, x, weight, sel, rest, branches, probs, conv)
    full = [conv(x, b(weight)) for b in branches]
    for j, c in enumerate(sel.tolist()):
        assert torch.allclose(y[:, c], probs[j, 0] * full[0][:, c] + probs[j, 1] * full[1][:, c], atol=1e-5)
    assert torch.allclose(y[:, rest], conv(x, weight)[:, rest], atol=1e-5)


def test_recomputed_tail_gradients_equal_plain_autograd():
    torch.manual_seed(0)
    y = torch.randn(3, 4, requires_grad=True)
    scale = torch.randn(4, requires_grad=True)
    fn = lambda t, s: torch.relu(t * s) ** 2                # noqa: E731
    RecomputedTail.apply(fn, y, scale).sum().backward()
    expected = torch.autograd.grad(fn(y, scale).sum(), [y, scale])
    assert torch.allclose(y.grad, expected[0]) and torch.allclose(scale.grad, expected[1])


def test_csq_really_keeps_less_for_backward():
    torch.manual_seed(0)
    net = SuperNet(DIGITS)
    arch = ArchChoice.largest(DIGITS)
    images, labels = torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,))
    saved = {}
    for fraction in (1.0, 0.25, 0.1):
        net.csq_schedule(fraction, refresh_every=1).refresh()
        saved[fraction] = saved_for_backward_bytes(net, arch, images, labels)
    assert saved[1.0] / saved[0.25] > 0.8 * ideal_ratio(6, 0.25)
    assert saved[1.0] / saved[0.1] > 0.75 * ideal_ratio(6, 0.1)


def test_ideal_ratio_of_the_issue():
    assert ideal_ratio(6, 0.25) == pytest.approx(2.667, abs=1e-3)
    assert ideal_ratio(6, 0.1) == pytest.approx(4.0)

import pytest
import torch

from codesign.errors import InputError
from codesign.quant.datasets import load_digits
from codesign.quant.supernet import DIGITS, ArchChoice, SuperNet
from codesign.quant.train import accuracy, fit


def test_fit_learns_digits_quickly():
    torch.manual_seed(0)
    data = load_digits()
    net = SuperNet(DIGITS)
    arch = ArchChoice.uniform(DIGITS, 3, 3)
    forward = lambda x: net(x, arch)        # noqa: E731
    before = accuracy(net, data.val, forward=forward)
    seconds = fit(net, data.train, epochs=4, lr=3e-3, forward=forward)
    assert len(seconds) == 4 and all(s > 0 for s in seconds)
    assert accuracy(net, data.val, forward=forward) > max(0.7, before + 0.3)
    with pytest.raises(InputError, match="epochs"):
        fit(net, data.train, epochs=-1, lr=1e-3)

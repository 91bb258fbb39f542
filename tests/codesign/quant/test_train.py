import pytest
import torch
import torch.nn.functional as F

from codesign.errors import InputError
from codesign.quant.datasets import ImageSet, load_digits
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


def _tiny():
    """A small subnet of the supernet and 200 training images: a few steps per epoch."""
    torch.manual_seed(0)
    train = load_digits().train
    net = SuperNet(DIGITS)
    arch = ArchChoice((1, 1, 1), (0.5, 0.5, 0.5), ((3,), (3,), (3,)), ((1,), (1,), (1,)))
    return net, arch, ImageSet(train.images[:200], train.labels[:200])


def test_the_hooks_reproduce_the_default_loop_exactly():
    """``loss`` and ``batches`` given as the default loop computes them train the same weights, bit for bit; the
    step and epoch hooks see every step and epoch."""
    net, arch, data = _tiny()
    start = {k: v.clone() for k, v in net.state_dict().items()}
    fit(net, data, epochs=2, lr=3e-3, forward=lambda x: net(x, arch), batch_size=64, seed=5)
    plain = {k: v.clone() for k, v in net.state_dict().items()}

    net.load_state_dict(start)
    generator = torch.Generator().manual_seed(5)
    losses, epochs = [], []
    fit(net, data, epochs=2, lr=3e-3, batch_size=64,
        loss=lambda images, labels: F.cross_entropy(net(images, arch), labels),
        batches=lambda epoch: data.batches(64, shuffle=True, generator=generator),
        after_step=lambda loss: losses.append(float(loss.detach())), after_epoch=lambda state: epochs.append(state))
    assert all(torch.equal(plain[k], v) for k, v in net.state_dict().items())
    assert len(losses) == 2 * -(-len(data) // 64)
    assert [s.epoch for s in epochs] == [1, 2] and all(s.seconds > 0 for s in epochs)


def test_a_fit_resumed_after_an_epoch_ends_where_an_uninterrupted_one_does():
    net, arch, data = _tiny()
    start = {k: v.clone() for k, v in net.state_dict().items()}
    forward = lambda x: net(x, arch)        # noqa: E731
    fit(net, data, epochs=3, lr=3e-3, forward=forward, batch_size=64, seed=2)
    whole = {k: v.clone() for k, v in net.state_dict().items()}

    net.load_state_dict(start)
    saved = {}

    def stop_after_first(state):
        saved.update(weights={k: v.clone() for k, v in net.state_dict().items()}, fit=state.state_dict())
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(net, data, epochs=3, lr=3e-3, forward=forward, batch_size=64, seed=2, after_epoch=stop_after_first)
    assert saved["fit"]["epoch"] == 1
    torch.manual_seed(123)                   # a fresh process: nothing but the saved state carries over
    fresh = SuperNet(DIGITS)
    fresh.load_state_dict(saved["weights"])
    seconds = fit(fresh, data, epochs=3, lr=3e-3, forward=lambda x: fresh(x, arch), batch_size=64, seed=2,
                  resume=saved["fit"])
    assert len(seconds) == 2
    assert all(torch.equal(whole[k], v) for k, v in fresh.state_dict().items())

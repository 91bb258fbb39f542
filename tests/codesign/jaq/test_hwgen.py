"""The hardware generation network: its input summarizes the network distribution; its output is a masked softmax."""

import pytest
import torch

from codesign.jaq.arch_logits import ArchLogits
from codesign.jaq.hwgen import HardwareGenerator, network_features
from codesign.quant.supernet import DIGITS, SuperNet


@pytest.fixture(scope="module")
def net():
    return SuperNet(DIGITS)


def test_features_are_choice_probabilities_and_mean_bits(net):
    arch = ArchLogits(DIGITS)
    features = network_features(net, arch)
    layers = net.search_layers()
    n_arch = sum(p.numel() for p in arch.parameters())
    assert features.shape == (n_arch + len(layers),) and not features.requires_grad
    # zero logits: every choice of every decision equally likely (a decision's probabilities sum to 1) ...
    decisions = 2 * len(DIGITS.stages) + 2 * sum(s.depth for s in DIGITS.stages)       # depth, width; kernel, expand
    assert float(features[:n_arch].sum()) == pytest.approx(decisions)
    assert {round(v, 6) for v in features[:n_arch].tolist()} == {1.0, 0.5, round(1 / 3, 6)}
    # ... and per searchable layer, the mean of the weight widths (2, 3, 4, 5, 6, 8) / 8
    assert features[n_arch:].tolist() == pytest.approx([sum(DIGITS.w_bits) / len(DIGITS.w_bits) / 8] * len(layers))
    with torch.no_grad():
        layers[0].w_logits[:, DIGITS.w_bits.index(2)] = 50.0        # the first layer all but surely 2-bit
    changed = network_features(net, arch)
    assert changed[n_arch] == pytest.approx(2 / 8) and torch.equal(changed[n_arch + 1:], features[n_arch + 1:])
    with torch.no_grad():
        layers[0].w_logits.zero_()
        arch.width[0, 0] = 50.0                                     # the first stage all but surely at width 0.5
    assert float(network_features(net, arch)[:n_arch].max()) == pytest.approx(1.0)
    assert not torch.equal(network_features(net, arch)[:n_arch], features[:n_arch])


def test_the_generator_starts_uniform_over_the_allowed_candidates():
    generator = HardwareGenerator(features=10, candidates=6)
    allowed = torch.tensor([True, False, True, True, False, True])
    probs = generator(torch.randn(10), allowed)
    assert probs.shape == (6,)
    assert probs.tolist() == pytest.approx([0.25, 0.0, 0.25, 0.25, 0.0, 0.25])


def test_the_generator_learns_and_never_picks_an_excluded_candidate():
    torch.manual_seed(0)
    generator = HardwareGenerator(features=4, candidates=5, hidden=16)
    allowed = torch.tensor([True, True, False, True, True])
    cost = torch.tensor([5.0, 1.0, 0.0, 3.0, 4.0])                 # the excluded one would be cheapest
    optimizer = torch.optim.Adam(generator.parameters(), lr=0.05)
    features = torch.rand(4)
    for _ in range(100):
        loss = generator(features, allowed) @ cost
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        probs = generator(features, allowed)
    assert int(probs.argmax()) == 1 and float(probs[1]) > 0.9
    assert float(probs[2]) == 0.0 and float(probs.sum()) == pytest.approx(1.0)

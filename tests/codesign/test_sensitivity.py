import pytest
import torch
from torch import nn

from codesign.sensitivity import kl_divergence, layer_sensitivity, quantize_weight


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))


def test_quantized_weights_take_at_most_2_to_the_b_levels_per_channel():
    w = torch.randn(4, 3, 3, 3)
    for bits in (2, 4, 8):
        q = quantize_weight(w, bits)
        for channel in q:
            assert len(torch.unique(channel)) <= 1 << bits
        assert torch.allclose(q.abs().amax(dim=(1, 2, 3)), w.abs().amax(dim=(1, 2, 3)), rtol=1e-6)


def test_kl_is_zero_for_equal_outputs_and_positive_otherwise():
    logits = torch.randn(16, 10)
    assert kl_divergence(logits, logits) == pytest.approx(0.0, abs=1e-7)
    assert kl_divergence(logits, logits + torch.randn(16, 10)) > 0


def test_fewer_bits_hurt_more_and_the_model_is_restored():
    model = _model()
    images = torch.randn(32, 1, 8, 8)
    before = [p.clone() for p in model.parameters()]
    names, table = layer_sensitivity(model, images, [2, 4, 8])
    assert names == ["0", "3", "7"]
    assert (table[:, 0] > table[:, 1]).all() and (table[:, 1] > table[:, 2]).all()
    assert (table >= 0).all()
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))

import pytest
import torch
from torch import nn

from codesign.ohq.sensitivity import (
    channel_group_sensitivity,
    kl_divergence,
    layer_sensitivity,
    quantize_weight,
    softening_temperature,
)


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


def test_groups_cover_each_layer_and_only_the_masked_group_is_quantized():
    """A group whose outputs the next layer ignores costs nothing when quantized; the used one does."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 64, 10))
    with torch.no_grad():
        model[3].weight.view(10, 8, 64)[:, 4:] = 0          # channels 4..7 of the conv feed nothing
    groups, table = channel_group_sensitivity(model, torch.rand(16, 1, 8, 8), [2, 8], 4)
    assert groups == [("0", 0, 4), ("0", 4, 8), ("3", 0, 4), ("3", 4, 8), ("3", 8, 10)]
    assert table[0, 0] > 1e-6 and table[1, 0] == pytest.approx(0.0, abs=1e-12)
    assert (table[:, 1] < table[:, 0] + 1e-12).all()


def test_the_softening_temperature_keeps_a_confident_model_measurable():
    logits = torch.tensor([[40.0, 0.0, 0.0], [0.0, 40.0, 0.0]])
    assert softening_temperature(logits) > 20
    assert kl_divergence(logits, logits * 0.9) < 1e-12                   # at T = 1 both are one-hot
    assert kl_divergence(logits, logits * 0.9, softening_temperature(logits)) > 1e-3

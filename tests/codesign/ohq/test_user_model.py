"""A user's module in OHQ mode: one error naming every unsupported operation, layer shapes, fake quantization."""

import pytest
import torch
from torch import nn

from codesign.errors import InputError
from codesign.ir.layers import Conv2d, Linear
from codesign.ohq.user_model import accelerator_layers, check_supported, fake_quantized


class Residual(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(channels, channels, 3, padding=1, groups=channels), nn.BatchNorm2d(channels)

    def forward(self, x):
        return x + torch.relu(self.bn(self.conv(x)))


class Gated(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        return self.conv(x) * torch.sigmoid(x)


def _net():
    return nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(), Residual(4), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(4, 10))


def test_a_residual_network_of_supported_operations_is_accepted_and_its_layers_read():
    net = _net()
    check_supported(net)
    layers = accelerator_layers(net, (1, 8, 8), batch=3)
    assert [type(layer) for layer in layers] == [Conv2d, Conv2d, Linear]
    stem, depthwise, classifier = layers
    assert (stem.name, stem.in_h, stem.out_h, stem.stride, stem.batch) == ("0", 8, 4, (2, 2), 3)
    assert depthwise.name == "2.conv" and depthwise.depthwise and depthwise.in_h == 4
    assert (classifier.in_features, classifier.out_features, classifier.batch) == (4, 10, 3)


def test_every_unsupported_module_and_function_is_named_in_one_error():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Sigmoid(), Gated(), nn.GELU(), nn.Upsample(scale_factor=2),
                        nn.Flatten(), nn.Linear(576, 10))
    with pytest.raises(InputError) as info:
        check_supported(net)
    listed = info.value.value
    for name in ("Sigmoid", "GELU", "Upsample", "function sigmoid", "function mul"):
        assert name in listed
    assert "Conv2d" not in listed and "Gated" not in listed     # a container: its operations are what is checked


def test_a_wrong_input_shape_is_an_input_error():
    with pytest.raises(InputError, match="input shape: '3,8,8' is not allowed"):
        accelerator_layers(_net(), (3, 8, 8))


def test_fake_quantization_puts_each_channel_on_its_own_grid_and_leaves_the_original():
    net = _net()
    before = net[0].weight.detach().clone()
    quantized = fake_quantized(net, {"0": (2, 2, 8, 4), "2.conv": (8,) * 4, "5": (4,) * 10})
    weight = quantized[0].weight
    for channel, bits in enumerate((2, 2, 8, 4)):
        assert len(torch.unique(weight[channel])) <= 2 ** bits
    assert torch.equal(net[0].weight, before)

"""OHQ's mask-guided quantization estimation (MQE): how much each layer's output distribution suffers at each bit width.

For every convolution and linear layer of a trained model and every candidate bit width, the layer's weights alone
are quantized (symmetric, per output channel, the step from each channel's largest magnitude, rounding half up as
the integer reference does) while every other layer stays in full precision; the sensitivity is the KL divergence
``KL(p_full || p_quantized)`` between the model's output distributions on a calibration batch (real images when
given, otherwise synthetic ones, as OHQ allows). The distributions are softened by a temperature, the reference
logits' standard deviation (`softening_temperature`): a trained network is so confident that at temperature 1 the
KL of most layers underflows to zero and the ranking is lost. The original weights are restored after each
measurement. `channel_group_sensitivity` does the same for groups of a layer's output channels, quantizing only the
group (the mask of OHQ's MQE), for allocations finer than a layer.
"""

from __future__ import annotations

import torch
from torch import nn

from codesign.errors import InputError
from codesign.quant.quantizers import max_abs_step, round_half_up

QUANTIZABLE = (nn.Conv2d, nn.Linear)


def quantizable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, module) for name, module in model.named_modules() if isinstance(module, QUANTIZABLE)]


def quantize_weight(weight: torch.Tensor, bits: int) -> torch.Tensor:
    """Symmetric per-output-channel quantization to ``bits`` (values in [-2^(b-1), 2^(b-1) - 1] times the step)."""
    top = (1 << (bits - 1)) - 1
    step = max_abs_step(weight, max(top, 1)).reshape(-1, *([1] * (weight.dim() - 1)))
    return torch.clamp(round_half_up(weight / step), -top - 1, top) * step


def kl_divergence(reference_logits: torch.Tensor, logits: torch.Tensor, temperature: float = 1.0) -> float:
    """Mean over the batch of KL(softmax(reference / T) || softmax(logits / T)), in float64."""
    log_p = torch.log_softmax(reference_logits.double() / temperature, dim=-1)
    log_q = torch.log_softmax(logits.double() / temperature, dim=-1)
    return float((log_p.exp() * (log_p - log_q)).sum(dim=-1).mean())


def softening_temperature(reference_logits: torch.Tensor) -> float:
    """The logits' mean standard deviation over classes, at least 1: dividing by it softens a trained network's
    nearly one-hot outputs, whose KL would otherwise underflow to 0 for most layers and widths."""
    return max(1.0, float(reference_logits.double().std(dim=-1).mean()))


def layer_sensitivity(model: nn.Module, images: torch.Tensor, bit_choices, *,
                      forward=None) -> tuple[list[str], torch.Tensor]:
    """Per quantizable layer (in ``named_modules`` order) and bit choice, the KL divergence of the model's outputs
    with that layer's weights quantized; returns the layer names and a [layers, choices] tensor."""
    groups, table = channel_group_sensitivity(model, images, bit_choices, None, forward=forward)
    return [name for name, _, _ in groups], table


@torch.no_grad()
def channel_group_sensitivity(model: nn.Module, images: torch.Tensor, bit_choices, group_size: int | None, *,
                              forward=None) -> tuple[list[tuple[str, int, int]], torch.Tensor]:
    """MQE per group of ``group_size`` consecutive output channels of each quantizable layer (None: the whole
    layer): only the group's weights are quantized, the rest of its layer and every other layer stay in full
    precision (OHQ's mask). Returns ``(layer name, first channel, end channel)`` per group and a [groups, choices]
    tensor."""
    if group_size is not None and group_size < 1:
        raise InputError("group size", group_size, "a positive number of channels")
    forward = forward or (lambda m, x: m(x))
    was_training = model.training
    model.eval()
    reference = forward(model, images)
    temperature = softening_temperature(reference)
    groups, rows = [], []
    for name, module in quantizable_layers(model):
        original = module.weight.detach().clone()
        channels = original.shape[0]
        step = group_size or channels
        for start in range(0, channels, step):
            end = min(start + step, channels)
            row = []
            for bits in bit_choices:
                module.weight[start:end] = quantize_weight(original[start:end], int(bits))
                row.append(kl_divergence(reference, forward(model, images), temperature))
            module.weight.copy_(original)
            groups.append((name, start, end))
            rows.append(row)
    model.train(was_training)
    return groups, torch.tensor(rows, dtype=torch.float64).reshape(len(groups), len(bit_choices))

"""OHQ's mask-guided quantization estimation (MQE): how much each layer's output distribution suffers at each bit width.

For every convolution and linear layer of a trained model and every candidate bit width, the layer's weights alone
are quantized (symmetric, per output channel, the step from each channel's largest magnitude, rounding half up as
the integer reference does) while every other layer stays in full precision; the sensitivity is the KL divergence
``KL(p_full || p_quantized)`` between the model's output distributions on a calibration batch (real images when
given, otherwise synthetic ones, as OHQ allows). The original weights are restored after each measurement.
"""

from __future__ import annotations

import torch
from torch import nn

from .quant import round_half_up

QUANTIZABLE = (nn.Conv2d, nn.Linear)


def quantizable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, module) for name, module in model.named_modules() if isinstance(module, QUANTIZABLE)]


def quantize_weight(weight: torch.Tensor, bits: int) -> torch.Tensor:
    """Symmetric per-output-channel quantization to ``bits`` (values in [-2^(b-1), 2^(b-1) - 1] times the step)."""
    top = (1 << (bits - 1)) - 1
    flat = weight.reshape(weight.shape[0], -1)
    step = (flat.abs().amax(dim=1).clamp(min=1e-12) / max(top, 1)).reshape(-1, *([1] * (weight.dim() - 1)))
    return torch.clamp(round_half_up(weight / step), -top - 1, top) * step


def kl_divergence(reference_logits: torch.Tensor, logits: torch.Tensor) -> float:
    """Mean over the batch of KL(softmax(reference) || softmax(logits))."""
    log_p = torch.log_softmax(reference_logits, dim=-1)
    log_q = torch.log_softmax(logits, dim=-1)
    return float((log_p.exp() * (log_p - log_q)).sum(dim=-1).mean())


@torch.no_grad()
def layer_sensitivity(model: nn.Module, images: torch.Tensor, bit_choices, *,
                      forward=None) -> tuple[list[str], torch.Tensor]:
    """Per quantizable layer (in ``named_modules`` order) and bit choice, the KL divergence of the model's outputs
    with that layer's weights quantized; returns the layer names and a [layers, choices] tensor."""
    forward = forward or (lambda m, x: m(x))
    was_training = model.training
    model.eval()
    reference = forward(model, images)
    layers = quantizable_layers(model)
    table = torch.zeros(len(layers), len(bit_choices), dtype=torch.float64)
    for i, (_, module) in enumerate(layers):
        original = module.weight.detach().clone()
        for j, bits in enumerate(bit_choices):
            module.weight.copy_(quantize_weight(original, int(bits)))
            table[i, j] = kl_divergence(reference, forward(model, images))
        module.weight.copy_(original)
    model.train(was_training)
    return [name for name, _ in layers], table

"""JAQ's accelerator generation network: from what the network currently looks like to a distribution over the
hardware candidates.

Its input is a summary of the network distribution (every architecture choice's probabilities and each searchable
layer's expected weight bits), detached: the network learns from its own cost terms, the generator learns which
hardware serves that network best. A two-layer MLP maps it to one logit per candidate; candidates the hard budgets
exclude (and, per step, those the sampled network does not fit) are masked out before the softmax.
"""

from __future__ import annotations

import torch
from torch import nn

from codesign.jaq.arch_logits import ArchLogits
from codesign.quant.supernet import SuperNet


def network_features(net: SuperNet, arch: ArchLogits) -> torch.Tensor:
    """The generator's input: architecture probabilities and per-layer mean expected bits / 8, detached."""
    with torch.no_grad():
        parts = [p.softmax(-1).flatten() for p in arch.parameters()]
        values = torch.tensor(net.spec.w_bits, dtype=torch.float32, device=arch.width.device)
        parts.append(torch.stack([(layer.w_logits.softmax(-1) @ values).mean() / 8 for layer in net.search_layers()]))
        return torch.cat(parts)


class HardwareGenerator(nn.Module):
    def __init__(self, features: int, candidates: int, hidden: int = 64):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, candidates))
        nn.init.zeros_(self.mlp[-1].weight)      # start uniform over the candidates
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, features: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """Probabilities over the candidates, zero where ``allowed`` is false."""
        logits = self.mlp(features)
        return torch.softmax(logits.masked_fill(~allowed, -torch.inf), dim=-1)

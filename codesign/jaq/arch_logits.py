"""The architecture half of the search's distribution: Gumbel-softmax logits over the supernet's choices.

Per stage: its depth (1 .. the stage's maximum) and its width multiplier; per block: its depthwise kernel and its
expansion ratio. `ArchLogits.sample` draws one architecture with hard Gumbel-softmax (straight-through): the forward
pass runs only the sampled path, and the one-hot's gradient reaches the logits through the gates the supernet
multiplies in (`codesign.quant.supernet.ArchGates`) and through the cost of the sampled layers
(`codesign.jaq.search_cost`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from codesign.quant.supernet import ArchChoice, ArchGates, SupernetSpec


class ArchLogits(nn.Module):
    def __init__(self, spec: SupernetSpec):
        super().__init__()
        self.spec = spec
        n_stages = len(spec.stages)
        self.depth = nn.ParameterList([nn.Parameter(torch.zeros(stage.depth)) for stage in spec.stages])
        self.width = nn.Parameter(torch.zeros(n_stages, len(spec.widths)))
        self.kernel = nn.ParameterList([nn.Parameter(torch.zeros(s.depth, len(spec.kernels))) for s in spec.stages])
        self.expand = nn.ParameterList([nn.Parameter(torch.zeros(s.depth, len(spec.expands))) for s in spec.stages])

    def sample(self, tau: float) -> tuple[ArchChoice, ArchGates]:
        """One architecture drawn from the logits (Gumbel noise from torch's global generator, so a seeded run
        repeats), with its straight-through gates."""
        def draw(logits):
            onehot = F.gumbel_softmax(logits, tau, hard=True)
            index = onehot.argmax(-1)
            return index, onehot.gather(-1, index.unsqueeze(-1)).squeeze(-1)

        spec = self.spec
        depths, widths, kernels, expands, block_gates, stage_gates = [], [], [], [], [], []
        for s in range(len(spec.stages)):
            d, d_gate = draw(self.depth[s])
            w, w_gate = draw(self.width[s])
            k, k_gate = draw(self.kernel[s])
            e, e_gate = draw(self.expand[s])
            depths.append(int(d) + 1)
            widths.append(spec.widths[int(w)])
            kernels.append(tuple(spec.kernels[int(i)] for i in k))
            expands.append(tuple(spec.expands[int(i)] for i in e))
            block_gates.append(tuple(k_gate * e_gate))
            stage_gates.append(d_gate * w_gate)
        arch = ArchChoice(tuple(depths), tuple(widths), tuple(kernels), tuple(expands))
        return arch, ArchGates(tuple(block_gates), tuple(stage_gates))

    def argmax(self) -> ArchChoice:
        """The most probable architecture: the derived network."""
        spec = self.spec
        return ArchChoice(
            tuple(int(self.depth[s].argmax()) + 1 for s in range(len(spec.stages))),
            tuple(spec.widths[int(i)] for i in self.width.argmax(-1)),
            tuple(tuple(spec.kernels[int(i)] for i in k.argmax(-1)) for k in self.kernel),
            tuple(tuple(spec.expands[int(i)] for i in e.argmax(-1)) for e in self.expand))

    @torch.no_grad()
    def probabilities(self) -> dict:
        """Every choice's probability, for the report."""
        return {"depth": [p.softmax(-1).tolist() for p in self.depth], "width": self.width.softmax(-1).tolist(),
                "kernel": [k.softmax(-1).tolist() for k in self.kernel],
                "expand": [e.softmax(-1).tolist() for e in self.expand]}

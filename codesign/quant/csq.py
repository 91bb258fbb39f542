"""CSQ (channel-wise sparse quantization, JAQ): only the most important channels carry the multi-branch bit search.

During the search every weight bit choice is a branch: the conv runs once per choice and the outputs are mixed by
Gumbel-softmax weights. Backward needs each branch's output (the gradient of a mixing weight is the inner product of
the upstream gradient with that branch), so activation memory grows with the number of choices n. CSQ ranks each
layer's output channels by |BatchNorm gamma| and runs the branches only for the top-K fraction; the other channels
take one path, and (as in JAQ) that path is unquantized. The branches are computed over the selected channels alone:
their weights (and, for a depthwise conv, their inputs) are gathered, the per-branch convs produce ``[B, K*C, H, W]``
tensors, and the result is scattered back, so the memory really scales with K: n branch copies become ``K*n`` plus
``(1 - K)`` for the single path, an ideal saving of ``n / (K*n + 1 - K)``.

The ranking is refreshed every N steps (`CsqSchedule`); between refreshes the selection is fixed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from codesign.errors import InputError


def rank_channels(gamma: torch.Tensor) -> torch.Tensor:
    """Channel indices by decreasing |gamma| (ties by index, so the ranking is deterministic)."""
    return torch.sort(gamma.detach().abs(), descending=True, stable=True).indices


def split_channels(rank: torch.Tensor, active: int, fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The selected top-``fraction`` and the remaining channels among the first ``active`` (weight sharing keeps a
    narrower layer's channels at the front)."""
    ordered = rank[rank < active]
    k = max(1, math.floor(fraction * active + 0.5))      # the nearest count: ceil would inflate K on narrow layers
    return ordered[:k], ordered[k:]


def multibranch_conv(x_sel: torch.Tensor, x_rest: torch.Tensor, weight: torch.Tensor, sel: torch.Tensor,
                     rest: torch.Tensor, branches: Sequence[Callable[[torch.Tensor], torch.Tensor]],
                     probs: torch.Tensor, conv: Callable) -> torch.Tensor:
    """Selected output channels: ``sum_i probs[:, i] * conv(x_sel, branch_i(weight[sel]))``; the rest: one float conv.

    ``branches[i]`` fake-quantizes the gathered weights at bit choice i (its per-channel steps already gathered);
    ``probs`` is ``[len(sel), n]``. ``x_sel`` / ``x_rest`` are the inputs of the two parts (the same tensor for a
    dense conv, the gathered channels for a depthwise one). Returns all channels in their original order.
    """
    w_sel = weight.index_select(0, sel)
    y = sum(probs[:, i].view(1, -1, 1, 1) * conv(x_sel, branch(w_sel)) for i, branch in enumerate(branches))
    if len(rest):
        y = torch.cat([y, conv(x_rest, weight.index_select(0, rest))], dim=1)
    inverse = torch.argsort(torch.cat([sel, rest]))
    return y.index_select(1, inverse)


class RecomputedTail(torch.autograd.Function):
    """Runs ``fn(y, *params)`` without keeping its intermediates; backward recomputes them from the saved ``y``.

    Used for each layer's element-wise tail (BatchNorm, ReLU, activation-bit branches), the same way for every K,
    so a layer keeps two activation copies (conv input, conv output) besides its weight branches.
    """

    @staticmethod
    def forward(ctx, fn, y, *params):
        ctx.fn = fn
        ctx.save_for_backward(y, *params)
        with torch.no_grad():
            return fn(y, *params)

    @staticmethod
    def backward(ctx, grad):
        saved = [t.detach().requires_grad_(t.requires_grad or i == 0) for i, t in enumerate(ctx.saved_tensors)]
        with torch.enable_grad():
            out = ctx.fn(*saved)
        needed = [t for t in saved if t.requires_grad]
        grads = iter(torch.autograd.grad(out, needed, grad, allow_unused=True))
        return (None, *(next(grads) if t.requires_grad else None for t in saved))


class CsqSchedule:
    """Keeps every searchable layer's channel ranking (its ``rank`` buffer) fresh: refreshed on step 0, N, 2N, ...

    ``layers`` are modules with ``bn`` (a BatchNorm) and ``rank``; the model reads ``fraction`` from here.
    """

    def __init__(self, layers: Sequence[torch.nn.Module], fraction: float, refresh_every: int):
        if not 0 < fraction <= 1:
            raise InputError("csq fraction", fraction, "a fraction in (0, 1]")
        if refresh_every < 1:
            raise InputError("csq refresh_every", refresh_every, "a positive number of steps")
        self.layers, self.fraction, self.refresh_every = list(layers), fraction, refresh_every
        self.steps = 0

    def refresh(self) -> None:
        for layer in self.layers:
            layer.rank.copy_(rank_channels(layer.bn.weight))

    def step(self) -> None:
        """Call once per training step, before the forward pass."""
        if self.steps % self.refresh_every == 0:
            self.refresh()
        self.steps += 1

"""Small CPU training loops: float pre-training, QAT and the multi-branch bit search, on any `ImageSet`.

One loop (`fit`) serves all three: it takes the forward function, so the same code trains a `QuantNet` (float or
QAT) and a `SuperNet` (a fixed architecture, float or search mode). Adam with a cosine learning-rate decay; the
data order is seeded.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from codesign.errors import InputError
from codesign.quant.datasets import ImageSet

Forward = Callable[[torch.Tensor], torch.Tensor]


def fit(model: nn.Module, data: ImageSet, *, epochs: int, lr: float, forward: Forward | None = None,
        batch_size: int = 64, seed: int = 0, before_step: Callable[[], None] | None = None) -> list[float]:
    """Minimize cross-entropy of ``forward`` (default: ``model``) over ``model``'s parameters, in train mode.

    Returns the wall seconds of each epoch. ``before_step`` runs before every batch (the CSQ schedule's refresh).
    """
    if epochs < 0:
        raise InputError("epochs", epochs, "a non-negative integer")
    forward = forward or model
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    steps = epochs * -(-len(data) // batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(steps, 1))
    generator = torch.Generator().manual_seed(seed)
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        for images, labels in data.batches(batch_size, shuffle=True, generator=generator):
            if before_step is not None:
                before_step()
            loss = F.cross_entropy(forward(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        seconds.append(time.perf_counter() - start)
    return seconds


@torch.no_grad()
def predictions(model: nn.Module, data: ImageSet, *, forward: Forward | None = None,
                batch_size: int = 256) -> torch.Tensor:
    """Predicted classes in eval mode (a quantized `QuantNet` then computes in integers)."""
    forward = forward or model
    model.eval()
    return torch.cat([forward(images).argmax(1) for images, _ in data.batches(batch_size)])


def accuracy(model: nn.Module, data: ImageSet, *, forward: Forward | None = None) -> float:
    return float((predictions(model, data, forward=forward) == data.labels).float().mean())

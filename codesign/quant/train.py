"""Small CPU training loops: float pre-training, QAT and the multi-branch bit search, on any `ImageSet`.

One loop (`fit`) serves all of them: it takes the forward function, so the same code trains a `QuantNet` (float or
QAT) and a `SuperNet` (a fixed architecture, float or search mode); the co-search's warm-up passes its own loss
(the sandwich rule), its own per-epoch batches, a progress bar and a checkpoint per epoch through the hooks. Adam
with a cosine learning-rate decay; the data order is seeded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from codesign.errors import InputError
from codesign.quant.datasets import ImageSet

Forward = Callable[[torch.Tensor], torch.Tensor]
Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


@dataclass
class FitState:
    """Where `fit` stands after an epoch; ``state_dict()`` is what ``fit(resume=...)`` continues from."""

    epoch: int                                  # epochs finished
    seconds: float                              # wall seconds of the epoch just finished
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    generator: torch.Generator                  # the default data order's

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "optimizer": self.optimizer.state_dict(), "schedule": self.schedule.state_dict(),
                "generator": self.generator.get_state()}


def fit(model: nn.Module, data: ImageSet, *, epochs: int, lr: float, forward: Forward | None = None,
        batch_size: int = 64, seed: int = 0, before_step: Callable[[], None] | None = None,
        loss: Loss | None = None, batches: Callable[[int], Batches] | None = None,
        after_step: Callable[[torch.Tensor], None] | None = None,
        after_epoch: Callable[[FitState], None] | None = None, resume: dict | None = None) -> list[float]:
    """Minimize cross-entropy of ``forward`` (default: ``model``) over ``model``'s parameters, in train mode.

    Returns the wall seconds of each epoch this call ran. ``before_step`` runs before every batch (the CSQ
    schedule's refresh). ``loss(images, labels)`` replaces the cross-entropy of ``forward``; ``batches(epoch)``
    replaces the seeded shuffle of ``data`` (which then only sets the schedule's length); ``after_step(loss)`` runs
    after every optimizer step; ``after_epoch(state)`` after every epoch, with the `FitState` to checkpoint;
    ``resume`` (a `FitState.state_dict()`) continues after the epoch it was taken at.
    """
    if epochs < 0:
        raise InputError("epochs", epochs, "a non-negative integer")
    forward = forward or model
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    steps = epochs * data.batch_count(batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(steps, 1))
    generator = torch.Generator().manual_seed(seed)
    start_epoch = 0
    if resume is not None:
        optimizer.load_state_dict(resume["optimizer"])
        schedule.load_state_dict(resume["schedule"])
        generator.set_state(resume["generator"].cpu())
        start_epoch = resume["epoch"]
    seconds = []
    for epoch in range(start_epoch, epochs):
        start = time.perf_counter()
        epoch_batches = batches(epoch) if batches is not None else \
            data.batches(batch_size, shuffle=True, generator=generator)
        for images, labels in epoch_batches:
            if before_step is not None:
                before_step()
            value = loss(images, labels) if loss is not None else F.cross_entropy(forward(images), labels)
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            optimizer.step()
            schedule.step()
            if after_step is not None:
                after_step(value)
        seconds.append(time.perf_counter() - start)
        if after_epoch is not None:
            after_epoch(FitState(epoch + 1, seconds[-1], optimizer, schedule, generator))
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

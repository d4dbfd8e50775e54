"""``ClassificationTask``: the one classification task of sonotell (timm's task pattern).

It pairs a classifier with its loss and returns a dict per step: ``{"loss", <metric>}``.
Every recipe that trains a classifier uses it: the downstream fine-tuning, Bonmati's
voice-assisted labelling network and its keyword encoder, ``sonotell train`` and the demo.

Batches are a dict (inputs under ``input_key``, targets under ``target_key``) or a tuple
``(inputs, targets)``. ``forward(model, batch)`` may replace ``model(inputs)`` for a model of
several inputs (it must be a module-level function so the task pickles for DDP).

Single-label: cross-entropy (optionally class-weighted) or the given ``loss``; the metric is
accuracy. Multi-label (``multilabel=True``): targets are (B, K) with 1 present, 0 absent and
-1 unknown; the loss is binary cross-entropy over the known entries only, and the metric is
the accuracy of the known entries at probability 0.5.

Example:
    >>> task = ClassificationTask(net, optimizer={"name": "adam", "lr": 1e-3}, recipe="toy")  # doctest: +SKIP
    >>> task.step({"frames": x, "label": y})  # doctest: +SKIP
    {'loss': tensor(1.09...), 'accuracy': tensor(0.33...)}
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from sonotell.train.task import Task


class ClassificationTask(Task):
    """A classifier and its loss.

    Args:
        model: maps inputs to logits (B, K).
        loss: ``loss(logits, targets)``; default cross-entropy (weighted by ``class_weights``)
            or, when ``multilabel``, masked binary cross-entropy.
        class_weights: (K,) weights of the default single-label cross-entropy.
        forward: ``forward(model, batch) -> logits`` for a model of several inputs.
        input_key / target_key: where a dict batch keeps inputs and targets.
        metric: name under which the accuracy is returned (and logged).
    """

    def __init__(
        self,
        model: nn.Module,
        loss: nn.Module | Callable | None = None,
        *,
        optimizer: dict | None = None,
        recipe: str = "classify",
        config: dict | None = None,
        class_weights: torch.Tensor | None = None,
        multilabel: bool = False,
        forward: Callable | None = None,
        input_key: str = "frames",
        target_key: str = "label",
        metric: str = "accuracy",
    ):
        super().__init__(model, optimizer=optimizer, recipe=recipe, config=config)
        self.loss = loss
        self.multilabel = multilabel
        self.forward_fn = forward
        self.input_key, self.target_key, self.metric = input_key, target_key, metric
        self.register_buffer(
            "class_weights", class_weights if class_weights is not None else torch.ones(0), persistent=False
        )

    def split(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits, targets)`` of a batch."""
        if self.forward_fn is not None:
            logits = self.forward_fn(self.model, batch)
        else:
            logits = self.model(batch[self.input_key] if isinstance(batch, dict) else batch[0])
        y = batch[self.target_key] if isinstance(batch, dict) else batch[1]
        return logits, y

    def step(self, batch) -> dict:
        logits, y = self.split(batch)
        if self.multilabel:
            loss = self.loss(logits, y) if self.loss is not None else masked_bce(logits, y)
            known = y >= 0
            hit = ((logits > 0) == (y > 0.5)) & known
            acc = hit.sum().float() / known.sum().clamp(min=1)
            return {"loss": loss, self.metric: acc}
        if self.loss is not None:
            loss = self.loss(logits, y)
        else:
            weight = self.class_weights if self.class_weights.numel() else None
            loss = F.cross_entropy(logits, y, weight=weight)
        return {"loss": loss, self.metric: (logits.argmax(dim=1) == y).float().mean()}


def masked_bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy over entries whose target is known (0 or 1); -1 entries are ignored.

    Example:
        >>> round(masked_bce(torch.zeros(1, 2), torch.tensor([[1.0, -1.0]])).item(), 4)
        0.6931
    """
    known = targets >= 0
    if not known.any():
        return logits.sum() * 0.0
    return F.binary_cross_entropy_with_logits(logits[known], targets[known].float())

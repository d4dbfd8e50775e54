"""Class-weighted categorical cross-entropy (softmax), the loss of Bonmati et al. 2021.

The loss is ``sum_i w[y_i] * -log softmax(z_i)[y_i] / sum_i w[y_i]`` (PyTorch's weighted mean).
Weights default to ``N / (K * count_k)`` from the training labels; a class absent from the
training fold gets weight 0 (it has no term in the loss anyway).

Example:
    >>> import torch
    >>> loss = WeightedCrossEntropy(class_weights_from_labels([0, 0, 0, 1], 2))
    >>> round(float(loss(torch.zeros(2, 2), torch.tensor([0, 1]))), 4)
    0.6931
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def class_weights_from_labels(labels: Sequence[int], n_classes: int) -> torch.Tensor:
    """Inverse-frequency weights ``N / (K * count_k)`` (sklearn's "balanced"); 0 for an absent class."""
    y = np.asarray(labels, int)
    y = y[y >= 0]
    if y.size == 0:
        raise ValueError("class weights need at least one labelled sample")
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    weights = np.divide(len(y), n_classes * counts, out=np.zeros(n_classes), where=counts > 0)
    return torch.tensor(weights, dtype=torch.float32)


class WeightedCrossEntropy(nn.Module):
    """Softmax cross-entropy with per-class weights; labels ``-1`` are ignored."""

    def __init__(self, weights: Sequence[float] | torch.Tensor | None = None):
        super().__init__()
        self.register_buffer("weights", None if weights is None else torch.as_tensor(weights, dtype=torch.float32))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.weights is not None and self.weights.numel() != logits.shape[1]:
            raise ValueError(f"{self.weights.numel()} class weights for {logits.shape[1]} classes")
        return F.cross_entropy(logits, target, weight=self.weights, ignore_index=-1)

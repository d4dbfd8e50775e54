"""Binary audio/text-visual correspondence: do these two streams come from the same moment?

Positives are aligned pairs; negatives are shifted (same scan, other time) or other-scan
pairs (``sonotell.losses.pairs``). The network outputs one logit per pair.

Example:
    >>> import torch
    >>> loss = CorrespondenceLoss()
    >>> loss(torch.tensor([3.0, -3.0]), torch.tensor([1.0, 0.0])).round(decimals=4)
    tensor(0.0486)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sonotell.losses.pairs import require_pairs


class CorrespondenceLoss(nn.Module):
    """Binary cross-entropy on correspondence logits (1 = aligned, 0 = negative pair).

    Args:
        pos_weight: weight of the positive term (e.g. n_negatives / n_positives).
    """

    def __init__(self, pos_weight: float | None = None):
        super().__init__()
        self.pos_weight = pos_weight

    def forward(self, logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        logits, targets = logits.reshape(-1), targets.reshape(-1).to(logits.dtype)
        if logits.shape != targets.shape:
            raise ValueError(f"correspondence: {logits.numel()} logits but {targets.numel()} targets")
        require_pairs(logits.numel(), "correspondence")
        pw = None if self.pos_weight is None else torch.tensor(self.pos_weight, dtype=logits.dtype)
        per_pair = F.binary_cross_entropy_with_logits(logits, targets, pos_weight=pw, reduction="none")
        if weights is None:
            return per_pair.mean()
        weights = weights.reshape(-1).to(logits.dtype)
        return (weights * per_pair).sum() / weights.sum().clamp_min(1e-8)

    @staticmethod
    def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return ((logits.reshape(-1) > 0).float() == targets.reshape(-1).float()).float().mean()

"""Affinity-aware self-paced weighting of pairs (Jiao et al., MICCAI 2020).

Early in training only easy pairs -- those whose video and audio embeddings already agree
(high affinity, cosine similarity) -- drive the contrastive loss; the admitted fraction
grows each epoch until every pair counts. This keeps the many weakly related video-speech
pairs of real narration from dominating the start.

Example:
    >>> import torch
    >>> spl = SelfPacedWeighting(start_fraction=0.5, epochs_to_all=2)
    >>> spl.weights(torch.tensor([0.9, 0.1, 0.5, 0.7]))
    tensor([1., 0., 0., 1.])
    >>> spl.set_epoch(2); spl.weights(torch.tensor([0.9, 0.1, 0.5, 0.7]))
    tensor([1., 1., 1., 1.])
"""

from __future__ import annotations

import math

import torch


class SelfPacedWeighting:
    """Weights in [0, 1] per positive pair from its affinity and the training epoch.

    Args:
        start_fraction: fraction of pairs (the highest-affinity ones) admitted at epoch 0.
        epochs_to_all: epochs after which every pair is admitted (linear pace).
        mode: ``hard`` (0/1 weights) or ``soft`` (sigmoid around the affinity threshold).
        softness: sigmoid width (in affinity units) of the ``soft`` mode.
    """

    def __init__(
        self, start_fraction: float = 0.5, epochs_to_all: int = 10, mode: str = "hard", softness: float = 0.05
    ):
        if not 0.0 < start_fraction <= 1.0:
            raise ValueError(f"start_fraction must be in (0, 1], got {start_fraction}")
        if mode not in ("hard", "soft"):
            raise ValueError(f"self-paced mode must be 'hard' or 'soft', got {mode!r}")
        self.start_fraction, self.epochs_to_all, self.mode, self.softness = (
            start_fraction,
            max(0, epochs_to_all),
            mode,
            softness,
        )
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def fraction(self) -> float:
        if self.epochs_to_all == 0:
            return 1.0
        return min(1.0, self.start_fraction + (1.0 - self.start_fraction) * self.epoch / self.epochs_to_all)

    def weights(self, affinity: torch.Tensor) -> torch.Tensor:
        """(B,) weights for (B,) affinities; the ceil(fraction * B) highest get weight 1 (``hard``)."""
        affinity = affinity.detach().reshape(-1)
        n = affinity.numel()
        k = min(n, max(1, math.ceil(self.fraction * n - 1e-9)))
        if k == n:
            return torch.ones_like(affinity)
        threshold = affinity.topk(k).values[-1]
        if self.mode == "hard":
            return (affinity >= threshold).to(affinity.dtype)
        return torch.sigmoid((affinity - threshold) / self.softness)

    def __call__(self, per_pair_loss: torch.Tensor, affinity: torch.Tensor) -> torch.Tensor:
        """Weighted mean of ``per_pair_loss`` (B,) under the current pace."""
        w = self.weights(affinity).to(per_pair_loss.dtype)
        return (w * per_pair_loss).sum() / w.sum().clamp_min(1e-8)

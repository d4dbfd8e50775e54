"""Cross-modal InfoNCE with temperature (CLIP-style, both directions).

Row i of ``a`` and row i of ``b`` are a positive pair; every other row of the other modality
is a negative unless ``ignore`` marks it as a possible false negative. Rows flagged as not
``valid`` (e.g. clips without speech) are not used as anchors but stay as negatives.

Example:
    >>> import torch
    >>> loss = InfoNCE(temperature=0.1)
    >>> a = torch.eye(3)
    >>> bool(loss(a, a) < loss(a, a.flip(0)))
    True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sonotell.losses.pairs import require_pairs


class InfoNCE(nn.Module):
    """Softmax cross-entropy of the positive among cosine similarities divided by ``temperature``.

    Args:
        temperature: softmax temperature tau.
        symmetric: average the a->b and b->a directions.
        reduction: ``mean`` over anchors, or ``none`` for per-anchor losses (B,) (a->b + b->a)/2.
    """

    def __init__(self, temperature: float = 0.07, symmetric: bool = True, reduction: str = "mean"):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"InfoNCE temperature must be > 0, got {temperature}")
        self.temperature, self.symmetric, self.reduction = temperature, symmetric, reduction

    def forward(
        self, a: torch.Tensor, b: torch.Tensor, valid: torch.Tensor | None = None, ignore: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``a``, ``b``: (B, D); ``valid``: (B,) bool anchors; ``ignore``: (B, B) bool off-diagonal pairs to drop."""
        if a.shape != b.shape or a.ndim != 2:
            raise ValueError(
                f"InfoNCE expects two (B, D) tensors of one shape, got {tuple(a.shape)} and {tuple(b.shape)}"
            )
        n = a.shape[0]
        require_pairs(n, "InfoNCE")
        logits = F.normalize(a, dim=1) @ F.normalize(b, dim=1).T / self.temperature
        if ignore is not None:
            ignore = ignore.clone().fill_diagonal_(False)
            logits = logits.masked_fill(ignore, float("-inf"))
        target = torch.arange(n, device=a.device)
        per_anchor = F.cross_entropy(logits, target, reduction="none")
        if self.symmetric:
            per_anchor = 0.5 * (per_anchor + F.cross_entropy(logits.T, target, reduction="none"))
        if self.reduction == "none":
            return per_anchor
        if valid is None:
            return per_anchor.mean()
        valid = valid.to(per_anchor.dtype)
        return (valid * per_anchor).sum() / valid.sum().clamp_min(1.0)

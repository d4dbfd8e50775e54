"""VSE++ triplet ranking loss with the hardest negative (Faghri et al. 2018).

For every positive pair (a_i, b_i) and a margin m, hinge costs
``[m - s(a_i, b_i) + s(a_i, b_j)]_+`` and ``[m - s(a_i, b_i) + s(a_j, b_i)]_+`` over
negatives j, with s the cosine similarity; VSE++ keeps only the hardest negative of each
anchor (``max_violation``), the older VSE sums them all.

Example:
    >>> import torch
    >>> VSEPPLoss(margin=0.2)(torch.eye(2), torch.eye(2))
    tensor(0.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sonotell.losses.pairs import require_pairs


class VSEPPLoss(nn.Module):
    """Bidirectional hinge triplet loss on cosine similarity.

    Args:
        margin: the ranking margin m.
        max_violation: hardest negative only (VSE++) or sum over negatives (VSE0).
        reduction: ``mean`` or ``sum`` over anchors (VSE++ sums; mean keeps scale batch-free).
    """

    def __init__(self, margin: float = 0.2, max_violation: bool = True, reduction: str = "mean"):
        super().__init__()
        self.margin, self.max_violation, self.reduction = margin, max_violation, reduction

    def forward(
        self, a: torch.Tensor, b: torch.Tensor, ignore: torch.Tensor | None = None, normalized: bool = False
    ) -> torch.Tensor:
        """``a``, ``b``: (B, D) paired rows; ``ignore``: (B, B) bool pairs that are not negatives."""
        n = a.shape[0]
        require_pairs(n, "VSE++")
        if not normalized:
            a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
        sim = a @ b.T
        pos = sim.diagonal()
        not_neg = torch.eye(n, dtype=torch.bool, device=a.device)
        if ignore is not None:
            not_neg = not_neg | ignore
        cost_b = (self.margin + sim - pos[:, None]).clamp_min(0).masked_fill(not_neg, 0)  # anchor a_i, negatives b_j
        cost_a = (self.margin + sim - pos[None, :]).clamp_min(0).masked_fill(not_neg, 0)  # anchor b_j, negatives a_i
        if self.max_violation:
            per = cost_b.max(dim=1).values + cost_a.max(dim=0).values
        else:
            per = cost_b.sum(dim=1) + cost_a.sum(dim=0)
        return per.sum() if self.reduction == "sum" else per.mean()

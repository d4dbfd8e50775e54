"""FixMatch unlabelled terms for multi-label classification (Sohn et al. 2020; Dadoun et al. 2023).

Both take the logits of the *weakly* augmented unlabelled images (pseudo-labels, no gradient)
and of the *strongly* augmented ones (trained to agree with confident pseudo-labels).

* One head: sigmoid per class; pseudo-label ``1[p_w > 0.5]``; a class counts for an image
  only where the pseudo-label is confident, ``max(p_w, 1 - p_w) >= tau`` (``mask="class"``),
  or an image counts only when *all* its classes are (``mask="sample"``).
* Two heads: a single-label head over the label *combinations* gives the pseudo-label
  (argmax combination, confident when its softmax ``>= tau``); the strong view is trained
  with CE on that head and BCE on the multi-label head against the combination's multi-hot.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def _check_logits(*tensors: torch.Tensor) -> None:
    for t in tensors:
        if not torch.isfinite(t).all():
            raise ValueError("FixMatch: logits contain NaN or inf")


class MultiLabelFixMatchLoss(nn.Module):
    """One-head unlabelled term: masked BCE of strong logits against 0.5-thresholded weak sigmoid.

    The loss is a mean over all (image, class) pairs, so a batch with no confident
    pseudo-label contributes 0 (FixMatch's convention), never NaN.

    Example:
        >>> loss = MultiLabelFixMatchLoss(threshold=0.9)
        >>> out = loss(torch.tensor([[4.0, 0.0]]), torch.tensor([[0.0, 0.0]]))
        >>> round(out["loss"].item(), 4), out["mask_rate"].item()
        (0.3466, 0.5)
    """

    def __init__(self, threshold: float = 0.95, mask: str = "class"):
        super().__init__()
        if not 0.5 <= threshold <= 1.0:
            raise ValueError(f"FixMatch: confidence threshold tau must be in [0.5, 1], got {threshold}")
        if mask not in ("class", "sample"):
            raise ValueError(f"FixMatch: mask must be 'class' or 'sample', got {mask!r}")
        self.threshold = threshold
        self.mask = mask

    def forward(self, logits_weak: torch.Tensor, logits_strong: torch.Tensor) -> dict[str, torch.Tensor]:
        _check_logits(logits_weak, logits_strong)
        with torch.no_grad():
            probs = torch.sigmoid(logits_weak.detach())
            pseudo = (probs > 0.5).float()
            confident = (torch.maximum(probs, 1 - probs) >= self.threshold).float()
            if self.mask == "sample":
                confident = confident.min(dim=1, keepdim=True).values.expand_as(confident)
        bce = F.binary_cross_entropy_with_logits(logits_strong, pseudo, reduction="none")
        return {"loss": (bce * confident).mean(), "mask_rate": confident.mean()}


class TwoHeadFixMatchLoss(nn.Module):
    """Two-head unlabelled term: pseudo-labels from the combination head.

    Args:
        combinations: (C, K) multi-hot of the label combinations the combination head predicts.
        threshold: confidence tau on the combination softmax.
        multilabel_weight: weight of the BCE on the multi-label head (the CE on the combination
            head has weight 1).

    Example:
        >>> combos = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
        >>> loss = TwoHeadFixMatchLoss(combos, threshold=0.5)
        >>> out = loss(torch.tensor([[0.0, 3.0]]), torch.tensor([[0.0, 3.0]]), torch.tensor([[0.0, 0.0]]))
        >>> round(out["loss"].item(), 4)
        0.7417
    """

    def __init__(self, combinations: torch.Tensor, threshold: float = 0.95, multilabel_weight: float = 1.0):
        super().__init__()
        combinations = torch.as_tensor(combinations, dtype=torch.float32)
        if combinations.ndim != 2 or combinations.shape[0] < 2:
            raise ValueError(f"two-head FixMatch: need a (C>=2, K) combination table, got {tuple(combinations.shape)}")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"FixMatch: confidence threshold tau must be in [0, 1], got {threshold}")
        self.register_buffer("combinations", combinations)
        self.threshold = threshold
        self.multilabel_weight = multilabel_weight

    def forward(
        self, combo_logits_weak: torch.Tensor, combo_logits_strong: torch.Tensor, multilabel_logits_strong: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        _check_logits(combo_logits_weak, combo_logits_strong, multilabel_logits_strong)
        if combo_logits_weak.shape[1] != self.combinations.shape[0]:
            raise ValueError(
                f"two-head FixMatch: combination head has {combo_logits_weak.shape[1]} outputs, "
                f"table has {self.combinations.shape[0]} rows"
            )
        with torch.no_grad():
            conf, combo = torch.softmax(combo_logits_weak.detach(), dim=1).max(dim=1)
            mask = (conf >= self.threshold).float()
            pseudo_multi_hot = self.combinations[combo]
        ce = F.cross_entropy(combo_logits_strong, combo, reduction="none")
        bce = F.binary_cross_entropy_with_logits(multilabel_logits_strong, pseudo_multi_hot, reduction="none").mean(
            dim=1
        )
        per_image = ce + self.multilabel_weight * bce
        return {"loss": (per_image * mask).mean(), "mask_rate": mask.mean()}

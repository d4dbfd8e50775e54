"""Masked multi-label binary cross-entropy: present -> 1, negated -> 0, unknown -> masked or a weak negative.

Speech labels say what is there (a mention) and, rarely, what is not ("no effusion"); about every
other (frame, finding) pair nothing is said. Treating those as negatives ("assume negative") halves
the positive rate and teaches the model to say "absent" (issue #19), so by default an unknown entry
has no term in the loss (CheXpert's U-Ignore, Irvin et al. 2019). ``unknown_weight > 0`` turns
unknowns into weak negatives instead (a down-weighted "assume negative", as in Kim et al. 2022,
"Large Loss Matters", and Zhang et al. 2021, Hill/SPLC), useful when negations are rare.

Per entry with target ``y`` in {1, 0, -1} and logit ``z``::

    y = 1:   w_pos[k] * -log sigmoid(z)
    y = 0:   -log(1 - sigmoid(z))
    y = -1:  unknown_weight * -log(1 - sigmoid(z))      (0 by default: masked)

and the loss is the sum over entries divided by the number of known entries (at least 1), so
turning on weak negatives does not change the scale of the known terms.

Example:
    >>> import torch
    >>> loss = MaskedMultilabelBCE()
    >>> round(float(loss(torch.zeros(1, 2), torch.tensor([[1.0, -1.0]]))), 4)
    0.6931
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def positive_weights(targets: np.ndarray, max_weight: float = 10.0) -> np.ndarray:
    """Per label ``#negative / #positive`` among the known entries of the training split, clipped to [1, max].

    A label with no positive (not trainable) or no negative gets 1.

    Example:
        >>> positive_weights(np.array([[1, 0], [0, -1], [0, 1], [0, 1]])).tolist()
        [3.0, 1.0]
    """
    y = np.asarray(targets)
    pos = (y == 1).sum(0).astype(np.float64)
    neg = (y == 0).sum(0).astype(np.float64)
    w = np.where((pos > 0) & (neg > 0), neg / np.maximum(pos, 1), 1.0)
    return np.clip(w, 1.0, float(max_weight))


class MaskedMultilabelBCE(nn.Module):
    """Binary cross-entropy over known entries, per-label positive weights, optional weak negatives.

    Args:
        pos_weight: (K,) weight of each label's positive term (``positive_weights``), or None (1).
        unknown_weight: weight of an unknown entry taken as a negative; 0 masks it (the default).
    """

    def __init__(self, pos_weight: torch.Tensor | np.ndarray | None = None, unknown_weight: float = 0.0):
        super().__init__()
        if unknown_weight < 0:
            raise ValueError(f"unknown_weight must be >= 0, not {unknown_weight}")
        pw = torch.as_tensor(pos_weight, dtype=torch.float32) if pos_weight is not None else torch.ones(0)
        self.register_buffer("pos_weight", pw, persistent=False)
        self.unknown_weight = float(unknown_weight)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        y = targets.float()
        pos, neg, unk = y == 1, y == 0, y < 0
        n_known = (pos | neg).sum().clamp(min=1)
        pw = self.pos_weight if self.pos_weight.numel() else torch.ones(logits.shape[1], device=logits.device)
        loss_pos = F.softplus(-logits) * pw.to(logits.dtype)[None, :]  # -log sigmoid(z)
        loss_neg = F.softplus(logits)  # -log(1 - sigmoid(z))
        total = (loss_pos * pos).sum() + (loss_neg * neg).sum()
        if self.unknown_weight > 0:
            total = total + self.unknown_weight * (loss_neg * unk).sum()
        return total / n_known

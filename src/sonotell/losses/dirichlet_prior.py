"""Symmetric Dirichlet prior on cluster sizes ``L_SD`` (Dadoun et al., 2023).

PICA's negative entropy penalises unbalanced clusters only mildly near an empty cluster
(its gradient ``log s_k`` is finite-ish and weak). The symmetric Dirichlet negative
log-density with concentration ``alpha = 1 + eps``

    L_SD(s) = -log Dir(s; alpha) = K log Gamma(alpha) - log Gamma(K alpha) - (alpha - 1) sum_k log s_k

is minimal at the uniform partition and grows without bound as any cluster empties, so
it keeps every cluster alive while leaving their sizes free to be unequal (the organs are
not equally frequent). With ``eps -> 0`` it is flat (no prior).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from sonotell.losses.pica import cluster_size_distribution

# Keeps log s_k finite when a cluster is empty in a batch; the loss is then large, not NaN.
_MIN_SIZE = 1e-6


class DirichletPriorLoss(nn.Module):
    """Negative log-density of the cluster-size distribution under ``Dir(1 + eps, ..., 1 + eps)``.

    Args:
        eps: concentration above 1; must be > 0 (``alpha = 1 + eps``).
        normalise: subtract the value at the uniform partition so the minimum is 0.

    Example:
        >>> round(DirichletPriorLoss(eps=0.5, normalise=True)(torch.full((4, 2), 0.5)).item(), 6)
        0.0
    """

    def __init__(self, eps: float = 0.1, normalise: bool = True):
        super().__init__()
        if not eps > 0:
            raise ValueError(f"Dirichlet prior: eps must be > 0 (alpha = 1 + eps), got {eps}")
        self.eps = float(eps)
        self.normalise = normalise

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        sizes = cluster_size_distribution(p).clamp_min(_MIN_SIZE)
        k = sizes.shape[0]
        alpha = 1.0 + self.eps
        log_norm = k * math.lgamma(alpha) - math.lgamma(k * alpha)
        loss = log_norm - self.eps * torch.log(sizes).sum()
        if self.normalise:
            loss = loss - (log_norm + self.eps * k * math.log(k))
        return loss

"""PICA deep-clustering losses (Huang et al., CVPR 2020): partition uncertainty index,
its softmax self-attention cross-entropy ``L_CE`` and the negative-entropy cluster-size
term ``L_NE``.

``P`` is the (N, K) cluster prediction matrix of a batch (rows are softmax over K clusters);
``P'`` is the same batch under another augmentation. A cluster is a *column* of ``P``: the
N-vector of how much every image belongs to it. PICA asks that column ``k`` of ``P`` be
most similar to column ``k`` of ``P'`` and dissimilar to the others (confident, stable
partitions).
"""

from __future__ import annotations

import logging
import math

import torch
from torch import nn

log = logging.getLogger(__name__)

_EPS = 1e-8


def _check_predictions(p: torch.Tensor, name: str = "P") -> None:
    if p.ndim != 2:
        raise ValueError(f"{name}: expected an (N, K) cluster prediction matrix, got shape {tuple(p.shape)}")
    if not torch.isfinite(p).all():
        raise ValueError(f"{name}: cluster predictions contain NaN or inf")


def partition_uncertainty_index(p: torch.Tensor, p_aug: torch.Tensor) -> torch.Tensor:
    """Cosine similarity between the cluster columns of ``p`` and those of ``p_aug``: (K, K).

    Example:
        >>> p = torch.eye(2)
        >>> partition_uncertainty_index(p, p)
        tensor([[1., 0.],
                [0., 1.]])
    """
    _check_predictions(p, "P")
    _check_predictions(p_aug, "P'")
    if p.shape != p_aug.shape:
        raise ValueError(f"P and P' differ in shape: {tuple(p.shape)} vs {tuple(p_aug.shape)}")
    n, k = p.shape
    if k > n:
        log.warning("K=%d clusters > %d samples in the batch: some clusters cannot be populated", k, n)
    q = p / p.norm(dim=0, keepdim=True).clamp_min(_EPS)
    q_aug = p_aug / p_aug.norm(dim=0, keepdim=True).clamp_min(_EPS)
    return q.t() @ q_aug


class PICALoss(nn.Module):
    """``L_CE``: softmax self-attention over the PUI rows, cross-entropy against the diagonal.

    ``L_CE = (1/K) * sum_k -log( exp(PUI[k,k]) / sum_j exp(PUI[k,j]) )``.

    Example:
        >>> PICALoss()(torch.eye(2), torch.eye(2)).item()  # doctest: +ELLIPSIS
        0.313...
    """

    def forward(self, p: torch.Tensor, p_aug: torch.Tensor) -> torch.Tensor:
        pui = partition_uncertainty_index(p, p_aug)
        target = torch.arange(pui.shape[0], device=pui.device)
        return nn.functional.cross_entropy(pui, target)


def cluster_size_distribution(p: torch.Tensor) -> torch.Tensor:
    """Fraction of the batch's probability mass in each cluster: ``||q_k||_1 / ||P||_1`` (K,)."""
    _check_predictions(p)
    total = p.sum()
    if total <= 0:
        raise ValueError("P: cluster predictions sum to zero (all-zero rows?)")
    return p.sum(dim=0) / total


class NegativeEntropyLoss(nn.Module):
    """``L_NE = log K + sum_k s_k log s_k`` with ``s`` the cluster-size distribution; 0 when balanced.

    Example:
        >>> NegativeEntropyLoss()(torch.full((4, 2), 0.5)).item()
        0.0
    """

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        sizes = cluster_size_distribution(p)
        k = sizes.shape[0]
        # 0 log 0 = 0: an empty cluster adds nothing (no NaN), the entropy deficit still shows it.
        ent_terms = torch.where(sizes > 0, sizes * torch.log(sizes.clamp_min(_EPS)), torch.zeros_like(sizes))
        return math.log(k) + ent_terms.sum()

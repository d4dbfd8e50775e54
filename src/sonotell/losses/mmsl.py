"""Multi-modal similarity learning (MMSL) of the dual recipe (Gridach et al., ISBI 2024).

Each modality is mapped by FC + BatchNorm into a joint space; pairs are compared by cosine
similarity and trained with the hardest-negative triplet ranking loss (VSE++).

Example:
    >>> import torch
    >>> mmsl = MMSLoss(dim_a=8, dim_b=6, embed_dim=4)
    >>> mmsl(torch.randn(4, 8), torch.randn(4, 6)).ndim
    0
"""

from __future__ import annotations

import torch
from torch import nn

from sonotell.losses.vsepp import VSEPPLoss


class MMSLoss(nn.Module):
    """FC+BN projection of two modalities, cosine similarity, hardest-negative triplet loss.

    Args:
        dim_a, dim_b: input sizes of the two modalities.
        embed_dim: joint-space size.
        margin: triplet margin.
    """

    def __init__(self, dim_a: int, dim_b: int, embed_dim: int, margin: float = 0.2):
        super().__init__()
        self.project_a = nn.Sequential(nn.Linear(dim_a, embed_dim), nn.BatchNorm1d(embed_dim))
        self.project_b = nn.Sequential(nn.Linear(dim_b, embed_dim), nn.BatchNorm1d(embed_dim))
        self.triplet = VSEPPLoss(margin=margin, max_violation=True)

    def forward(self, a: torch.Tensor, b: torch.Tensor, ignore: torch.Tensor | None = None) -> torch.Tensor:
        return self.triplet(self.project_a(a), self.project_b(b), ignore=ignore)

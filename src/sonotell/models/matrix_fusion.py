"""Matrix fusion of two feature sequences (Bonmati et al. 2021): C = Q Pᵀ per channel, 2D conv, GAP.

For each of the R channels the voice features q_r (length Nq, over time) and the image
features p_r (length Np, over positions) give an Nq×Np outer product; the R products form
an R-channel map that a 2D convolution turns into K class maps, averaged to K scores.
Image-only and voice-only ablations skip the product and feed one branch to the same head.

Example:
    >>> import torch
    >>> fuse = MatrixFusion(channels=16, num_classes=3)
    >>> fuse(torch.randn(2, 16, 8), torch.randn(2, 16, 2, 2)).shape
    torch.Size([2, 3])
"""

from __future__ import annotations

import torch
from torch import nn


def matrix_product(q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """(B, R, Nq) and (B, R, Np) or (B, R, h, w) -> (B, R, Nq, Np): C_r = q_r p_rᵀ for every channel r."""
    if p.dim() == 4:
        p = p.flatten(2)
    if q.shape[:2] != p.shape[:2]:
        raise ValueError(
            f"voice features {tuple(q.shape)} and image features {tuple(p.shape)} need the same batch and channel sizes"
        )
    return q.unsqueeze(3) * p.unsqueeze(2)


class MatrixFusion(nn.Module):
    """The joint function: product (or one branch alone), then ``Conv2d(R, K)`` and global average pooling."""

    def __init__(self, channels: int, num_classes: int, kernel_size: int = 3):
        super().__init__()
        self.head = nn.Conv2d(channels, num_classes, kernel_size, padding=kernel_size // 2)

    def forward(self, q: torch.Tensor | None, p: torch.Tensor | None) -> torch.Tensor:
        if q is not None and p is not None:
            joint = matrix_product(q, p)
        elif p is not None:
            joint = p if p.dim() == 4 else p.unsqueeze(2)
        elif q is not None:
            joint = q.unsqueeze(3)
        else:
            raise ValueError("matrix fusion needs at least one of the voice or image features")
        return self.head(joint).mean(dim=(2, 3))

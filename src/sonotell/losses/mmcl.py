"""Multi-modal contrastive learning (MMCL) of the dual recipe (Gridach et al., ISBI 2024).

The audio embedding is enriched by the visual stream into a fused embedding
``F_va = F_a + V(F_v, F_a)`` (eq. 3), where ``V`` is a small FC network on the concatenated
video and audio embeddings. Contrastive terms (temperature ``tau``, cosine similarity):

* ``L_v``  = InfoNCE(F_v, F_va)  -- video vs fused (eqs. 4-5),
* ``L_i``  = InfoNCE(F_i, F_va)  -- sampled image vs fused (eq. 6),
* ``L_vi`` = InfoNCE(F_v, F_i)   -- video vs its own frame (eq. 7),
* ``L_MMCL = pi * (L_v + L_i) / 2 + (1 - pi) * L_vi`` (eq. 8), ``tau = 0.1``, ``pi = 0.5``.

This is our reading of eqs. 3-8 (the paper's text is not reproduced in this repository):
the fused term and the weighting by pi are as published, the exact form of V is a choice.

Example:
    >>> import torch
    >>> mmcl = MMCLoss(dim=8)
    >>> out = mmcl(torch.randn(4, 8), torch.randn(4, 8), torch.randn(4, 8))
    >>> sorted(out)
    ['l_i', 'l_v', 'l_vi', 'loss']
"""

from __future__ import annotations

import torch
from torch import nn

from sonotell.losses.infonce import InfoNCE


class MMCLoss(nn.Module):
    """Fused-embedding contrastive terms; returns a dict with ``loss`` and each term.

    Args:
        dim: size of the (projected) video, image and audio embeddings.
        tau: temperature (0.1 in the paper).
        pi: weight of the fused terms against the video-image term (0.5 in the paper).
    """

    def __init__(self, dim: int, tau: float = 0.1, pi: float = 0.5, hidden_dim: int | None = None):
        super().__init__()
        if not 0.0 <= pi <= 1.0:
            raise ValueError(f"MMCL pi must be in [0, 1], got {pi}")
        hidden_dim = hidden_dim or dim
        self.visual_to_audio = nn.Sequential(
            nn.Linear(2 * dim, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, dim)
        )
        self.nce = InfoNCE(temperature=tau)
        self.pi = pi

    def fuse(self, f_v: torch.Tensor, f_a: torch.Tensor) -> torch.Tensor:
        """F_va = F_a + V(F_v, F_a)."""
        return f_a + self.visual_to_audio(torch.cat([f_v, f_a], dim=1))

    def forward(
        self,
        f_v: torch.Tensor,
        f_i: torch.Tensor,
        f_a: torch.Tensor,
        valid: torch.Tensor | None = None,
        ignore: torch.Tensor | None = None,
    ) -> dict:
        f_va = self.fuse(f_v, f_a)
        l_v = self.nce(f_v, f_va, valid=valid, ignore=ignore)
        l_i = self.nce(f_i, f_va, valid=valid, ignore=ignore)
        l_vi = self.nce(f_v, f_i, ignore=ignore)  # video and frame pair up even without speech
        return {"loss": self.pi * 0.5 * (l_v + l_i) + (1 - self.pi) * l_vi, "l_v": l_v, "l_i": l_i, "l_vi": l_vi}

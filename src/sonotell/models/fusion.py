"""Fusion of a visual feature (vector or spatial map) with an audio or text vector.

Three ways, as compared by Show from Tell (Fig. 2) and Bonmati et al.:

* ``concat``: pool the visual map, concatenate with the other vector, FC -> ReLU -> FC;
* ``spatial``: project the vector to the visual channels and multiply it element-wise with
  every position of the visual map, then pool over space and FC (Show from Tell, Fig. 2d).
  The per-position dot product is the audio-guided localisation map;
* ``matrix``: the matrix (outer) product fusion of ``sonotell.models.matrix_fusion``.

Example:
    >>> import torch
    >>> fuse = build_fusion("spatial", visual_dim=16, other_dim=8, out_dim=4)
    >>> fuse(torch.rand(2, 16, 5, 5), torch.rand(2, 8)).shape
    torch.Size([2, 4])
    >>> fuse.response_map(torch.rand(2, 16, 5, 5), torch.rand(2, 8)).shape
    torch.Size([2, 5, 5])
"""

from __future__ import annotations

import torch
from torch import nn

from sonotell.errors import ConfigError

FUSIONS = ("concat", "spatial", "matrix")
SMOOTH_MAX = ("max", "lse", "topk", "mean")


def smooth_max(scores: torch.Tensor, kind: str = "lse", r: float = 5.0, k: float = 0.1) -> torch.Tensor:
    """Pool a (..., H, W) score map to (...) so that training signal reaches the best positions.

    * ``lse``: log-sum-exp pooling ``(1/r) log(mean(exp(r s)))`` -- ``r`` -> inf is the max,
      ``r`` -> 0 the mean; unlike the max, every position gets a gradient, the high ones most;
    * ``topk``: mean of the top ``k`` fraction of positions (at least one);
    * ``max`` / ``mean``: the two ends.

    Example:
        >>> s = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
        >>> round(float(smooth_max(s, "topk", k=0.5)), 3), round(float(smooth_max(s, "lse", r=100.0)), 2)
        (2.5, 2.99)
    """
    flat = scores.flatten(-2)
    if kind == "max":
        return flat.amax(dim=-1)
    if kind == "mean":
        return flat.mean(dim=-1)
    if kind == "lse":
        n = flat.shape[-1]
        return (torch.logsumexp(r * flat, dim=-1) - torch.log(torch.tensor(float(n), dtype=flat.dtype))) / r
    if kind == "topk":
        m = max(1, round(k * flat.shape[-1]))
        return flat.topk(m, dim=-1).values.mean(dim=-1)
    raise ConfigError(f"unknown smooth max {kind!r}; known: {', '.join(SMOOTH_MAX)}")


def _pool_map(v: torch.Tensor) -> torch.Tensor:
    return v.mean(dim=(2, 3)) if v.ndim == 4 else v


class ConcatFusion(nn.Module):
    """Concatenate the (pooled) visual vector and the other vector, then FC -> ReLU -> FC."""

    def __init__(self, visual_dim: int, other_dim: int, out_dim: int, hidden_dim: int | None = None):
        super().__init__()
        hidden_dim = hidden_dim or out_dim
        self.mlp = nn.Sequential(
            nn.Linear(visual_dim + other_dim, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim)
        )
        self.out_dim = out_dim

    def forward(self, visual: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([_pool_map(visual), other], dim=1))


class SpatialFusion(nn.Module):
    """Spatial-aware fusion (Show from Tell, Fig. 2d).

    The other vector is mapped to the visual channel count and multiplied with the visual
    feature at every position; FC -> ReLU -> FC is applied at every position (a 1x1
    convolution), and the result is pooled over space -- max by default, so one matching
    region is enough (multiple-instance style). Keeping the FC before the pooling gives every
    position its own fused feature, which is what makes the map usable for localisation.

    Args:
        visual_dim: channels of the visual map.
        other_dim: size of the audio/text vector.
        out_dim: fused feature size.
        pool: ``max`` (default) or ``mean`` over positions.
    """

    def __init__(self, visual_dim: int, other_dim: int, out_dim: int, hidden_dim: int | None = None, pool: str = "max"):
        super().__init__()
        if pool not in ("max", "mean"):
            raise ConfigError(f"spatial fusion pool must be 'max' or 'mean', got {pool!r}")
        hidden_dim = hidden_dim or out_dim
        self.project = nn.Linear(other_dim, visual_dim)
        self.mlp = nn.Sequential(
            nn.Linear(visual_dim, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim)
        )
        self.pool, self.out_dim = pool, out_dim

    def fused_map(self, visual_map: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W): the visual map weighted, channel by channel, by the projected vector."""
        if visual_map.ndim != 4:
            raise ValueError(f"spatial fusion needs a visual feature map (B, C, H, W), got {tuple(visual_map.shape)}")
        return visual_map * self.project(other)[:, :, None, None]

    def position_features(self, visual_map: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        """(B, out_dim, H, W): the fused feature of every position."""
        fused = self.fused_map(visual_map, other).permute(0, 2, 3, 1)
        return self.mlp(fused).permute(0, 3, 1, 2)

    def response_map(
        self, visual_map: torch.Tensor, other: torch.Tensor, head: nn.Linear | None = None
    ) -> torch.Tensor:
        """(B, H, W): how strongly each position answers the vector (the localisation map).

        With ``head`` (a Linear(out_dim, 1) scoring the fused feature, e.g. a correspondence
        classifier) this is the head's score at every position; without, the per-position dot
        product of the visual feature and the projected vector.
        """
        if head is None:
            return self.fused_map(visual_map, other).sum(dim=1)
        return head(self.position_features(visual_map, other).permute(0, 2, 3, 1)).squeeze(-1)

    def forward(self, visual_map: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        feats = self.position_features(visual_map, other)
        return feats.amax(dim=(2, 3)) if self.pool == "max" else feats.mean(dim=(2, 3))


def build_fusion(kind: str, visual_dim: int, other_dim: int, out_dim: int, **kwargs) -> nn.Module:
    """Create a fusion module by name (``concat``, ``spatial`` or ``matrix``)."""
    if kind == "concat":
        return ConcatFusion(visual_dim, other_dim, out_dim, **kwargs)
    if kind == "spatial":
        return SpatialFusion(visual_dim, other_dim, out_dim, **kwargs)
    if kind == "matrix":
        return MatrixFusionAdapter(visual_dim, other_dim, out_dim, **kwargs)
    raise ConfigError(f"unknown fusion {kind!r}; known: {', '.join(FUSIONS)}")


class MatrixFusionAdapter(nn.Module):
    """Bonmati's matrix-product fusion (``sonotell.models.matrix_fusion``) of a vector with a visual map.

    The vector is projected to the visual channels R and taken as a length-1 sequence, so
    each channel's outer product q_r p_r^T is the visual map scaled by q_r; the shared
    convolution + global average pooling of ``MatrixFusion`` then gives the fused feature.
    """

    def __init__(self, visual_dim: int, other_dim: int, out_dim: int, kernel_size: int = 3):
        super().__init__()
        from sonotell.models.matrix_fusion import MatrixFusion

        self.project = nn.Linear(other_dim, visual_dim)
        self.inner = MatrixFusion(visual_dim, out_dim, kernel_size=kernel_size)
        self.out_dim = out_dim

    def forward(self, visual: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        if visual.ndim == 2:
            visual = visual[:, :, None, None]
        return self.inner(self.project(other).unsqueeze(2), visual)

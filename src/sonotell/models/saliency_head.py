"""A saliency prediction head on an encoder's feature map (the papers' gaze-prediction task).

The head reads a (B, C, h, w) feature map (``encoder.feature_map(x)``), applies a small conv
stack and returns one logit per position; a softmax over all positions makes it a
distribution, trained with KL divergence against a ground-truth density (gaze, or here a
blurred organ mask / spoken-term region) and scored with ``sonotell.eval.saliency``.

Example:
    >>> import torch
    >>> head = SaliencyHead(in_channels=32, hidden=16)
    >>> logits = head(torch.rand(2, 32, 7, 7))
    >>> logits.shape, saliency_distribution(logits).sum(dim=(1, 2)).round()
    (torch.Size([2, 7, 7]), tensor([1., 1.]))
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sonotell.models.registry import register_model


class SaliencyHead(nn.Module):
    """3x3 conv -> BN -> ReLU (``depth`` times) -> 1x1 conv to one logit per position.

    Args:
        in_channels: channels of the encoder's feature map.
        hidden: channels of the hidden convolutions.
        depth: number of hidden 3x3 convolutions (0: a linear 1x1 read-out).
    """

    def __init__(self, in_channels: int, hidden: int = 64, depth: int = 1):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for _ in range(depth):
            layers += [nn.Conv2d(c, hidden, 3, padding=1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True)]
            c = hidden
        layers.append(nn.Conv2d(c, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) features -> (B, h, w) logits."""
        if feature_map.ndim != 4:
            raise ValueError(f"saliency head expects a (B, C, h, w) feature map, got {tuple(feature_map.shape)}")
        return self.net(feature_map)[:, 0]


def saliency_distribution(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over all positions of (B, h, w) logits: each map sums to 1."""
    b, h, w = logits.shape
    return logits.reshape(b, -1).softmax(dim=1).reshape(b, h, w)


def saliency_kl_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Mean over the batch of KL(target || softmax(logits)); ``target`` (B, H, W) is resized to the logits.

    The target is area-averaged down to the logit grid and renormalised, so a fine ground
    truth map trains a coarse head without aliasing.
    """
    b, h, w = logits.shape
    if target.shape[-2:] != (h, w):
        target = F.adaptive_avg_pool2d(target[:, None].float(), (h, w))[:, 0]
    q = target.reshape(b, -1).float()
    q = q / q.sum(dim=1, keepdim=True).clamp_min(eps)
    log_p = logits.reshape(b, -1).log_softmax(dim=1)
    return (q * (torch.log(q.clamp_min(eps)) - log_p)).sum(dim=1).mean()


class SaliencyModel(nn.Module):
    """An encoder with a ``feature_map`` method plus a :class:`SaliencyHead`.

    ``forward(x)`` returns (B, h, w) logits; :meth:`predict` the (B, H, W) distribution at the
    input's resolution (bilinear upsampling, renormalised).
    """

    def __init__(self, encoder: nn.Module, in_channels: int, hidden: int = 64, depth: int = 1):
        super().__init__()
        if not hasattr(encoder, "feature_map"):
            raise TypeError(f"{type(encoder).__name__} has no feature_map(x) method: cannot attach a saliency head")
        self.encoder = encoder
        self.head = SaliencyHead(in_channels, hidden, depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder.feature_map(x))

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        dist = saliency_distribution(self(x))
        size = x.shape[-2:]
        up = F.interpolate(dist[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
        return up / up.sum(dim=(1, 2), keepdim=True)


@register_model("saliency_head")
def saliency_head(in_channels: int = 64, hidden: int = 64, depth: int = 1) -> SaliencyHead:
    """Saliency head; configs ``paper`` (two 3x3 layers of 256) and ``small`` (one of 32)."""
    return SaliencyHead(in_channels=in_channels, hidden=hidden, depth=depth)

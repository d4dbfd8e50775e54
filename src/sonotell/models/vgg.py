"""VGG16-style image branch: 13 3×3 convolutions with batch norm and ReLU, max pooling, no FC.

Widths are configurable so the same code builds the paper's VGG16 (64…512) and a narrow
CPU variant. The input channels are frames stacked as channels (the paper: 25 frames).

Example:
    >>> import torch
    >>> net = VGGBranch(in_channels=25, widths=(8, 16, 32, 32, 32))
    >>> net(torch.zeros(2, 25, 64, 64)).shape
    torch.Size([2, 32, 2, 2])
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

VGG16_WIDTHS = (64, 128, 256, 512, 512)
VGG16_CONVS_PER_STAGE = (2, 2, 3, 3, 3)  # 13 convolutions


class VGGBranch(nn.Module):
    """Stages of ``conv-BN-ReLU`` blocks, each stage followed by 2×2 max pooling (first ``n_pools`` stages)."""

    def __init__(
        self,
        in_channels: int = 25,
        widths: Sequence[int] = VGG16_WIDTHS,
        convs_per_stage: Sequence[int] = VGG16_CONVS_PER_STAGE,
        n_pools: int | None = None,
    ):
        super().__init__()
        if len(widths) != len(convs_per_stage):
            raise ValueError(f"widths {list(widths)} and convs_per_stage {list(convs_per_stage)} differ in length")
        n_pools = len(widths) if n_pools is None else n_pools
        layers: list[nn.Module] = []
        c = in_channels
        for stage, (w, n) in enumerate(zip(widths, convs_per_stage)):
            for _ in range(n):
                layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
                c = w
            if stage < n_pools:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.in_channels = in_channels
        self.out_channels = c

    @property
    def last_conv(self) -> nn.Module:
        """The ReLU after the last convolution: the usual Grad-CAM target layer."""
        return [m for m in self.features if isinstance(m, nn.ReLU)][-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

"""Video encoder: an R(2+1)D-18 style network (Tran et al. 2018) for greyscale ultrasound clips.

Every 3D convolution is factorised into a spatial (1 x k x k) and a temporal (k x 1 x 1)
convolution with a ReLU between them; the middle width is chosen so the factorised block
has about as many parameters as the full 3D one (the paper's M_i). The stem downsamples
space only, so short clips (8 frames) keep temporal resolution into the deeper layers.

Example:
    >>> import torch
    >>> net = R2Plus1DEncoder(widths=(8, 16, 32, 64), blocks=(1, 1, 1, 1))
    >>> net(torch.rand(2, 8, 64, 64)).shape
    torch.Size([2, 64])
    >>> net.feature_map(torch.rand(2, 8, 64, 64)).shape
    torch.Size([2, 64, 4, 4])
    >>> R2Plus1DEncoder(widths=(8, 16, 32, 64), blocks=(1, 1, 1, 1), spatial_strides=(2, 2, 1)).feature_map(
    ...     torch.rand(1, 8, 64, 64)
    ... ).shape
    torch.Size([1, 64, 8, 8])
"""

from __future__ import annotations

import torch
from torch import nn

from sonotell.models.registry import register_model


def _mid_channels(c_in: int, c_out: int, k_t: int, k_s: int) -> int:
    # Parameter-matching width from the R(2+1)D paper: t*d^2*N_in*N_out / (d^2*N_in + t*N_out)
    return max(1, (k_t * k_s * k_s * c_in * c_out) // (k_s * k_s * c_in + k_t * c_out))


class Conv2Plus1D(nn.Sequential):
    """Spatial (1,k,k) conv -> BN -> ReLU -> temporal (k,1,1) conv."""

    def __init__(self, c_in: int, c_out: int, stride: tuple[int, int] = (1, 1), k: int = 3):
        s_t, s_s = stride
        mid = _mid_channels(c_in, c_out, k, k)
        super().__init__(
            nn.Conv3d(c_in, mid, (1, k, k), stride=(1, s_s, s_s), padding=(0, k // 2, k // 2), bias=False),
            nn.BatchNorm3d(mid),
            nn.ReLU(inplace=True),
            nn.Conv3d(mid, c_out, (k, 1, 1), stride=(s_t, 1, 1), padding=(k // 2, 0, 0), bias=False),
        )


class BasicBlock2Plus1D(nn.Module):
    """The ResNet basic block with (2+1)D convolutions and a projection shortcut when needed."""

    def __init__(self, c_in: int, c_out: int, stride: tuple[int, int] = (1, 1)):
        super().__init__()
        self.conv1 = nn.Sequential(Conv2Plus1D(c_in, c_out, stride), nn.BatchNorm3d(c_out), nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(Conv2Plus1D(c_out, c_out), nn.BatchNorm3d(c_out))
        self.shortcut: nn.Module = nn.Identity()
        if stride != (1, 1) or c_in != c_out:
            s_t, s_s = stride
            self.shortcut = nn.Sequential(
                nn.Conv3d(c_in, c_out, 1, stride=(s_t, s_s, s_s), bias=False), nn.BatchNorm3d(c_out)
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


class R2Plus1DEncoder(nn.Module):
    """R(2+1)D ResNet for (B, T, H, W) or (B, C, T, H, W) clips.

    Args:
        in_channels: input channels (1 for greyscale ultrasound).
        widths: channels of the four stages (R(2+1)D-18: 64, 128, 256, 512).
        blocks: basic blocks per stage (R(2+1)D-18: 2, 2, 2, 2).
        stem_width: channels after the stem (45 in the paper's stem mid-layer, 64 out).
        temporal_strides: temporal stride of stages 2-4 (the paper halves time in each).
        spatial_strides: spatial stride of stages 2-4 (the paper: 2, 2, 2, i.e. 1/16 of the
            input with the stem); a 1 keeps a finer feature map for localisation at small inputs.
    """

    def __init__(
        self,
        in_channels: int = 1,
        widths: tuple[int, ...] = (64, 128, 256, 512),
        blocks: tuple[int, ...] = (2, 2, 2, 2),
        stem_width: int | None = None,
        temporal_strides: tuple[int, ...] = (2, 2, 2),
        spatial_strides: tuple[int, ...] = (2, 2, 2),
    ):
        super().__init__()
        widths, blocks = tuple(widths), tuple(blocks)
        if (
            len(widths) != len(blocks)
            or len(temporal_strides) != len(widths) - 1
            or len(spatial_strides) != len(widths) - 1
        ):
            raise ValueError(
                "widths, blocks need one entry per stage and temporal_strides, spatial_strides one per stage "
                "after the first"
            )
        stem_width = stem_width or widths[0]
        self.in_channels = in_channels
        # Stem: spatial 7x7 stride 2 then temporal 3, as in torchvision's R2Plus1dStem.
        stem_mid = max(1, _mid_channels(in_channels, stem_width, 3, 7))
        self.stem = nn.Sequential(
            nn.Conv3d(in_channels, stem_mid, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
            nn.BatchNorm3d(stem_mid),
            nn.ReLU(inplace=True),
            nn.Conv3d(stem_mid, stem_width, (3, 1, 1), padding=(1, 0, 0), bias=False),
            nn.BatchNorm3d(stem_width),
            nn.ReLU(inplace=True),
        )
        stages = []
        c_in = stem_width
        for i, (c_out, n) in enumerate(zip(widths, blocks)):
            stride = (1, 1) if i == 0 else (int(temporal_strides[i - 1]), int(spatial_strides[i - 1]))
            layers = [BasicBlock2Plus1D(c_in, c_out, stride)] + [BasicBlock2Plus1D(c_out, c_out) for _ in range(n - 1)]
            stages.append(nn.Sequential(*layers))
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.out_dim = widths[-1]

    def _as_5d(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 4:
            x = x.unsqueeze(1)
        if x.ndim != 5 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"video encoder expects (B, T, H, W) or (B, {self.in_channels}, T, H, W), got {tuple(x.shape)}"
            )
        return x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T', H', W') features before pooling."""
        return self.stages(self.stem(self._as_5d(x)))

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H', W'): features averaged over time, kept spatial for spatial-aware fusion."""
        return self.forward_features(x).mean(dim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C) clip embedding (global average pool)."""
        return self.forward_features(x).mean(dim=(2, 3, 4))


@register_model("video_r2plus1d")
def video_r2plus1d(**kwargs) -> R2Plus1DEncoder:
    """R(2+1)D-18 style video encoder; configs ``paper`` (R(2+1)D-18) and ``small`` (CPU)."""
    return R2Plus1DEncoder(**kwargs)

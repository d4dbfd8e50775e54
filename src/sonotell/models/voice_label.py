"""VoiceLabelNet (Bonmati et al. 2021): a voice branch and an image branch joined by a matrix product.

``mode`` selects the paper's variants: ``image_voice`` (the full model), ``image`` and
``voice`` (ablations that skip the product and keep the rest). Pretrained branches are
loaded from any local checkpoint, frozen, and joined by a trainable 1×1 convolution.
Reduced input (3 of the 25 frames) is ``in_frames=3``; the data side picks the frames.

Example:
    >>> import torch
    >>> from sonotell.models import create_model
    >>> net = create_model("voice_label", "small", num_classes=3)
    >>> net(torch.rand(2, 25, 64, 64), torch.rand(2, 1024, 66)).shape
    torch.Size([2, 3])
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from sonotell.errors import InputError
from sonotell.files import atomic_path
from sonotell.models.matrix_fusion import MatrixFusion
from sonotell.models.registry import register_model
from sonotell.models.vgg import VGG16_CONVS_PER_STAGE, VGG16_WIDTHS, VGGBranch
from sonotell.models.voice_cnn import VoiceCNN
from sonotell.safeload import load_weights_only, plain

log = logging.getLogger(__name__)

MODES = ("image_voice", "image", "voice")
_BRANCH_KINDS = {"voice_cnn": VoiceCNN, "vgg": VGGBranch}


class VoiceLabelNet(nn.Module):
    def __init__(
        self,
        num_classes: int = 5,
        mode: str = "image_voice",
        in_frames: int = 25,
        image_widths: Sequence[int] = VGG16_WIDTHS,
        image_convs_per_stage: Sequence[int] = VGG16_CONVS_PER_STAGE,
        image_pools: int | None = None,
        spec_bins: int = 1024,
        voice_widths: Sequence[int] = (128, 128, 256, 256, 512, 1024),
        voice_pool_every: int = 2,
        channels: int = 1024,
        head_kernel: int = 3,
        pretrained_voice: str | None = None,
        pretrained_image: str | None = None,
        freeze_pretrained: bool = True,
        image_encoder: dict | None = None,
    ):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode, self.in_frames, self.spec_bins, self.num_classes = mode, in_frames, spec_bins, num_classes
        self.image_branch = self.voice_branch = None
        self.image_join = self.voice_join = None
        if mode in ("image_voice", "image"):
            if image_encoder and not pretrained_image:
                # a registered encoder (e.g. ImageNet EfficientNet-Lite0) applied to every frame, maps averaged
                self.image_branch = FrameStackBranch(image_encoder, in_frames)
                self.image_join = nn.Conv2d(self.image_branch.out_channels, channels, 1)
            elif pretrained_image:
                self.image_branch = load_branch(
                    pretrained_image,
                    "vgg",
                    dict(
                        in_channels=in_frames,
                        widths=list(image_widths),
                        convs_per_stage=list(image_convs_per_stage),
                        n_pools=image_pools,
                    ),
                )
                _freeze(self.image_branch, freeze_pretrained)
                self.image_join = nn.Conv2d(self.image_branch.out_channels, channels, 1)
            else:
                self.image_branch = VGGBranch(in_frames, image_widths, image_convs_per_stage, image_pools)
                if self.image_branch.out_channels != channels:
                    self.image_join = nn.Conv2d(self.image_branch.out_channels, channels, 1)
            if self.image_branch.in_channels != in_frames:
                raise InputError(
                    pretrained_image,
                    f"image branch takes {self.image_branch.in_channels} frames, the model {in_frames}",
                )
        if mode in ("image_voice", "voice"):
            if pretrained_voice:
                self.voice_branch = load_branch(
                    pretrained_voice,
                    "voice_cnn",
                    dict(in_channels=spec_bins, widths=list(voice_widths), pool_every=voice_pool_every),
                )
                _freeze(self.voice_branch, freeze_pretrained)
                self.voice_join = nn.Conv1d(self.voice_branch.out_channels, channels, 1)
            else:
                self.voice_branch = VoiceCNN(spec_bins, voice_widths, 3, voice_pool_every)
                if self.voice_branch.out_channels != channels:
                    self.voice_join = nn.Conv1d(self.voice_branch.out_channels, channels, 1)
            if self.voice_branch.in_channels != spec_bins:
                raise InputError(
                    pretrained_voice,
                    f"voice branch takes {self.voice_branch.in_channels} frequency bins, the model {spec_bins}",
                )
        self.fusion = MatrixFusion(channels, num_classes, head_kernel)

    @property
    def uses_image(self) -> bool:
        return self.image_branch is not None

    @property
    def uses_voice(self) -> bool:
        return self.voice_branch is not None

    def image_features(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.dim() != 4 or frames.shape[1] != self.in_frames:
            raise InputError(
                None, f"image input must be (batch, {self.in_frames} frames, H, W); got {tuple(frames.shape)}"
            )
        p = self.image_branch(frames)
        return self.image_join(p) if self.image_join is not None else p

    def voice_features(self, spec: torch.Tensor) -> torch.Tensor:
        if spec.dim() != 3 or spec.shape[1] != self.spec_bins:
            raise InputError(
                None, f"voice input must be a (batch, {self.spec_bins} bins, time) spectrogram; got {tuple(spec.shape)}"
            )
        q = self.voice_branch(spec)
        return self.voice_join(q) if self.voice_join is not None else q

    def forward(self, frames: torch.Tensor | None = None, spec: torch.Tensor | None = None) -> torch.Tensor:
        p = self.image_features(frames) if self.uses_image else None
        q = self.voice_features(spec) if self.uses_voice else None
        return self.fusion(q, p)


class FrameStackBranch(nn.Module):
    """Image branch from a registered image encoder: each of the ``in_frames`` frames encoded, maps averaged.

    ``image_encoder`` is a config section ``{name, config, **overrides}`` (``sonotell.models.encoders``);
    the encoder's ``feature_map`` gives (B, C, H', W') per frame.
    """

    def __init__(self, image_encoder: dict, in_frames: int):
        super().__init__()
        from sonotell.models.encoders import build_encoder

        self.encoder = build_encoder(image_encoder)
        self.in_channels, self.out_channels = int(in_frames), int(self.encoder.out_dim)
        self.last_conv = nn.Identity()  # Grad-CAM hooks the averaged map here

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        b, t = frames.shape[:2]
        fm = self.encoder.feature_map(frames.reshape(b * t, *frames.shape[2:]))
        return self.last_conv(fm.reshape(b, t, *fm.shape[1:]).mean(dim=1))


def _freeze(module: nn.Module, freeze: bool) -> None:
    if freeze:
        module.requires_grad_(False)
        module.eval()  # frozen BN statistics; train() below keeps it so
        module.train = lambda mode=True: module  # type: ignore[method-assign]


def save_branch(branch: nn.Module, path: str | Path, **extra) -> Path:
    """Save a branch with its constructor arguments, so any recipe can load it as a pretrained branch."""
    kind = {VoiceCNN: "voice_cnn", VGGBranch: "vgg"}[type(branch)]
    config = _branch_config(branch)
    with atomic_path(path) as tmp:
        torch.save({"kind": kind, "config": plain(config), "state_dict": branch.state_dict(), **plain(extra)}, tmp)
    return Path(path)


def _branch_config(branch: nn.Module) -> dict:
    convs = [m for m in branch.features if isinstance(m, (nn.Conv1d, nn.Conv2d))]
    if isinstance(branch, VoiceCNN):
        pools = [i for i, m in enumerate(branch.features) if isinstance(m, nn.MaxPool1d)]
        pool_every = (sum(1 for m in list(branch.features)[: pools[0]] if isinstance(m, nn.Conv1d))) if pools else 0
        return {
            "in_channels": branch.in_channels,
            "widths": [c.out_channels for c in convs],
            "kernel_size": convs[0].kernel_size[0],
            "pool_every": pool_every,
        }
    widths, per_stage, n_pools, count = [], [], 0, 0
    for m in branch.features:
        if isinstance(m, nn.Conv2d):
            count += 1
            last = m.out_channels
        elif isinstance(m, nn.MaxPool2d):
            widths.append(last), per_stage.append(count)
            n_pools, count = n_pools + 1, 0
    if count:
        widths.append(last), per_stage.append(count)
    return {"in_channels": branch.in_channels, "widths": widths, "convs_per_stage": per_stage, "n_pools": n_pools}


def load_branch(path: str | Path, kind: str, default_config: dict) -> nn.Module:
    """A branch from a local checkpoint: one written by ``save_branch``, a plain state dict, or a
    Lightning checkpoint (the branch's keys are found by their ``features.`` suffix).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "pretrained checkpoint not found")
    ckpt = load_weights_only(path)  # never unpickles code
    if isinstance(ckpt, dict) and "kind" in ckpt:
        if ckpt["kind"] != kind:
            raise InputError(path, f"checkpoint holds a {ckpt['kind']} branch, expected {kind}")
        config, state = ckpt["config"], ckpt["state_dict"]
    else:
        config = {k: v for k, v in default_config.items() if v is not None}
        state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
        if not isinstance(state, dict):
            raise InputError(path, "checkpoint is not a state dict")
        state = _strip_to_features(state, 3 if kind == "voice_cnn" else 4)
        if not state:
            raise InputError(path, f"no {kind} branch weights (keys ending in features.N.weight) in the checkpoint")
    branch = _BRANCH_KINDS[kind](**config)
    try:
        branch.load_state_dict(state)
    except RuntimeError as e:
        raise InputError(
            path, f"checkpoint does not fit the {kind} branch {config}: {str(e).splitlines()[0]}"
        ) from None
    log.info("loaded pretrained %s branch from %s", kind, path)
    return branch


def _strip_to_features(state: dict, weight_dim: int) -> dict:
    """Keep the keys of the first module prefix whose first conv weight has ``weight_dim`` dims."""
    for key, value in state.items():
        if key.endswith("features.0.weight") and getattr(value, "dim", lambda: 0)() == weight_dim:
            prefix = key[: -len("features.0.weight")]
            return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix + "features.")}
    return {}


@register_model("voice_label")
def build_voice_label(**kwargs) -> VoiceLabelNet:
    return VoiceLabelNet(**kwargs)

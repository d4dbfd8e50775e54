"""Ultrasound-appropriate augmentations in torch, deterministic given a ``torch.Generator``.

No colour jitter or flips: a B-mode frame is greyscale and its left/right and up/down
(depth) have meaning. Instead the physics of the scanner varies:

* **speckle**: multiplicative log-normal noise (coherent interference pattern changes);
* **gain**: overall gain and a linear time-gain-compensation ramp along depth;
* **depth crop**: a shallower imaging depth (bottom rows cut, resized back);
* **blur**: Gaussian blur (focus / lateral resolution);
* **sector masking**: a wedge from the probe (top centre) zeroed, like a rib's acoustic shadow.

Images are float tensors (B, 1, H, W) in [0, 1]. ``standardise_image`` turns frames of any
size / channel count / bit depth into that form, with clear errors and warnings.

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.rand(2, 1, 32, 32, generator=g)
    >>> strong_augment(x, generator=g).shape
    torch.Size([2, 1, 32, 32])
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from sonotell.errors import InputError

log = logging.getLogger(__name__)


def standardise_image(image: np.ndarray, size: tuple[int, int], path: str | None = None) -> np.ndarray:
    """Any 2-D/3-D frame (grey, RGB, RGBA; bool, uint8, uint16, float) -> float32 (H, W) in [0, 1].

    Raises ``InputError`` for shapes or dtypes that are not an image; warns for an all-black frame
    (it carries no anatomy and only adds an easy cluster).
    """
    where = path or "<image>"
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] in (1, 3, 4):
        pass
    elif arr.ndim != 2:
        raise InputError(where, f"expected a 2-D greyscale or (H, W, 1/3/4) image, got shape {arr.shape}")
    if arr.shape[0] < 2 or arr.shape[1] < 2:
        raise InputError(where, f"image too small: {arr.shape}")
    if arr.dtype == bool:
        arr = arr.astype(np.float32)
    elif np.issubdtype(arr.dtype, np.integer):
        arr = arr.astype(np.float32) / float(np.iinfo(arr.dtype).max)
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise InputError(where, "image contains NaN or inf")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < 0 or hi > 1:
            log.warning("%s: float image outside [0, 1] (%.3g..%.3g); rescaling by its range", where, lo, hi)
            arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
        arr = arr.astype(np.float32)
    else:
        raise InputError(where, f"unsupported pixel type {arr.dtype}")
    if arr.ndim == 3:  # alpha carries no echo: grey = mean of the colour channels
        arr = arr[:, :, :3].mean(axis=2)
    if float(arr.max()) == 0.0:
        log.warning("%s: all-black frame", where)
    t = torch.from_numpy(np.ascontiguousarray(arr))[None, None]
    if tuple(t.shape[-2:]) != tuple(size):
        t = F.interpolate(t, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    return t[0, 0].clamp(0, 1).numpy()


def _uniform(n: int, low: float, high: float, g: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=g)


def speckle(x: torch.Tensor, sigma: float, g: torch.Generator) -> torch.Tensor:
    """Multiplicative log-normal speckle with unit mean and per-image strength in [0, sigma]."""
    s = _uniform(x.shape[0], 0.0, sigma, g).view(-1, 1, 1, 1)
    noise = torch.randn(x.shape, generator=g)
    return x * torch.exp(s * noise - 0.5 * s**2)


def gain(x: torch.Tensor, gain_range: tuple[float, float], tgc: float, g: torch.Generator) -> torch.Tensor:
    """Overall gain factor in ``gain_range`` times a depth ramp from ``1 - a`` to ``1 + a``, |a| <= tgc."""
    n, _, h, _ = x.shape
    factor = _uniform(n, *gain_range, g).view(-1, 1, 1, 1)
    slope = _uniform(n, -tgc, tgc, g).view(-1, 1, 1, 1)
    depth = torch.linspace(-1.0, 1.0, h).view(1, 1, h, 1)
    return x * factor * (1.0 + slope * depth)


def depth_crop(x: torch.Tensor, max_fraction: float, g: torch.Generator) -> torch.Tensor:
    """Cut up to ``max_fraction`` of the rows at the bottom (less depth), resize back."""
    n, _, h, w = x.shape
    fractions = _uniform(n, 0.0, max_fraction, g)
    out = torch.empty_like(x)
    for i in range(n):
        keep = max(2, int(round(h * (1.0 - float(fractions[i])))))
        out[i] = F.interpolate(x[i : i + 1, :, :keep], size=(h, w), mode="bilinear", align_corners=False)[0]
    return out


def blur(x: torch.Tensor, max_sigma: float, g: torch.Generator) -> torch.Tensor:
    """Separable Gaussian blur, per-image sigma in [0.1, max_sigma] pixels."""
    sigmas = _uniform(x.shape[0], 0.1, max_sigma, g)
    radius = max(1, int(math.ceil(2 * max_sigma)))
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype)
    out = torch.empty_like(x)
    for i in range(x.shape[0]):
        k = torch.exp(-0.5 * (offsets / sigmas[i]) ** 2)
        k = k / k.sum()
        xi = F.pad(x[i : i + 1], (radius, radius, radius, radius), mode="replicate")
        xi = F.conv2d(xi, k.view(1, 1, 1, -1))
        out[i] = F.conv2d(xi, k.view(1, 1, -1, 1))[0]
    return out


def sector_mask(x: torch.Tensor, max_angle_deg: float, g: torch.Generator) -> torch.Tensor:
    """Zero a wedge of width up to ``max_angle_deg`` seen from the probe at the top centre."""
    n, _, h, w = x.shape
    yy, xx = torch.meshgrid(
        torch.arange(h, dtype=torch.float32) + 0.5, torch.arange(w, dtype=torch.float32) - w / 2 + 0.5, indexing="ij"
    )
    angle = torch.rad2deg(torch.atan2(xx, yy))  # 0 straight down, +-90 along the probe face
    widths = _uniform(n, 0.0, max_angle_deg, g)
    centres = _uniform(n, -45.0, 45.0, g)
    keep = (angle[None] - centres.view(-1, 1, 1)).abs() > widths.view(-1, 1, 1) / 2
    return x * keep[:, None].to(x.dtype)


@dataclass(frozen=True)
class UltrasoundAugment:
    """A chain of the augmentations above, each applied per image with probability ``p``.

    Example:
        >>> aug = UltrasoundAugment(speckle_sigma=0.3, p=1.0)
        >>> aug(torch.ones(1, 1, 8, 8), torch.Generator().manual_seed(0)).shape
        torch.Size([1, 1, 8, 8])
    """

    speckle_sigma: float = 0.0
    gain_range: tuple[float, float] = (1.0, 1.0)
    tgc: float = 0.0
    depth_crop: float = 0.0
    blur_sigma: float = 0.0
    sector_angle_deg: float = 0.0
    p: float = 0.5

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if x.ndim == 3:
            return self(x[:, None], generator)[:, 0]
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"augment: expected (B, 1, H, W) images, got {tuple(x.shape)}")
        x = x.float()
        steps = []
        if self.gain_range != (1.0, 1.0) or self.tgc > 0:
            steps.append(lambda t: gain(t, tuple(self.gain_range), self.tgc, generator))
        if self.depth_crop > 0:
            steps.append(lambda t: depth_crop(t, self.depth_crop, generator))
        if self.speckle_sigma > 0:
            steps.append(lambda t: speckle(t, self.speckle_sigma, generator))
        if self.blur_sigma > 0:
            steps.append(lambda t: blur(t, self.blur_sigma, generator))
        if self.sector_angle_deg > 0:
            steps.append(lambda t: sector_mask(t, self.sector_angle_deg, generator))
        for step in steps:
            apply = (torch.rand(x.shape[0], generator=generator) < self.p).view(-1, 1, 1, 1)
            x = torch.where(apply, step(x), x)
        return x.clamp(0.0, 1.0)


WEAK = UltrasoundAugment(gain_range=(0.9, 1.1), tgc=0.1, depth_crop=0.1, p=0.5)
STRONG = UltrasoundAugment(
    speckle_sigma=0.5, gain_range=(0.6, 1.4), tgc=0.4, depth_crop=0.25, blur_sigma=1.5, sector_angle_deg=25.0, p=0.8
)


def weak_augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """FixMatch's weak view: mild gain / TGC and depth crop."""
    return WEAK(x, generator)


def strong_augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """FixMatch's strong view (and PICA's second view): every ultrasound augmentation, stronger."""
    return STRONG(x, generator)


def build_augment(spec: dict | None, default: UltrasoundAugment) -> UltrasoundAugment:
    """An ``UltrasoundAugment`` from a config mapping (keys = its fields); ``None`` -> ``default``."""
    if not spec:
        return default
    spec = dict(spec)
    if "gain_range" in spec:
        spec["gain_range"] = tuple(spec["gain_range"])
    return UltrasoundAugment(**spec)

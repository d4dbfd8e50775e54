"""Ultrasound sector cropping: find the moving image region and drop the static overlay.

Scanner screens carry text, rulers, logos and a black background that never change, while
the ultrasound image itself changes every frame (speckle, probe motion). So the per-pixel
temporal standard deviation over a sample of frames separates the two: threshold it,
clean the mask with morphology, keep the largest connected moving region and take its
bounding box as the region of interest (ROI) ``(x0, y0, x1, y1)``, x1/y1 exclusive.

Example:
    >>> roi = detect_roi(frames)             # frames: (T, H, W) uint8  # doctest: +SKIP
    >>> cropped = crop(frames, roi)          # (T, y1 - y0, x1 - x0)     # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from sonotell.errors import InputError

log = logging.getLogger(__name__)

Roi = tuple[int, int, int, int]


@dataclass(frozen=True)
class CropParams:
    """Thresholds of the detector, in grey levels of temporal std (8-bit video).

    Two thresholds (hysteresis): a pixel is surely moving above
    ``max(min_std, relative_std * p95)`` — the relative part adapts to the clip's own motion —
    and the image region grows from those pixels through every pixel above ``weak_std`` whose
    std is also at least ``weak_relative`` of its mean brightness. The deep, dim part of a
    sector often flickers by only 1-3 grey levels (a weak echo: std/mean ~0.15), while a
    static overlay does not change or, next to moving content, picks up codec flicker of the
    same 1-3 levels on a bright mean (std/mean ~0.01) — the ratio tells the two apart.
    """

    min_std: float = 2.0
    relative_std: float = 0.15
    weak_std: float = 0.75
    weak_relative: float = 0.05
    min_area_fraction: float = 0.05
    margin_px: int = 0
    n_samples: int = 48


def detect_roi(frames: np.ndarray, params: CropParams = CropParams()) -> Roi | None:
    """Bounding box of the largest moving region of ``frames`` (T, H, W); None if nothing moves.

    Example:
        >>> f = np.zeros((4, 10, 10), np.uint8); f[:, 3:7, 2:9] = np.arange(4)[:, None, None] * 40
        >>> detect_roi(f)
        (2, 3, 9, 7)
    """
    if frames.ndim != 3:
        raise ValueError(f"frames must be (T, H, W), got shape {frames.shape}")
    t, h, w = frames.shape
    if t < 2:
        return None
    pixels = frames.astype(np.float32)
    std, mean = pixels.std(axis=0), pixels.mean(axis=0)
    high = max(params.min_std, params.relative_std * float(np.percentile(std, 95)))
    strong = std > high
    weak = (std > min(high, params.weak_std)) & (std >= params.weak_relative * (mean + 1.0))
    # Opening removes isolated flicker (a blinking cursor, a frame counter's digits);
    # closing then fills the dark, low-variance holes inside the sector (fluid, shadows).
    radius = max(1, min(h, w) // 100)
    structure = ndimage.generate_binary_structure(2, 1)
    # Edge padding keeps a region that touches the frame border from being eroded there.
    pad = 2 * radius
    moving = np.pad(weak, pad, mode="edge")
    moving = ndimage.binary_opening(moving, structure, iterations=radius)
    moving = ndimage.binary_closing(moving, structure, iterations=2 * radius)
    moving = ndimage.binary_fill_holes(moving[pad:-pad, pad:-pad])
    labels, n = ndimage.label(moving)
    if n == 0:
        return None
    # The image is the weakly moving region that holds the most surely moving pixels.
    best = int(np.argmax(np.bincount(labels[strong], minlength=n + 1)[1:])) + 1
    region = labels == best
    if not (region & strong).any() or region.sum() < params.min_area_fraction * h * w:
        log.info("largest moving region covers %.1f%% of the frame; not cropping", 100 * region.sum() / (h * w))
        return None
    # Opening shaves the sector's sharp corners; take them back from the raw motion mask.
    region |= weak & ndimage.binary_dilation(region, structure, iterations=radius + 1)
    ys, xs = np.nonzero(region)
    m = params.margin_px
    return (
        max(0, int(xs.min()) - m),
        max(0, int(ys.min()) - m),
        min(w, int(xs.max()) + 1 + m),
        min(h, int(ys.max()) + 1 + m),
    )


def crop(frames: np.ndarray, roi: Roi | None) -> np.ndarray:
    """Crop a frame (H, W) or frames (T, H, W) to ``roi``; None returns the input unchanged."""
    if roi is None:
        return frames
    x0, y0, x1, y1 = roi
    return frames[..., y0:y1, x0:x1]


def check_roi(roi: Roi, width: int, height: int, where: str | Path | None = None) -> Roi:
    """Clip a (manual) ROI to the frame; raise ``InputError`` when it lies outside it."""
    x0, y0, x1, y1 = roi
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise InputError(where, f"roi {roi} lies outside the {width}x{height} frame")
    return (x0, y0, x1, y1)


def sample_frames(path: str | Path, n_samples: int) -> tuple[np.ndarray, int]:
    """About ``n_samples`` frames spread evenly over the whole video, in one decoding pass.

    Returns the frames (full resolution, greyscale) and the video's frame count. The stride
    doubles whenever twice ``n_samples`` frames are held, so memory stays bounded without
    knowing the length in advance (container frame counts are unreliable).
    """
    from sonotell.io.video import iter_frames

    stride, kept, n = 1, [], 0
    for i, frame in enumerate(iter_frames(path)):
        n = i + 1
        if i % stride == 0:
            kept.append((i, frame))
            if len(kept) >= 2 * n_samples:
                stride *= 2
                kept = [(j, f) for j, f in kept if j % stride == 0]
    if not kept:
        raise InputError(path, "video has no frames")
    return np.stack([f for _, f in kept]), n


def detect_video_roi(path: str | Path, params: CropParams = CropParams()) -> Roi | None:
    """Detect the ROI of a video file from about ``params.n_samples`` frames spread over it."""
    frames, _ = sample_frames(path, params.n_samples)
    return detect_roi(frames, params)

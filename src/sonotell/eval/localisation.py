"""Scoring and showing localisation maps: pointing game, IoU, upsampling, overlays.

A localisation map is a small (h, w) float array (the response of fused audio-visual
features); it is upsampled to the frame before it is scored against a (H, W) organ mask or
drawn over the frame.

Example:
    >>> import numpy as np
    >>> heat = np.zeros((4, 4)); heat[0, 3] = 1.0
    >>> mask = np.zeros((64, 64), bool); mask[:16, 48:] = True
    >>> pointing_game(heat, mask)
    True
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from sonotell.errors import InputError


def upsample_map(heat, size: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of a (h, w) map to ``size`` = (H, W), as float32.

    Uses half-pixel centres (``align_corners=False``), so a map cell covers the same image
    region a CNN's feature cell does.
    """
    import torch
    import torch.nn.functional as F

    arr = heat.detach().cpu().float() if hasattr(heat, "detach") else torch.as_tensor(np.asarray(heat, np.float32))
    if arr.ndim != 2:
        raise ValueError(f"a localisation map must be 2-D (h, w), got shape {tuple(arr.shape)}")
    if tuple(arr.shape) == tuple(size):
        return arr.numpy().astype(np.float32)
    out = F.interpolate(arr[None, None], size=tuple(int(s) for s in size), mode="bilinear", align_corners=False)
    return out[0, 0].numpy()


def pointing_game(heat, mask, tolerance_px: float = 15.0) -> bool | None:
    """A hit when the map's maximum (after upsampling to the mask) lies within ``tolerance_px``
    of the target mask (Zhang et al. 2016, "Top-down neural attention by excitation backprop").

    Returns None when the mask is empty (nothing to point at: the frame is not scored).
    Ties for the maximum take the first in raster order.
    """
    mask = np.asarray(mask).astype(bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    if not mask.any():
        return None
    up = upsample_map(heat, mask.shape)
    y, x = np.unravel_index(int(np.argmax(up)), up.shape)
    if mask[y, x]:
        return True
    if tolerance_px <= 0:
        return False
    yy, xx = np.nonzero(mask)
    return bool(np.min((yy - y) ** 2 + (xx - x) ** 2) <= tolerance_px**2)


def pointing_game_accuracy(heats: Iterable, masks: Iterable, tolerance_px: float = 15.0) -> tuple[float, int]:
    """Fraction of hits over the scored frames, and how many frames were scored."""
    hits = [pointing_game(h, m, tolerance_px) for h, m in zip(heats, masks)]
    scored = [h for h in hits if h is not None]
    return (float(np.mean(scored)) if scored else float("nan")), len(scored)


def normalise_map(heat) -> np.ndarray:
    """Min-max scale to [0, 1] (a flat map becomes all zeros)."""
    arr = np.asarray(heat.detach().cpu().numpy() if hasattr(heat, "detach") else heat, np.float32)
    lo, hi = float(arr.min()), float(arr.max())
    return (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)


def threshold_iou(heat, mask, threshold: float = 0.5) -> float | None:
    """IoU between the target mask and the map thresholded at ``threshold`` of its range.

    The map is upsampled to the mask, min-max normalised, and pixels ``>= threshold`` form
    the predicted region. None when the mask is empty.
    """
    mask = np.asarray(mask).astype(bool)
    if not mask.any():
        return None
    pred = normalise_map(upsample_map(heat, mask.shape)) >= threshold
    union = np.logical_or(pred, mask).sum()
    return float(np.logical_and(pred, mask).sum() / union)


def overlay(frame: np.ndarray, heat, alpha: float = 0.45, colormap: str = "jet") -> np.ndarray:
    """Blend a heat map (upsampled, min-max normalised, coloured) over a greyscale frame.

    Returns (H, W, 3) uint8 RGB.
    """
    from matplotlib import colormaps

    frame = np.asarray(frame)
    if frame.ndim == 3:
        frame = frame.mean(axis=2)
    if frame.dtype != np.uint8:
        frame = np.clip(frame * (255.0 if frame.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    colour = colormaps[colormap](normalise_map(upsample_map(heat, frame.shape)))[..., :3]
    grey = np.repeat(frame[..., None].astype(np.float32) / 255.0, 3, axis=2)
    rgb = (1.0 - alpha) * grey + alpha * colour
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def write_video(path: str | Path, frames_rgb: Iterable[np.ndarray], fps: float, codec: str = "libx264") -> Path:
    """Encode (H, W, 3) uint8 frames to a video with PyAV, atomically.

    Odd sizes are padded by one pixel (yuv420p needs even dimensions).
    """
    import av

    from sonotell.files import atomic_path

    path = Path(path)
    if path.suffix.lower() not in (".mp4", ".mov", ".mkv", ".avi"):
        raise InputError(path, "overlay video must end in .mp4, .mov, .mkv or .avi")
    n = 0
    with atomic_path(path) as tmp:
        fmt = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi"}[path.suffix.lower()]
        with av.open(str(tmp), "w", format=fmt) as c:
            stream = None
            for rgb in frames_rgb:
                rgb = np.ascontiguousarray(rgb)
                h, w = rgb.shape[:2]
                if stream is None:
                    stream = c.add_stream(codec, rate=max(1, int(round(fps))))
                    stream.width, stream.height, stream.pix_fmt = w + w % 2, h + h % 2, "yuv420p"
                if h % 2 or w % 2:
                    rgb = np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
                for pkt in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                    c.mux(pkt)
                n += 1
            if stream is None:
                raise InputError(path, "no frames to write")
            for pkt in stream.encode():
                c.mux(pkt)
    return path

"""Where the view changes in a scan: a cut, or a frame very unlike the one before it.

The difference of two consecutive frames is the mean absolute difference of their greyscale pixels,
scaled to [0, 1], on frames shrunk to ``size`` x ``size`` (probe motion and speckle average out). A
frame starts a new view when its difference exceeds ``threshold`` and ``ratio`` times the scan's median
difference (a scan that moves a lot everywhere needs a larger jump). Speech labels of ``view`` scope
hold until the view changes (``sonotell.speech.align``).

Example:
    >>> import numpy as np
    >>> frames = np.zeros((6, 4, 4), np.uint8); frames[3:] = 200
    >>> view_starts(frames, threshold=0.1, ratio=4.0)
    [0, 3]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def frame_differences(frames: np.ndarray) -> np.ndarray:
    """(T,) mean absolute difference of each frame to the one before, in [0, 1] (0 for the first frame)."""
    x = np.asarray(frames, np.float32)
    if x.ndim != 3:
        raise ValueError(f"frames must be (T, H, W), got shape {x.shape}")
    scale = 255.0 if np.asarray(frames).dtype == np.uint8 or x.max(initial=0) > 1.0 else 1.0
    out = np.zeros(len(x), np.float64)
    if len(x) > 1:
        out[1:] = np.abs(np.diff(x, axis=0)).mean(axis=(1, 2)) / scale
    return out


def view_starts(frames: np.ndarray, *, threshold: float, ratio: float, persist: int = 5) -> list[int]:
    """First frame of every view: 0, then each frame that starts a new picture.

    A candidate is a frame whose difference exceeds ``threshold`` and ``ratio`` x the median. It starts
    a view only when the new picture persists (``persist`` frames later it still differs from the frame
    before the candidate by more than ``threshold``: a single odd frame is no view) and is new (it differs
    by more than ``threshold`` from every frame of the current view: a cine loop that starts again, or a
    probe that returns, stays in its view).
    """
    x = np.asarray(frames, np.float32)
    d = frame_differences(frames)
    if len(d) < 2:
        return [0]
    scale = 255.0 if np.asarray(frames).dtype == np.uint8 or x.max(initial=0) > 1.0 else 1.0
    typical = float(np.median(d[1:]))
    starts = [0]
    for i in np.flatnonzero((d > threshold) & (d > ratio * typical)):
        later = x[min(int(i) + persist, len(x) - 1)]
        if np.abs(later - x[i - 1]).mean() / scale <= threshold:
            continue
        if (np.abs(x[starts[-1] : i] - x[i][None]).mean(axis=(1, 2)) / scale).min() <= threshold:
            continue
        starts.append(int(i))
    return starts


def video_view_starts(path: str | Path, *, size: int, threshold: float, ratio: float, persist: int) -> list[int]:
    """``view_starts`` of a video file (or DICOM cine), decoded at ``size`` x ``size`` greyscale."""
    from sonotell.io.video import iter_frames

    frames = np.stack(list(iter_frames(path, (size, size))))
    return view_starts(frames, threshold=threshold, ratio=ratio, persist=persist)

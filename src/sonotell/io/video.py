"""Video decoding: mp4/avi/mov/mpeg/gif through PyAV, DICOM multi-frame cine through pydicom.

Frames come out as greyscale uint8 (H, W) arrays: ultrasound is greyscale, colour overlays
(Doppler boxes, text) are handled by sector cropping, not by keeping three channels.

Example:
    >>> info = probe_video("scan.mp4")  # doctest: +SKIP
    >>> frames = read_frames("scan.mp4", size=(112, 112))  # (T, 112, 112) uint8  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from sonotell.errors import InputError

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mpeg", ".mpg", ".gif", ".mkv", ".webm"}
DICOM_SUFFIXES = {".dcm", ".dicom"}


@dataclass(frozen=True)
class VideoInfo:
    fps: float
    n_frames: int
    width: int
    height: int
    has_audio: bool


def is_dicom(path: Path) -> bool:
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def probe_video(path: str | Path) -> VideoInfo:
    """Frame rate, frame count, size and audio presence; decodes frames only when the container lacks a count."""
    path = _existing(path)
    if is_dicom(path):
        frames, fps = _read_dicom(path)
        return VideoInfo(fps, len(frames), frames.shape[2], frames.shape[1], False)
    import av

    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise InputError(path, "no video stream")
            vs = c.streams.video[0]
            fps = float(vs.average_rate or vs.guessed_rate or 0) or 0.0
            has_audio = bool(c.streams.audio)
            n = 0
            for frame in c.decode(vs):  # containers' frame counts are unreliable (gif, avi): count
                if n == 0:
                    width, height = frame.width, frame.height
                n += 1
    except InputError:
        raise
    except Exception as e:
        raise InputError(path, f"corrupt or unreadable video ({e.__class__.__name__}: {e})") from None
    if n == 0:
        raise InputError(path, "video has no frames")
    if fps <= 0:
        raise InputError(path, "video has no frame rate")
    return VideoInfo(fps, n, width, height, has_audio)


def frame_times(path: str | Path) -> np.ndarray:
    """Presentation time of every frame in seconds, the first frame at 0, from the container's timestamps.

    Reads packet timestamps only (no decoding). DICOM cine and containers without timestamps
    give ``index / fps``.

    Example:
        >>> frame_times("scan.mp4")[:3]  # doctest: +SKIP
        array([0.  , 0.04, 0.08])
    """
    path = _existing(path)
    if not is_dicom(path):
        import av

        try:
            with av.open(str(path)) as c:
                if not c.streams.video:
                    raise InputError(path, "no video stream")
                vs = c.streams.video[0]
                tb = float(vs.time_base) if vs.time_base else 0.0
                pts = [p.pts for p in c.demux(vs) if p.pts is not None and p.size > 0]
        except InputError:
            raise
        except Exception as e:
            raise InputError(path, f"corrupt or unreadable video ({e.__class__.__name__}: {e})") from None
        if pts and tb > 0 and len(set(pts)) == len(pts):
            t = np.sort(np.asarray(pts, np.float64)) * tb  # decode order -> presentation order
            return t - t[0]
    info = probe_video(path)
    return np.arange(info.n_frames) / info.fps


def is_variable_rate(times: np.ndarray, tolerance: float = 0.25) -> bool:
    """True when some frame interval differs from the median one by more than ``tolerance`` of it."""
    gaps = np.diff(np.asarray(times, np.float64))
    if len(gaps) < 2:
        return False
    median = float(np.median(gaps))
    return median > 0 and float(np.max(np.abs(gaps - median))) > tolerance * median


def variable_frame_times(path: str | Path) -> np.ndarray | None:
    """The frame times of a variable-frame-rate video (a warning says so), None for a constant rate.

    With a variable rate, ``index / fps`` puts frames at the wrong time; callers then use these.
    """
    times = frame_times(path)
    if not is_variable_rate(times):
        return None
    import logging

    logging.getLogger(__name__).warning(
        "%s: variable frame rate (frame intervals %.3f-%.3f s); frame times come from the presentation timestamps",
        path,
        float(np.min(np.diff(times))),
        float(np.max(np.diff(times))),
    )
    return times


def iter_frames(path: str | Path, size: tuple[int, int] | None = None) -> Iterator[np.ndarray]:
    """Yield greyscale uint8 frames, resized to ``size`` = (height, width) when given."""
    path = _existing(path)
    if is_dicom(path):
        frames, _ = _read_dicom(path)
        for f in frames:
            yield _resize(f, size)
        return
    import av

    n = 0
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise InputError(path, "no video stream")
            vs = c.streams.video[0]
            vs.thread_type = "AUTO"
            for frame in c.decode(vs):
                g = frame.to_ndarray(format="gray")
                n += 1
                yield _resize(g, size)
    except InputError:
        raise
    except Exception as e:
        raise InputError(path, f"corrupt or unreadable video at frame {n} ({e.__class__.__name__}: {e})") from None
    if n == 0:
        raise InputError(path, "video has no frames")


def read_frames(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """All frames as a (T, H, W) uint8 array."""
    return np.stack(list(iter_frames(path, size)))


def _resize(frame: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    if size is None or frame.shape[:2] == tuple(size):
        return frame
    from PIL import Image

    return np.asarray(Image.fromarray(frame).resize((size[1], size[0]), Image.BILINEAR))


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise InputError(path, "video file not found")
    if path.stat().st_size == 0:
        raise InputError(path, "video file is empty (0 bytes)")
    return path


def _read_dicom(path: Path) -> tuple[np.ndarray, float]:
    import pydicom

    try:
        ds = pydicom.dcmread(str(path))
        arr = ds.pixel_array
    except Exception as e:
        raise InputError(path, f"unreadable DICOM ({e.__class__.__name__}: {e})") from None
    n_frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2"))
    if n_frames == 1:
        arr = arr[None]
    if arr.ndim == 4:  # (T, H, W, 3) colour cine: convert to luminance
        if photometric.startswith("YBR"):
            arr = arr[..., 0]
        else:
            arr = arr[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    arr = arr.astype(np.float32)
    if arr.max() > 255 or arr.dtype != np.uint8:
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / max(hi - lo, 1e-6) * 255.0
    if photometric == "MONOCHROME1":
        arr = 255.0 - arr
    frames = np.clip(arr, 0, 255).astype(np.uint8)
    fps = 0.0
    if getattr(ds, "CineRate", None):
        fps = float(ds.CineRate)
    elif getattr(ds, "FrameTime", None):
        fps = 1000.0 / float(ds.FrameTime)
    elif getattr(ds, "RecommendedDisplayFrameRate", None):
        fps = float(ds.RecommendedDisplayFrameRate)
    if fps <= 0:
        raise InputError(path, "DICOM cine has no frame rate (CineRate / FrameTime)")
    if len(frames) == 0:
        raise InputError(path, "DICOM has no frames")
    return frames, fps

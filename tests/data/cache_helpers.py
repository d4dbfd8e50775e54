"""A FrameCache written directly from arrays, so tests know every pixel and sample exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sonotell.files import write_json
from sonotell.io.cache import FORMAT_VERSION, FrameCache


def cache_from_arrays(
    root: Path,
    frames: np.ndarray,
    fps: float,
    audio: np.ndarray | None = None,
    audio_rate_hz: int = 16000,
    audio_offset_s: float = 0.0,
    scan_id: str = "s",
    subject_id: str = "p",
) -> FrameCache:
    root.mkdir(parents=True, exist_ok=True)
    frames.astype(np.uint8).tofile(root / "frames.u8")
    if audio is not None:
        np.save(root / f"audio_{audio_rate_hz}.npy", audio.astype(np.float32))
    write_json(
        root / "meta.json",
        {
            "format_version": FORMAT_VERSION,
            "scan_id": scan_id,
            "subject_id": subject_id,
            "n_frames": len(frames),
            "height": frames.shape[1],
            "width": frames.shape[2],
            "fps": fps,
            "roi": None,
            "source_width": frames.shape[2],
            "source_height": frames.shape[1],
            "audio_offset_s": audio_offset_s,
            "audio_rate_hz": None if audio is None else audio_rate_hz,
            "audio_samples": 0 if audio is None else len(audio),
            "signature": {},
        },
    )
    return FrameCache.open(root)

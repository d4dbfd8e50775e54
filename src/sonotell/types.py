"""The one vocabulary of types every stage takes and returns.

Units live in the names: ``*_s`` seconds, ``*_hz`` hertz, ``fps`` frames per second.
Times are on the *video clock* unless a name says otherwise; a scan's audio starts at
``audio_offset_s`` on that clock (audio time = video time - audio_offset_s).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

UNLABELLED = "unlabelled"  # a frame with no single label (frame accuracy); per-label states: sonotell.labels


@dataclass(frozen=True)
class Scan:
    """One narrated scan: a video, its speech, and who it belongs to.

    Example:
        >>> Scan("s1", "p1", Path("s1.mp4"), Path("s1.wav")).audio_source
        PosixPath('s1.wav')
    """

    scan_id: str
    subject_id: str
    video_path: Path
    audio_path: Path | None = None  # None: the video's own audio track
    audio_offset_s: float = 0.0
    fps: float | None = None
    n_frames: int | None = None
    width: int | None = None
    height: int | None = None
    audio_sample_rate_hz: int | None = None
    audio_duration_s: float | None = None
    roi: tuple[int, int, int, int] | None = None  # (x0, y0, x1, y1) in pixels, x1/y1 exclusive

    @property
    def audio_source(self) -> Path:
        return self.audio_path if self.audio_path is not None else self.video_path

    @property
    def duration_s(self) -> float | None:
        if self.fps and self.n_frames:
            return self.n_frames / self.fps
        return None


@dataclass(frozen=True)
class Word:
    """A recognised word with its time span (video clock) and ASR confidence in [0, 1].

    ``aligned``: True when the times come from forced alignment, False when alignment failed and the
    recogniser's times are kept, None when no alignment was tried.
    """

    text: str
    start_s: float
    end_s: float
    confidence: float = 1.0
    speaker: str | None = None
    aligned: bool | None = None


@dataclass(frozen=True)
class TermEvent:
    """A lexicon term spotted in speech: ``label`` is the canonical class, ``term`` what was said."""

    label: str
    term: str
    start_s: float
    end_s: float
    confidence: float = 1.0
    negated: bool = False
    speaker: str | None = None


@dataclass
class Clip:
    """A paired sample: frames around a time, the audio window, and the words said in it.

    ``frames`` is (T, H, W) float32 in [0, 1]; ``audio`` is mono float32 at ``sample_rate_hz``.
    """

    scan_id: str
    subject_id: str
    time_s: float
    frames: np.ndarray
    audio: np.ndarray
    sample_rate_hz: int
    text: str = ""
    label: str | None = None
    labels: tuple[str, ...] = field(default_factory=tuple)  # multi-label findings / organs
    mask: np.ndarray | None = None  # (H, W) int class map, localisation ground truth

"""Paired clip sampling: the frames around a time, the audio window, and what was said in it.

Frame ``i`` of a scan covers ``[i / fps, (i + 1) / fps)`` on the video clock, so time ``t``
falls in frame ``floor(t * fps)``. A clip of ``n_frames`` frames with stride ``s`` takes the
frames ``floor(t * fps) + s * (k - n_frames // 2)`` for ``k = 0..n_frames-1`` (indices
outside the scan repeat the first/last frame). The audio window is ``[t - before_s,
t + after_s]`` on the video clock, read from audio time ``t - audio_offset_s`` and zero-padded
where the recording does not reach.

Example:
    >>> sampler = ClipSampler(FrameCache.open("cache/s1_128x128"), n_frames=8, frame_stride=2)  # doctest: +SKIP
    >>> clip = sampler.sample(12.5)  # Clip(frames (8,128,128), audio (16000,), text="...")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from sonotell.io.cache import FrameCache
from sonotell.types import Clip, Word


def words_in_window(words: Sequence[Word], start_s: float, end_s: float) -> str:
    """The words whose midpoint lies in ``[start_s, end_s]``, joined in their order.

    Example:
        >>> words_in_window([Word("liver", 1.0, 1.4), Word("kidney", 2.0, 2.6)], 0.9, 2.2)
        'liver'
    """
    return " ".join(w.text for w in words if start_s <= 0.5 * (w.start_s + w.end_s) <= end_s)


class ClipSampler:
    """Sample ``Clip``s from one scan's ``FrameCache``.

    Args:
        cache: the scan's frame cache (holds frames, fps, audio and the audio offset).
        n_frames: frames per clip.
        frame_stride: step between the clip's frames, in source frames.
        size: (height, width) of the returned frames; None keeps the cache's working size.
        audio_before_s / audio_after_s: the audio window around ``t``.
        sample_rate_hz: rate of the returned audio (resampled once from the cache when different).
        words: the scan's words (video clock) for the transcript window; None gives empty text.
        subject_id / scan_id: override the cache's ids (normally taken from it).
    """

    def __init__(
        self,
        cache: FrameCache,
        *,
        n_frames: int = 16,
        frame_stride: int = 1,
        size: tuple[int, int] | None = None,
        audio_before_s: float = 0.5,
        audio_after_s: float = 0.5,
        sample_rate_hz: int = 16000,
        words: Sequence[Word] | None = None,
        subject_id: str | None = None,
        scan_id: str | None = None,
    ):
        if n_frames < 1 or frame_stride < 1:
            raise ValueError("n_frames and frame_stride must be >= 1")
        if audio_before_s < 0 or audio_after_s < 0 or audio_before_s + audio_after_s <= 0:
            raise ValueError("the audio window [t - before, t + after] must have a positive length")
        self.cache = cache
        self.n_frames = n_frames
        self.frame_stride = frame_stride
        self.size = None if size is None or tuple(size) == cache.size else (int(size[0]), int(size[1]))
        self.audio_before_s = audio_before_s
        self.audio_after_s = audio_after_s
        self.sample_rate_hz = sample_rate_hz
        self.words = sorted(words or [], key=lambda w: w.start_s)
        self.subject_id = subject_id or cache.meta.get("subject_id", "")
        self.scan_id = scan_id or cache.meta.get("scan_id", "")
        self._audio: np.ndarray | None = None

    @property
    def audio_samples(self) -> int:
        """Length of every audio window in samples."""
        return int(round((self.audio_before_s + self.audio_after_s) * self.sample_rate_hz))

    def frame_indices(self, t: float) -> np.ndarray:
        centre = self.cache.index_at(t)  # presentation times for a variable frame rate
        idx = centre + self.frame_stride * (np.arange(self.n_frames) - self.n_frames // 2)
        return np.clip(idx, 0, self.cache.n_frames - 1)

    def frames(self, t: float) -> np.ndarray:
        """(T, H, W) float32 in [0, 1]."""
        idx = self.frame_indices(t)
        first, last = int(idx[0]), int(idx[-1])
        if last - first == self.frame_stride * (len(idx) - 1):  # no clamping: one strided slice
            raw = self.cache.frames(first, last + 1, self.frame_stride)
        else:
            raw = self.cache.take(idx)
        if self.size is not None:
            raw = _resize_stack(raw, self.size)
        return raw.astype(np.float32) / 255.0

    def audio(self, t: float) -> np.ndarray:
        """The window [t - before, t + after] (video clock) as float32, zero where there is no audio."""
        track = self._track()
        n = self.audio_samples
        start = int(round((t - self.audio_before_s - self.cache.audio_offset_s) * self.sample_rate_hz))
        out = np.zeros(n, np.float32)
        lo, hi = max(start, 0), min(start + n, len(track))
        if hi > lo:
            out[lo - start : hi - start] = track[lo:hi]
        return out

    def text(self, t: float) -> str:
        """Words whose midpoint lies in the audio window, in time order."""
        return words_in_window(self.words, t - self.audio_before_s, t + self.audio_after_s)

    def sample(self, t: float, *, label: str | None = None, labels: Sequence[str] = ()) -> Clip:
        return Clip(
            scan_id=self.scan_id,
            subject_id=self.subject_id,
            time_s=float(t),
            frames=self.frames(t),
            audio=self.audio(t),
            sample_rate_hz=self.sample_rate_hz,
            text=self.text(t),
            label=label,
            labels=tuple(labels),
        )

    __call__ = sample

    def __getstate__(self) -> dict:
        # DataLoader workers re-open the memory maps instead of receiving copies of them
        return {k: (None if k == "_audio" else v) for k, v in self.__dict__.items()}

    def _track(self) -> np.ndarray:
        if self._audio is None:
            track = self.cache.audio()
            if self.cache.audio_rate_hz != self.sample_rate_hz:
                from sonotell.io.audio import resample

                track = resample(np.asarray(track), self.cache.audio_rate_hz, self.sample_rate_hz)
            self._audio = track
        return self._audio


def _resize_stack(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from sonotell.io.video import _resize

    return np.stack([_resize(f, size) for f in frames])

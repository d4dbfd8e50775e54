"""Read audio as a stream of fixed-length mono chunks at a target rate, in bounded memory.

An hour of 48 kHz stereo never sits in memory at once: wav/flac/ogg are read block by block
(soundfile), a video's audio track frame by frame (PyAV), and resampled on the fly (soxr).

Example:
    >>> for chunk in iter_audio_chunks("scan.wav", 16000, chunk_s=30.0):  # doctest: +SKIP
    ...     ...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from sonotell.config import Section, setting
from sonotell.errors import ConfigError, InputError
from sonotell.io.audio import AUDIO_SUFFIXES, SUPPORTED_RATES_HZ, existing_audio


@dataclass(frozen=True)
class StreamConfig(Section):
    """How audio is streamed; defaults from ``configs/pipelines/speech.yaml`` (section ``stream``)."""

    SECTION = "stream"
    chunk_s: float = setting("pipelines", "speech", "stream", "chunk_s", gt=0.0)
    max_segment_s: float = setting("pipelines", "speech", "stream", "max_segment_s", gt=0.0)
    guard_s: float = setting("pipelines", "speech", "stream", "guard_s", ge=0.0)


@dataclass
class StreamStats:
    """What was seen while streaming (filled in as chunks pass)."""

    native_rate_hz: int = 0
    channels: int = 0
    n_samples: int = 0  # at the target rate
    sum_squares: float = 0.0
    clipped: int = 0
    native_samples: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def rms(self) -> float:
        return float(np.sqrt(self.sum_squares / max(1, self.n_samples)))

    @property
    def clipped_fraction(self) -> float:
        return self.clipped / max(1, self.native_samples)


MIN_CHUNK_S = 0.1


def check_chunk_s(chunk_s: object, key: str = "stream.chunk_s") -> float:
    """``chunk_s`` as a float of at least ``MIN_CHUNK_S`` seconds; ``ConfigError`` otherwise (0 would loop forever)."""
    try:
        value = float(chunk_s)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a number of seconds, not {chunk_s!r}") from None
    if not value >= MIN_CHUNK_S or value == float("inf"):  # also catches NaN
        raise ConfigError(f"{key} must be at least {MIN_CHUNK_S} s, not {chunk_s!r}")
    return value


def iter_audio_chunks(
    path: str | Path, sample_rate_hz: int = 16000, chunk_s: float = 30.0, stats: StreamStats | None = None
) -> Iterator[np.ndarray]:
    """Yield float32 mono chunks of ``chunk_s`` seconds (the last may be shorter) at ``sample_rate_hz``."""
    import soxr

    check_chunk_s(chunk_s)
    path = existing_audio(path)
    stats = stats if stats is not None else StreamStats()
    source = (
        _soundfile_blocks(path, chunk_s, stats)
        if path.suffix.lower() in AUDIO_SUFFIXES
        else _container_blocks(path, chunk_s, stats)
    )
    resampler = None
    pending: list[np.ndarray] = []
    n_pending = 0
    size = int(chunk_s * sample_rate_hz)
    for block in source:
        if not np.all(np.isfinite(block)):
            raise InputError(path, "audio contains NaN or infinite samples")
        stats.native_samples += len(block)
        stats.clipped += int(np.count_nonzero(np.abs(block) >= 0.999))
        if resampler is None and stats.native_rate_hz != sample_rate_hz:
            resampler = soxr.ResampleStream(stats.native_rate_hz, sample_rate_hz, 1, dtype="float32")
        out = resampler.resample_chunk(block.astype(np.float32)) if resampler else block.astype(np.float32)
        pending.append(out)
        n_pending += len(out)
        while n_pending >= size:
            joined = np.concatenate(pending)
            chunk, rest = joined[:size], joined[size:]
            pending, n_pending = [rest], len(rest)
            yield _account(chunk, stats)
    if stats.native_samples == 0:
        raise InputError(path, "audio is empty (0 samples)")
    if resampler is not None:
        pending.append(resampler.resample_chunk(np.zeros(0, np.float32), last=True))
    tail = np.concatenate(pending) if pending else np.zeros(0, np.float32)
    if len(tail):
        yield _account(tail, stats)


def _account(chunk: np.ndarray, stats: StreamStats) -> np.ndarray:
    stats.n_samples += len(chunk)
    stats.sum_squares += float(np.sum(chunk.astype(np.float64) ** 2))
    return chunk


def _check_rate(path: Path, sr: int, channels: int, stats: StreamStats) -> None:
    if sr not in SUPPORTED_RATES_HZ:
        raise InputError(
            path, f"unsupported sample rate {sr} Hz (supported: {', '.join(map(str, SUPPORTED_RATES_HZ))})"
        )
    stats.native_rate_hz, stats.channels = sr, channels
    if sr <= 8000:
        stats.notes.append(f"telephone-band audio ({sr} Hz): recognition will be less accurate")
    if channels > 1:
        stats.notes.append(f"{channels} channels mixed down to mono")


def _soundfile_blocks(path: Path, chunk_s: float, stats: StreamStats) -> Iterator[np.ndarray]:
    import soundfile as sf

    try:
        f = sf.SoundFile(str(path))
    except Exception as e:
        raise InputError(path, f"unreadable audio ({e.__class__.__name__}: {e})") from None
    with f:
        _check_rate(path, int(f.samplerate), int(f.channels), stats)
        block = max(1024, int(chunk_s * f.samplerate))
        while True:
            try:
                data = f.read(block, dtype="float32", always_2d=True)
            except Exception as e:
                raise InputError(path, f"unreadable audio ({e.__class__.__name__}: {e})") from None
            if len(data) == 0:
                break
            yield data.mean(axis=1)


def _container_blocks(path: Path, chunk_s: float, stats: StreamStats) -> Iterator[np.ndarray]:
    import av

    try:
        container = av.open(str(path))
    except Exception as e:
        raise InputError(path, f"cannot open ({e.__class__.__name__}: {e})") from None
    with container:
        if not container.streams.audio:
            raise InputError(path, "no audio track in the video and no audio file beside it")
        stream = container.streams.audio[0]
        sr = int(stream.codec_context.sample_rate or stream.rate)
        _check_rate(path, sr, int(stream.codec_context.channels or 1), stats)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sr)
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    yield out.to_ndarray().reshape(-1)
            for out in resampler.resample(None):
                yield out.to_ndarray().reshape(-1)
        except InputError:
            raise
        except Exception as e:
            raise InputError(path, f"cannot decode audio track ({e.__class__.__name__}: {e})") from None

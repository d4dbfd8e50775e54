"""Audio loading: a wav/flac/ogg file or a video's own audio track, as mono float32.

Example:
    >>> wav, sr = load_audio("scan.wav", sample_rate_hz=16000)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sonotell.errors import InputError

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3"}
SUPPORTED_RATES_HZ = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000)
SILENCE_RMS = 1e-5


def load_audio(
    path: str | Path, sample_rate_hz: int | None = None, *, allow_silent: bool = False
) -> tuple[np.ndarray, int]:
    """Load ``path`` as mono float32, resampled to ``sample_rate_hz`` when given.

    Raises ``InputError`` naming the file for a missing, unreadable, empty or silent input.
    """
    path = existing_audio(path)
    if path.suffix.lower() in AUDIO_SUFFIXES:
        wav, sr = _read_soundfile(path)
    else:
        wav, sr = _read_container_audio(path)
    if wav.size == 0:
        raise InputError(path, "audio is empty (0 samples)")
    if sr not in SUPPORTED_RATES_HZ:
        raise InputError(
            path, f"unsupported sample rate {sr} Hz (supported: {', '.join(map(str, SUPPORTED_RATES_HZ))})"
        )
    if not np.all(np.isfinite(wav)):
        raise InputError(path, "audio contains NaN or infinite samples")
    if not allow_silent and float(np.sqrt(np.mean(wav.astype(np.float64) ** 2))) < SILENCE_RMS:
        raise InputError(path, "audio is silent")
    if sample_rate_hz is not None and sr != sample_rate_hz:
        wav = resample(wav, sr, sample_rate_hz)
        sr = sample_rate_hz
    return wav.astype(np.float32, copy=False), sr


def existing_audio(path: str | Path) -> Path:
    """``path`` when it is a non-empty file; ``InputError`` "audio file not found" / "audio is empty (0 bytes)"."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "audio file not found")
    if path.is_file() and path.stat().st_size == 0:  # not "Format not recognised": say what is wrong
        raise InputError(path, "audio is empty (0 bytes)")
    return path


def audio_duration_s(path: str | Path) -> tuple[float, int]:
    """Duration and native sample rate without decoding everything when the format allows."""
    path = existing_audio(path)
    if path.suffix.lower() in AUDIO_SUFFIXES:
        import soundfile as sf

        try:
            info = sf.info(str(path))
        except Exception as e:  # soundfile raises its own LibsndfileError
            raise InputError(path, f"unreadable audio ({e.__class__.__name__}: {e})") from None
        return info.frames / info.samplerate, int(info.samplerate)
    wav, sr = _read_container_audio(path)
    return len(wav) / sr, sr


def resample(wav: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """Band-limited resampling (soxr, the resampler librosa uses)."""
    if from_hz == to_hz:
        return wav
    import soxr

    return soxr.resample(wav.astype(np.float32, copy=False), from_hz, to_hz).astype(np.float32)


def save_audio(path: str | Path, wav: np.ndarray, sample_rate_hz: int) -> Path:
    """Write 16-bit PCM wav atomically."""
    import soundfile as sf

    from sonotell.files import atomic_path

    with atomic_path(path) as tmp:
        sf.write(str(tmp), np.clip(wav, -1.0, 1.0), sample_rate_hz, subtype="PCM_16", format="WAV")
    return Path(path)


def _read_soundfile(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    try:
        wav, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:
        raise InputError(path, f"unreadable audio ({e.__class__.__name__}: {e})") from None
    return wav.mean(axis=1), int(sr)


def _read_container_audio(path: Path) -> tuple[np.ndarray, int]:
    """Decode the first audio stream of a video container with PyAV."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise InputError(path, "no audio track in the video and no audio file beside it")
            stream = container.streams.audio[0]
            sr = int(stream.codec_context.sample_rate or stream.rate)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sr)
            chunks = []
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except InputError:
        raise
    except Exception as e:
        raise InputError(path, f"cannot decode audio track ({e.__class__.__name__}: {e})") from None
    wav = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    return wav.astype(np.float32), sr

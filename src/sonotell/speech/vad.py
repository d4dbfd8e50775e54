"""Voice activity detection: silero-vad (its model ships inside the wheel), webrtcvad, or an energy gate.

Each detector returns speech spans in seconds relative to the audio it was given.

Example:
    >>> import numpy as np
    >>> vad = create_vad("energy", pad_s=0.0)
    >>> wav = np.zeros(16000, np.float32); wav[4000:12000] = 0.3
    >>> [(round(s, 2), round(e, 2)) for s, e in vad(wav, 16000)]
    [(0.24, 0.76)]
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np

from sonotell.config import Section, setting

Vad = Callable[[np.ndarray, int], list[tuple[float, float]]]
_SILERO = threading.local()


@dataclass(frozen=True)
class VadConfig(Section):
    """Voice activity detection; defaults from ``configs/pipelines/speech.yaml`` (section ``vad``)."""

    SECTION = "vad"
    name: str = setting("pipelines", "speech", "vad", "name", choices=("silero", "webrtc", "energy", "none"))
    threshold: float = setting("pipelines", "speech", "vad", "threshold", ge=0.0, le=1.0)  # silero
    min_speech_s: float = setting("pipelines", "speech", "vad", "min_speech_s", ge=0.0)
    min_silence_s: float = setting("pipelines", "speech", "vad", "min_silence_s", ge=0.0)
    pad_s: float = setting("pipelines", "speech", "vad", "pad_s", ge=0.0)
    aggressiveness: int = setting("pipelines", "speech", "vad", "aggressiveness", ge=0, le=3)  # webrtc


def create_vad(name: str | None = None, **settings) -> Vad | None:
    """A detector by name: ``silero``, ``webrtc``, ``energy`` (``none``: no detector, None).

    Settings not given take the values of ``configs/pipelines/speech.yaml``, as the CLI does.
    """
    cfg = VadConfig.from_dict(settings, **({"name": name} if name is not None else {}))
    merge = {"min_speech_s": cfg.min_speech_s, "min_silence_s": cfg.min_silence_s, "pad_s": cfg.pad_s}
    if cfg.name == "silero":
        return lambda wav, sr: silero_spans(wav, sr, threshold=cfg.threshold, **merge)
    if cfg.name == "webrtc":
        return lambda wav, sr: webrtc_spans(wav, sr, aggressiveness=cfg.aggressiveness, **merge)
    if cfg.name == "energy":
        return lambda wav, sr: energy_spans(wav, sr, **merge)
    return None


def silero_model():
    """The silero model, loaded from the wheel once per thread (no network)."""
    if not hasattr(_SILERO, "model"):
        from silero_vad import load_silero_vad

        _SILERO.model = load_silero_vad()
    return _SILERO.model


def _onnx_silero():
    """faster-whisper's speech-timestamp function over the silero model it ships as ONNX, or None without it.

    The same silero network without torch: a labelling process that loads Whisper then needs no torch for its
    VAD (torch alone is ~220 MB of resident memory, issue 20). 16 kHz only.
    """
    try:
        from faster_whisper.vad import VadOptions, get_speech_timestamps
    except ImportError:  # the light install: silero_vad's torch model
        return None
    return VadOptions, get_speech_timestamps


def silero_spans(
    wav: np.ndarray,
    sample_rate_hz: int,
    *,
    threshold: float = 0.5,
    min_speech_s: float = 0.2,
    min_silence_s: float = 0.25,
    pad_s: float = 0.1,
) -> list[tuple[float, float]]:
    if sample_rate_hz not in (8000, 16000):
        raise ValueError("silero-vad needs 8 or 16 kHz audio")
    onnx = _onnx_silero() if sample_rate_hz == 16000 else None
    if onnx is not None:
        options, timestamps = onnx
        stamps = timestamps(
            np.ascontiguousarray(wav, dtype=np.float32),
            options(
                threshold=threshold,
                min_speech_duration_ms=int(min_speech_s * 1000),
                min_silence_duration_ms=int(min_silence_s * 1000),
                speech_pad_ms=int(pad_s * 1000),
            ),
        )
        return [(s["start"] / sample_rate_hz, s["end"] / sample_rate_hz) for s in stamps]
    import torch
    from silero_vad import get_speech_timestamps

    model = silero_model()
    model.reset_states()
    stamps = get_speech_timestamps(
        torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32)),
        model,
        threshold=threshold,
        sampling_rate=sample_rate_hz,
        min_speech_duration_ms=int(min_speech_s * 1000),
        min_silence_duration_ms=int(min_silence_s * 1000),
        speech_pad_ms=int(pad_s * 1000),
    )
    return [(s["start"] / sample_rate_hz, s["end"] / sample_rate_hz) for s in stamps]


def webrtc_spans(
    wav: np.ndarray, sample_rate_hz: int, *, aggressiveness: int = 2, frame_ms: int = 30, **merge
) -> list[tuple[float, float]]:
    import webrtcvad

    vad = webrtcvad.Vad(aggressiveness)
    hop = sample_rate_hz * frame_ms // 1000
    pcm = (np.clip(wav, -1, 1) * 32767).astype(np.int16)
    flags = np.array(
        [vad.is_speech(pcm[i : i + hop].tobytes(), sample_rate_hz) for i in range(0, len(pcm) - hop + 1, hop)], bool
    )
    return flags_to_spans(flags, frame_ms / 1000, len(wav) / sample_rate_hz, **merge)


def energy_spans(
    wav: np.ndarray, sample_rate_hz: int, *, threshold_db: float = -35.0, frame_s: float = 0.02, **merge
) -> list[tuple[float, float]]:
    """Frames within ``threshold_db`` of the loudest frame count as speech (a fallback, not a speech model)."""
    hop = max(1, int(frame_s * sample_rate_hz))
    n = len(wav) // hop
    if n == 0:
        return []
    power = np.mean(wav[: n * hop].astype(np.float64).reshape(n, hop) ** 2, axis=1)
    level = 10 * np.log10(power + 1e-12)
    flags = level > level.max() + threshold_db
    return flags_to_spans(flags, frame_s, len(wav) / sample_rate_hz, **merge)


def flags_to_spans(
    flags: np.ndarray,
    frame_s: float,
    duration_s: float,
    *,
    min_speech_s: float = 0.2,
    min_silence_s: float = 0.25,
    pad_s: float = 0.1,
) -> list[tuple[float, float]]:
    """Turn per-frame speech flags into padded spans; short gaps are bridged, short bursts dropped."""
    spans: list[list[float]] = []
    start = None
    for i, f in enumerate(list(flags) + [False]):
        if f and start is None:
            start = i
        elif not f and start is not None:
            spans.append([start * frame_s, i * frame_s])
            start = None
    merged: list[list[float]] = []
    for s in spans:
        if merged and s[0] - merged[-1][1] < min_silence_s:
            merged[-1][1] = s[1]
        else:
            merged.append(s)
    return [(max(0.0, s - pad_s), min(duration_s, e + pad_s)) for s, e in merged if e - s >= min_speech_s]


def spans_to_mask(spans: list[tuple[float, float]], n_samples: int, sample_rate_hz: int) -> np.ndarray:
    mask = np.zeros(n_samples, bool)
    for s, e in spans:
        mask[int(s * sample_rate_hz) : int(e * sample_rate_hz)] = True
    return mask

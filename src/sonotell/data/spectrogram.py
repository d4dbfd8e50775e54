"""Spectrogram front-ends with the papers' settings, as named presets.

Every preset frames the waveform itself (no centre padding), windows each frame with a
periodic Hann window of ``win_length`` samples, zero-pads it to ``n_fft`` and takes the power
spectrum; a preset with a fixed ``duration_s`` first pads (zeros at the end) or cuts the
waveform to exactly that length, so its output shape never varies.

- ``bonmati`` (Bonmati et al., voice-labelled ultrasound): 2046-point STFT, 25 ms window,
  40 % overlap, on 1 s of audio -> **1024 x 66**. At 16 kHz (speech band, the rate every other
  sonotell stage uses) the window is 400 samples and the hop 60 % of it, 240 samples (15 ms).
  Frames = 1 + (16000 - 400) / 240 = 1 + 65 = **66**; bins = 2046 / 2 + 1 = **1024**. The
  same 66 arises at any rate where 25 ms and 15 ms are whole samples, because
  (1000 ms - 25 ms) / 15 ms = 65 exactly.
- ``show_from_tell`` (Show from Tell): a **256 x 256** log-spectrogram of 0.6 s. At 16 kHz
  0.6 s is 9600 samples; ``n_fft`` 510 gives 256 bins; 256 frames of 510 samples are placed
  with their starts evenly spread from the first to the last possible sample (hop ~35.6
  samples, rounded per frame), so the 256 columns cover exactly the 0.6 s.
- ``dual`` (log-mel): 64 mel bands (0-8 kHz) of a 512-point STFT with a 25 ms window and a
  10 ms hop on 1 s -> **64 x 98** (1 + (16000 - 400) / 160 = 98).

Output: float32 (frequency, time), natural log of power + 1e-6 (log-mel for ``dual``).

Example:
    >>> spectrogram(np.zeros(16000, np.float32), 16000, "bonmati").shape
    (1024, 66)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class SpectrogramPreset:
    """Settings of one front-end; sample counts are at ``sample_rate_hz``."""

    name: str
    sample_rate_hz: int
    duration_s: float | None
    n_fft: int
    win_length: int
    hop_length: int | None  # None: ``n_frames`` frames spread evenly over ``duration_s``
    n_frames: int | None = None
    n_mels: int | None = None
    log_floor: float = 1e-6

    @property
    def n_bins(self) -> int:
        return self.n_mels or self.n_fft // 2 + 1

    def shape(self, n_samples: int | None = None) -> tuple[int, int]:
        """Output (frequency, time) shape for ``n_samples`` (ignored when the duration is fixed)."""
        if self.duration_s is not None:
            n_samples = int(round(self.duration_s * self.sample_rate_hz))
        if self.n_frames is not None:
            return self.n_bins, self.n_frames
        return self.n_bins, 1 + max(0, (int(n_samples) - self.win_length) // self.hop_length)


PRESETS: dict[str, SpectrogramPreset] = {
    "bonmati": SpectrogramPreset("bonmati", 16000, 1.0, n_fft=2046, win_length=400, hop_length=240),
    "show_from_tell": SpectrogramPreset(
        "show_from_tell", 16000, 0.6, n_fft=510, win_length=510, hop_length=None, n_frames=256
    ),
    "dual": SpectrogramPreset("dual", 16000, 1.0, n_fft=512, win_length=400, hop_length=160, n_mels=64),
}


def get_preset(preset: str | SpectrogramPreset) -> SpectrogramPreset:
    if isinstance(preset, SpectrogramPreset):
        return preset
    if preset not in PRESETS:
        raise ValueError(f"unknown spectrogram preset {preset!r}; known: {', '.join(PRESETS)}")
    return PRESETS[preset]


def spectrogram(wav: np.ndarray, sample_rate_hz: int, preset: str | SpectrogramPreset = "bonmati") -> np.ndarray:
    """Log(-mel) power spectrogram (frequency, time) of mono ``wav`` with a named preset.

    The waveform is resampled to the preset's rate first when ``sample_rate_hz`` differs.

    Example:
        >>> spectrogram(np.zeros(9600, np.float32), 16000, "show_from_tell").shape
        (256, 256)
    """
    p = get_preset(preset)
    wav = np.asarray(wav, dtype=np.float32).reshape(-1)
    if sample_rate_hz != p.sample_rate_hz:
        from sonotell.io.audio import resample

        wav = resample(wav, sample_rate_hz, p.sample_rate_hz)
    if p.duration_s is not None:
        wav = _fit_length(wav, int(round(p.duration_s * p.sample_rate_hz)))
    frames = _frames(wav, p)
    power = np.abs(np.fft.rfft(frames * _hann(p.win_length), n=p.n_fft, axis=1)) ** 2
    if p.n_mels:
        power = power @ _mel_filters(p.sample_rate_hz, p.n_fft, p.n_mels).T
    return np.log(power + p.log_floor).T.astype(np.float32)


def _frames(wav: np.ndarray, p: SpectrogramPreset) -> np.ndarray:
    """(n_frames, win_length) frames of ``wav``, zero-padding a waveform shorter than one window."""
    if len(wav) < p.win_length:
        wav = _fit_length(wav, p.win_length)
    if p.hop_length is None:
        starts = np.linspace(0, len(wav) - p.win_length, p.n_frames).round().astype(np.int64)
    else:
        starts = np.arange(0, len(wav) - p.win_length + 1, p.hop_length)
    return wav[starts[:, None] + np.arange(p.win_length)[None, :]]


def _fit_length(wav: np.ndarray, n: int) -> np.ndarray:
    if len(wav) >= n:
        return wav[:n]
    return np.concatenate([wav, np.zeros(n - len(wav), np.float32)])


@lru_cache(maxsize=8)
def _hann(n: int) -> np.ndarray:
    # periodic Hann (as in torch.hann_window / librosa), the usual choice for STFT analysis
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)


@lru_cache(maxsize=8)
def _mel_filters(sample_rate_hz: int, n_fft: int, n_mels: int) -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=sample_rate_hz, n_fft=n_fft, n_mels=n_mels, fmin=0.0, fmax=sample_rate_hz / 2).astype(
        np.float32
    )

"""Clean audio for recognition: mono 16 kHz, clipping check, loudness normalisation, optional denoising.

Denoising (spectral gating with noisereduce) can *hurt* ASR on clean or mildly noisy speech,
so it is switched by condition: ``denoise: auto`` gates only when the estimated SNR is below
``denoise_below_snr_db``; ``true`` / ``false`` force it.

Example:
    >>> import numpy as np
    >>> wav = (0.01 * np.sin(np.arange(16000) / 5)).astype(np.float32)
    >>> out = normalise_loudness(wav, target_rms_dbfs=-20.0)
    >>> round(float(20 * np.log10(np.sqrt(np.mean(out ** 2)))), 1)
    -20.0
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from sonotell.config import Section, setting

log = logging.getLogger(__name__)

CLIP_LEVEL = 0.999


@dataclass(frozen=True)
class CleanConfig(Section):
    """Cleaning switches; defaults from ``configs/pipelines/speech.yaml`` (section ``clean``)."""

    SECTION = "clean"
    target_rms_dbfs: float | None = setting("pipelines", "speech", "clean", "target_rms_dbfs")
    denoise: bool | str = setting(
        "pipelines", "speech", "clean", "denoise", choices=(True, False, "auto", "true", "false")
    )
    denoise_below_snr_db: float = setting("pipelines", "speech", "clean", "denoise_below_snr_db")
    denoise_prop_decrease: float = setting("pipelines", "speech", "clean", "denoise_prop_decrease", ge=0.0, le=1.0)
    clipped_fraction_warn: float = setting("pipelines", "speech", "clean", "clipped_fraction_warn", ge=0.0, le=1.0)


def clipped_fraction(wav: np.ndarray) -> float:
    """Share of samples at full scale (a sign of clipping)."""
    return float(np.mean(np.abs(wav) >= CLIP_LEVEL)) if wav.size else 0.0


def normalise_loudness(wav: np.ndarray, target_rms_dbfs: float = -20.0, peak_limit: float = 0.99) -> np.ndarray:
    """Scale to an RMS level, without letting peaks exceed ``peak_limit``."""
    rms = float(np.sqrt(np.mean(wav.astype(np.float64) ** 2))) if wav.size else 0.0
    if rms < 1e-8:
        return wav.astype(np.float32, copy=True)
    gain = 10 ** (target_rms_dbfs / 20) / rms
    peak = float(np.max(np.abs(wav)))
    gain = min(gain, peak_limit / peak) if peak > 0 else gain
    return (wav * gain).astype(np.float32)


def estimate_snr_db(wav: np.ndarray, speech_mask: np.ndarray) -> float | None:
    """SNR from speech vs non-speech sample power; None when either part is missing."""
    if speech_mask.sum() < 160 or (~speech_mask).sum() < 160:
        return None
    p_speech = float(np.mean(wav[speech_mask].astype(np.float64) ** 2))
    p_noise = float(np.mean(wav[~speech_mask].astype(np.float64) ** 2))
    if p_noise <= 1e-12:
        return 100.0
    return 10 * np.log10(max(p_speech - p_noise, 1e-12) / p_noise)


def should_denoise(cfg: CleanConfig, snr_db: float | None) -> bool:
    if cfg.denoise in (True, "true", "on"):
        return True
    if cfg.denoise in (False, "false", "off", None):
        return False
    return snr_db is not None and snr_db < cfg.denoise_below_snr_db


def denoise(
    wav: np.ndarray, sample_rate_hz: int, noise_clip: np.ndarray | None = None, prop_decrease: float = 0.8
) -> np.ndarray:
    """Stationary spectral gating (noisereduce); ``noise_clip`` is a noise-only sample when known."""
    noisereduce = _noisereduce()
    out = noisereduce.reduce_noise(
        y=wav, sr=sample_rate_hz, y_noise=noise_clip, stationary=True, prop_decrease=prop_decrease, n_jobs=1
    )
    return np.asarray(out, dtype=np.float32)


def _noisereduce():
    """noisereduce without its optional torch gate: its package imports torch when it can, and torch alone is
    ~220 MB of resident memory in a labelling process that otherwise never needs it (issue 20); the stationary
    gate used here is numpy."""
    import sys

    if "noisereduce" in sys.modules or "torch" in sys.modules:
        import noisereduce

        return noisereduce

    class _NoTorch:  # `import torch` inside noisereduce's import: ImportError (its own fallback)
        @staticmethod
        def find_spec(name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError("torch is not imported for denoising")
            return None

    sys.meta_path.insert(0, _NoTorch)
    try:
        import noisereduce
    finally:
        sys.meta_path.remove(_NoTorch)
    return noisereduce

"""Background noise and room acoustics for narration tracks.

SNR is defined on *active* speech: the speech power is the mean power of the frames in
which speech is present (a narration track is mostly pauses, so the plain mean over the
whole track would understate it and make the mix far noisier than asked for). The noise
power is its mean over the whole track it covers.

Example:
    >>> rng = np.random.default_rng(0)
    >>> speech = np.zeros(16000, np.float32); speech[4000:8000] = 0.1 * rng.standard_normal(4000)
    >>> mixed, noise = mix_at_snr(speech, rng.standard_normal(16000), 10.0, 16000)
    >>> round(snr_db(speech, noise, 16000), 1)
    10.0
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sonotell.errors import InputError


def active_mask(
    wav: np.ndarray, sample_rate_hz: int, *, frame_s: float = 0.02, threshold_db: float = -40.0
) -> np.ndarray:
    """Per-sample bool: True inside frames whose energy is within ``threshold_db`` of the loudest frame.

    A simple energy detector in the spirit of ITU-T P.56 active speech level; exact for
    synthetic narration (silence between utterances is digital zero).
    """
    n = max(1, int(round(frame_s * sample_rate_hz)))
    n_frames = int(np.ceil(len(wav) / n))
    padded = np.zeros(n_frames * n, np.float64)
    padded[: len(wav)] = wav
    power = (padded.reshape(n_frames, n) ** 2).mean(axis=1)
    peak = power.max() if n_frames else 0.0
    if peak <= 0:
        return np.zeros(len(wav), bool)
    active = power >= peak * 10 ** (threshold_db / 10)
    return np.repeat(active, n)[: len(wav)]


def active_power(wav: np.ndarray, sample_rate_hz: int, **kwargs) -> float:
    """Mean power of ``wav`` over its active frames (0 for a silent signal)."""
    mask = active_mask(wav, sample_rate_hz, **kwargs)
    if not mask.any():
        return 0.0
    return float(np.mean(np.asarray(wav, np.float64)[mask] ** 2))


def mix_at_snr(
    speech: np.ndarray, noise: np.ndarray, snr_db_target: float, sample_rate_hz: int
) -> tuple[np.ndarray, np.ndarray]:
    """Scale ``noise`` so that active-speech power / noise power = ``snr_db_target``; return (mix, scaled noise).

    ``noise`` is tiled or cut to the length of ``speech``.
    """
    speech = np.asarray(speech, np.float64)
    noise = fit_length(np.asarray(noise, np.float64), len(speech))
    p_speech = active_power(speech, sample_rate_hz)
    p_noise = float(np.mean(noise**2))
    if p_speech == 0.0 or p_noise == 0.0:
        return speech.astype(np.float32), np.zeros_like(speech, np.float32)
    gain = np.sqrt(p_speech / (p_noise * 10 ** (snr_db_target / 10)))
    scaled = noise * gain
    return (speech + scaled).astype(np.float32), scaled.astype(np.float32)


def snr_db(speech: np.ndarray, noise: np.ndarray, sample_rate_hz: int) -> float:
    """The SNR by the same definition ``mix_at_snr`` uses."""
    return float(10 * np.log10(active_power(speech, sample_rate_hz) / np.mean(np.asarray(noise, np.float64) ** 2)))


def fit_length(noise: np.ndarray, n: int) -> np.ndarray:
    """Tile (then cut) ``noise`` to exactly ``n`` samples."""
    if len(noise) == 0:
        raise ValueError("empty noise")
    reps = int(np.ceil(n / len(noise)))
    return np.tile(noise, reps)[:n]


def coloured_noise(n: int, rng: np.random.Generator, exponent: float = 1.0) -> np.ndarray:
    """Noise with power spectrum ~ 1/f**exponent (0 white, 1 pink, 2 brown), unit variance."""
    spec = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    f = np.arange(n // 2 + 1, dtype=np.float64)
    f[0] = 1.0
    spec /= f ** (exponent / 2)
    spec[0] = 0.0
    x = np.fft.irfft(spec, n)
    return (x / (x.std() + 1e-12)).astype(np.float32)


def room_noise(n: int, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    """Synthetic clinic noise: pink noise plus a faint mains hum with harmonics (no files needed)."""
    t = np.arange(n) / sample_rate_hz
    hum_hz = 50.0 if rng.random() < 0.5 else 60.0
    hum = sum(np.sin(2 * np.pi * hum_hz * k * t + rng.uniform(0, 2 * np.pi)) / k for k in (1, 2, 3))
    x = coloured_noise(n, rng, 1.0) + 0.3 * hum
    return (x / (x.std() + 1e-12)).astype(np.float32)


def exponential_rir(
    sample_rate_hz: int, rt60_s: float, rng: np.random.Generator, *, direct_to_reverb_db: float = 6.0
) -> np.ndarray:
    """A synthetic room impulse response: a unit direct path then noise decaying 60 dB in ``rt60_s``."""
    n = max(2, int(rt60_s * sample_rate_hz))
    t = np.arange(n) / sample_rate_hz
    tail = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60_s)  # ln(1000): 60 dB amplitude decay
    pre_delay = int(0.003 * sample_rate_hz)
    tail[:pre_delay] = 0.0
    tail *= 10 ** (-direct_to_reverb_db / 20) / (np.sqrt(np.sum(tail**2)) + 1e-12)
    tail[0] = 1.0
    return tail


def reverberate(wav: np.ndarray, sample_rate_hz: int, rt60_s: float, rng: np.random.Generator) -> np.ndarray:
    """Convolve with ``exponential_rir``; output has the input's length and RMS."""
    from scipy.signal import fftconvolve

    if rt60_s <= 0:
        return wav
    wet = fftconvolve(np.asarray(wav, np.float64), exponential_rir(sample_rate_hz, rt60_s, rng))[: len(wav)]
    rms_in, rms_out = np.sqrt(np.mean(np.square(wav, dtype=np.float64))), np.sqrt(np.mean(wet**2))
    return (wet * (rms_in / rms_out if rms_out > 0 else 1.0)).astype(np.float32)


def esc10_files(root: str | Path) -> list[Path]:
    """The ESC-10 recordings under ``root`` (``NNN - Class/*.ogg``), sorted for determinism."""
    root = Path(root)
    files = sorted(root.glob("*/*.ogg"))
    if not files:
        raise InputError(root, "no ESC-10 .ogg files found (expected NNN - Class/*.ogg)")
    return files


def esc10_class(path: Path) -> str:
    """``.../003 - Sea waves/x.ogg`` -> ``sea waves``."""
    name = path.parent.name
    return name.split(" - ", 1)[1].lower() if " - " in name else name.lower()


def load_noise(path: Path, n: int, sample_rate_hz: int) -> np.ndarray:
    """A recording resampled and tiled to ``n`` samples; near-silent recordings raise ``InputError``."""
    from sonotell.io.audio import load_audio

    wav, _ = load_audio(path, sample_rate_hz, allow_silent=True)
    if float(np.mean(wav.astype(np.float64) ** 2)) < 1e-10:
        raise InputError(path, "noise recording is silent")
    return fit_length(wav, n)


@dataclass
class SoundTrack:
    """A scan's finished narration audio and how it was made (for the truth file)."""

    audio: np.ndarray
    sample_rate_hz: int
    track: object  # narration.Narration: events, segments, dropped lines
    clinician: object  # tts.Voice
    other: object
    other_role: str
    noise: str | None
    snr_db: float | None
    reverb_rt60_s: float

    def truth_fields(self) -> dict:
        """How the track was made, for the scan's truth file."""
        return {
            "voice": self.clinician.name,
            "second_speaker": {"role": self.other_role, "voice": self.other.name},
            "noise": self.noise,
            "snr_db": self.snr_db,
            "reverb_rt60_s": self.reverb_rt60_s,
            "dropped_lines": self.track.dropped,
        }


def narrated_soundtrack(
    make_lines, duration_s: float, cfg: dict, pool: list, tts, rng: np.random.Generator
) -> SoundTrack:
    """Voices -> narration lines -> speech -> optional reverb -> ESC-10 noise at an SNR -> peak-safe audio.

    ``make_lines(clinician, other, other_role)`` writes the scan's lines; the clinician and a
    second speaker of a different timbre are drawn from ``pool``. Draws from ``rng`` in a fixed
    order, so a seed gives the same bytes.
    """
    from sonotell.bench import narration as narr

    clinician = pool[int(rng.integers(len(pool)))]
    others = [v for v in pool if (v.language, v.variant) != (clinician.language, clinician.variant)] or pool
    other = others[int(rng.integers(len(others)))]
    other_role = "patient" if rng.random() < cfg["narration"]["p_patient_vs_trainee"] else "trainee"
    lines = make_lines(clinician, other, other_role)
    a = cfg["audio"]
    sr = int(a["sample_rate_hz"])
    track = narr.render(
        lines,
        duration_s=duration_s,
        sample_rate_hz=sr,
        tts=tts,
        audio_offset_s=float(a["audio_offset_s"]),
        min_gap_s=float(cfg["narration"]["min_gap_s"]),
    )
    audio = track.audio
    rt60 = float(rng.uniform(*a["reverb_rt60_s"])) if rng.random() < float(a["p_reverb"]) else 0.0
    if rt60 > 0:
        audio = reverberate(audio, sr, rt60, rng)
    snr, noise_name = None, None
    if a.get("snr_db") is not None and np.any(audio):  # SNR is undefined without speech
        files = esc10_files(Path(cfg["data_root"]).expanduser() / "esc10")
        noise_path = files[int(rng.integers(len(files)))]
        noise_name = f"{esc10_class(noise_path)}/{noise_path.name}"
        snr = float(rng.uniform(*a["snr_db"]))
        audio, _ = mix_at_snr(audio, load_noise(noise_path, len(audio), sr), snr, sr)
    peak = float(np.abs(audio).max()) if len(audio) else 0.0
    if peak > 0.99:
        audio = audio * (0.99 / peak)
    return SoundTrack(audio, sr, track, clinician, other, other_role, noise_name, snr, rt60)

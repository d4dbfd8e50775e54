"""Paired samples: the voice around each spoken class term (Bonmati spectrogram) and the frames around it."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from sonotell.errors import ConfigError, InputError
from sonotell.files import atomic_path
from sonotell.methods.voice_label.config import SampleConfig
from sonotell.progress import Progress, silent

log = logging.getLogger(__name__)

SPEC_BINS, SPEC_FRAMES = 1024, 66


# ---------------------------------------------------------------- voice input (Bonmati preset)


def fit_to_length(wav: np.ndarray, n_samples: int) -> np.ndarray:
    """Centre-crop a longer sample, zero-pad a shorter one on both sides (the paper's 1 s samples)."""
    wav = np.asarray(wav, np.float32)
    if len(wav) >= n_samples:
        start = (len(wav) - n_samples) // 2
        return wav[start : start + n_samples]
    before = (n_samples - len(wav)) // 2
    return np.pad(wav, (before, n_samples - len(wav) - before))


def bonmati_spectrogram(wav: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    """(1024, 66) standardised log spectrogram of a voice sample, cropped/padded to 1 s first.

    Uses ``sonotell.data.spectrogram`` (preset ``bonmati``: 2046-point FFT, 25 ms window,
    40 % overlap): 2046 / 2 + 1 = 1024 bins, 66 frames in 1 s.
    """
    from sonotell.data.spectrogram import spectrogram

    wav = fit_to_length(np.asarray(wav, np.float32), int(sample_rate_hz))
    spec = np.asarray(spectrogram(wav, sample_rate_hz, "bonmati"), np.float32)
    if spec.shape != (SPEC_BINS, SPEC_FRAMES):
        raise RuntimeError(
            f"bonmati spectrogram at {sample_rate_hz} Hz is {spec.shape}, not {(SPEC_BINS, SPEC_FRAMES)}"
        )
    spec = (spec - spec.mean()) / (spec.std() + 1e-6)
    return spec.astype(np.float32)


# ---------------------------------------------------------------- samples from a benchmark


@dataclass
class Samples:
    """Paired samples: ``frames`` (N, T, H, W) uint8, ``spec`` (N, 1024, 66) float16, ``label`` (N,)."""

    frames: np.ndarray
    spec: np.ndarray
    label: np.ndarray
    subject: np.ndarray
    scan_id: np.ndarray
    time_s: np.ndarray
    term: np.ndarray
    classes: list[str]

    def __len__(self) -> int:
        return len(self.label)


def target_classes(bench, target: str = "auto") -> list[str]:
    """The class list: the bench's clip classes if narration names them, else its multi-label names."""
    if target == "classes":
        return list(bench.classes)
    if target == "label_names":
        return list(bench.label_names)
    if target != "auto":
        raise ConfigError(f"data.target must be auto, classes or label_names, got {target!r}")
    said = {e["label"] for s in bench.scans for e in bench.truth(s.scan_id)["events"]}
    if bench.classes and said & set(bench.classes):
        return list(bench.classes)
    return list(bench.label_names or bench.classes)


def frame_window(time_s: float, fps: float, n_frames: int, target_fps: float, total: int) -> np.ndarray:
    """Indices of ``n_frames`` frames at ``target_fps`` centred on ``time_s``, clamped to the video."""
    offsets = (np.arange(n_frames) - (n_frames - 1) / 2) / target_fps
    return np.clip(np.round((time_s + offsets) * fps).astype(int), 0, total - 1)


def extract_samples(bench, data_cfg: dict, cache_dir: str | Path | None = None, progress: Progress = silent) -> Samples:
    """One sample per spoken class term (not negated): the voice around it and the frames around it.

    Results are cached as ``samples-<hash>.npz`` in ``cache_dir`` (keyed by benchmark and data config).
    """
    typed = SampleConfig.from_dict(data_cfg)
    classes = _sample_classes(bench, typed)
    key = hashlib.sha1(
        json.dumps(
            {"root": str(Path(bench.root).resolve()), "n": len(bench.scans), "data": data_cfg, "classes": classes},
            sort_keys=True,
        ).encode()
    ).hexdigest()[:12]
    cache = Path(cache_dir) / f"samples-{key}.npz" if cache_dir else None
    if cache is not None and cache.exists():
        z = np.load(cache, allow_pickle=False)
        kept = [str(c) for c in z["classes"]] if "classes" in z.files else classes
        return Samples(z["frames"], z["spec"], z["label"], z["subject"], z["scan_id"], z["time_s"], z["term"], kept)
    out: dict[str, list] = {k: [] for k in ("frames", "spec", "label", "subject", "scan_id", "time_s", "term")}
    for i, scan in enumerate(bench.scans):
        events = [e for e in bench.truth(scan.scan_id)["events"] if e["label"] in classes and not e.get("negated")]
        if typed.max_samples_per_scan:
            events = events[: int(typed.max_samples_per_scan)]
        progress(i, len(bench.scans), scan.scan_id)
        if events:
            _scan_samples(scan, events, classes, typed, out)
    progress(len(bench.scans), len(bench.scans), "samples ready")
    if not out["label"]:
        raise InputError(bench.root, f"no spoken class terms ({', '.join(classes)}) in the benchmark's truth events")
    arrays = {
        "frames": np.stack(out["frames"]).astype(np.uint8),
        "spec": np.stack(out["spec"]),
        "label": np.asarray(out["label"], np.int64),
        "subject": np.asarray(out["subject"]),
        "scan_id": np.asarray(out["scan_id"]),
        "time_s": np.asarray(out["time_s"], np.float64),
        "term": np.asarray(out["term"]),
    }
    classes = _drop_unspoken(arrays, classes)
    if cache is not None:
        with atomic_path(cache) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays, classes=np.asarray(classes))
    return Samples(**arrays, classes=classes)


def _sample_classes(bench, typed: SampleConfig) -> list[str]:
    """The classes samples are cut for: the configured subset, else the benchmark's own task or its classes."""
    classes = target_classes(bench, typed.target)
    if not typed.classes and classes == list(bench.classes) and bench.task_classes:
        return list(bench.task_classes)  # the benchmark's own task (pocus: 3 classes), from its bench.json
    if typed.classes:  # a subset, e.g. the paper-style 3 POCUS classes without "viral"
        unknown = [c for c in typed.classes if c not in classes]
        if unknown:
            raise ConfigError(f"data.classes {unknown} not among the benchmark's classes {classes}")
        return [str(c) for c in typed.classes]
    return classes


def _scan_samples(scan, events: list[dict], classes: list[str], typed: SampleConfig, out: dict[str, list]) -> None:
    """Append one sample per event of ``scan``: its voice window's spectrogram and the frames around it."""
    from sonotell.io.audio import load_audio
    from sonotell.io.video import read_frames

    size = tuple(int(s) for s in typed.size)
    n_frames, target_fps, window_s = typed.n_frames, typed.fps, typed.voice_window_s
    frames = read_frames(scan.video_path, size)
    fps = float(scan.fps or 25.0)
    if len(frames) < n_frames:
        log.warning(
            "%s: %d frames, fewer than the %d a sample needs; edge frames repeat",
            scan.video_path,
            len(frames),
            n_frames,
        )
    wav, wav_sr = load_audio(scan.audio_source, allow_silent=True)
    for e in events:
        t = 0.5 * (float(e["start_s"]) + float(e["end_s"]))
        a = (t - float(scan.audio_offset_s or 0.0)) * wav_sr  # audio clock
        half = int(round(max(window_s, float(e["end_s"]) - float(e["start_s"])) * wav_sr / 2))
        lo, hi = int(a) - half, int(a) + half
        piece = np.zeros(hi - lo, np.float32)  # silence where the window leaves the recording
        src_lo, src_hi = max(lo, 0), min(hi, len(wav))
        if src_hi > src_lo:
            piece[src_lo - lo : src_hi - lo] = wav[src_lo:src_hi]
        out["spec"].append(bonmati_spectrogram(fit_to_length(piece, int(window_s * wav_sr)), wav_sr).astype(np.float16))
        out["frames"].append(frames[frame_window(t, fps, n_frames, target_fps, len(frames))])
        out["label"].append(classes.index(e["label"]))
        out["subject"].append(str(scan.subject_id))
        out["scan_id"].append(str(scan.scan_id))
        out["time_s"].append(t)
        out["term"].append(str(e.get("term", e["label"])))


def _drop_unspoken(arrays: dict, classes: list[str]) -> list[str]:
    """A class nobody names can be neither learned nor tested: drop it and renumber the labels in place."""
    present = [i for i in range(len(classes)) if np.any(arrays["label"] == i)]
    if len(present) == len(classes):
        return classes
    log.warning(
        "classes never spoken, left out: %s", ", ".join(classes[i] for i in range(len(classes)) if i not in present)
    )
    remap = np.full(len(classes), -1, np.int64)
    remap[present] = np.arange(len(present))
    arrays["label"] = remap[arrays["label"]]
    return [classes[i] for i in present]


class VoiceLabelDataset(Dataset):
    """Items ``{"frames": (T,H,W) float32 in [0,1], "spec": (1024,66) float32, "label", "index"}``.

    ``random_pairs``: while training, the voice comes from a random sample of the same class
    (redrawn at every access, so every epoch sees new pairs). ``reduced_frames``: keep that many
    random frames in temporal order (fixed per sample when not training, so tests repeat).
    """

    def __init__(
        self,
        samples: Samples,
        indices: Sequence[int],
        *,
        train: bool,
        random_pairs: bool = False,
        reduced_frames: int | None = None,
        seed: int = 0,
    ):
        self.s, self.idx, self.train = samples, np.asarray(indices, int), train
        self.random_pairs, self.reduced_frames, self.seed = random_pairs, reduced_frames, seed
        labels = samples.label[self.idx]
        self.pool = {c: self.idx[labels == c] for c in np.unique(labels)}

    def __len__(self) -> int:
        return len(self.idx)

    def __getitem__(self, i: int) -> dict:
        j = int(self.idx[i])
        voice_j = j
        if self.random_pairs and self.train:
            voice_j = int(np.random.choice(self.pool[int(self.s.label[j])]))  # numpy is seeded by fit()
        frames = self.s.frames[j]
        if self.reduced_frames:
            rng = np.random if self.train else np.random.default_rng(self.seed * 1_000_003 + j)
            frames = frames[np.sort(rng.choice(len(frames), self.reduced_frames, replace=False))]
        return {
            "frames": torch.from_numpy(frames.astype(np.float32) / 255.0),
            "spec": torch.from_numpy(self.s.spec[voice_j].astype(np.float32)),
            "label": torch.tensor(int(self.s.label[j])),
            "index": torch.tensor(j),
        }

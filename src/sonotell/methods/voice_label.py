"""Voice-assisted image labelling (Bonmati et al. 2021) as a recipe.

The method, as the paper states it: a 1 s voice sample (spectrogram, 1024 × 66) and the 25
frames around it (stacked as channels) go through a six-layer 1D voice CNN and a VGG16-style
image CNN; the two feature sequences are joined by a per-channel matrix product C = Q Pᵀ, a
2D convolution and global average pooling give K class scores, trained with class-weighted
cross-entropy (Adam, lr 1e-3, batch 8). Every variant of the paper's Table III is a row:
image+voice, voice only, image only, pretrained voice / image branches, random pairs and
reduced input (3 of the 25 frames). Evaluation: patient-level CV with one prediction vector
pooled over folds, macro P/R/F1, per-class figures, confusion matrix, bootstrap over patients.

Example:
    >>> from sonotell.methods.voice_label import run_experiment
    >>> run_experiment("bench_out/pocus", "runs/voice_label", config="small")  # doctest: +SKIP
    PosixPath('runs/voice_label/results.md')
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from sonotell.config import Section, defaults_from, load_config, packaged_default
from sonotell.data.format import resolve_benchmark
from sonotell.errors import ConfigError, InputError
from sonotell.files import atomic_path, write_json
from sonotell.progress import Progress, silent
from sonotell.safeload import load_weights_only

log = logging.getLogger(__name__)

SPEC_BINS, SPEC_FRAMES = 1024, 66
GROUP = "methods/voice_label"


# ---------------------------------------------------------------- config (defaults: voice_label/paper.yaml)


_default = defaults_from(GROUP, "paper")


@dataclass(frozen=True)
class SampleConfig(Section):
    """Which samples are cut and how (section ``data``; its dict also keys the sample cache)."""

    SECTION = "data"
    target: str = _default("data", "target", choices=("auto", "classes", "label_names"))
    classes: list[str] | None = _default("data", "classes")
    size: list[int] = _default("data", "size")
    n_frames: int = _default("data", "n_frames", ge=1)
    fps: float = _default("data", "fps", gt=0.0)
    voice_window_s: float = _default("data", "voice_window_s", gt=0.0)
    reduced_frames: int = _default("data", "reduced_frames", ge=1)
    max_samples_per_scan: int | None = _default("data", "max_samples_per_scan")


@dataclass(frozen=True)
class TrainConfig(Section):
    """Training of one fold (section ``train``)."""

    SECTION = "train"
    optimizer: dict = _default("train", "optimizer")
    batch_size: int = _default("train", "batch_size", ge=1)
    max_epochs: int = _default("train", "max_epochs", ge=0)
    class_weights: Any = _default("train", "class_weights")  # "auto", null or a list of K weights
    devices: Any = _default("train", "devices")  # a count, a list of ids or "auto"
    accelerator: str = _default("train", "accelerator")
    strategy: str = _default("train", "strategy")
    num_nodes: int = _default("train", "num_nodes", ge=1)
    keep_checkpoints: bool = _default("train", "keep_checkpoints")


@dataclass(frozen=True)
class CvConfig(Section):
    SECTION = "cv"
    scheme: str = _default("cv", "scheme", choices=("kfold", "lopo"))
    k: int = _default("cv", "k", ge=2)


@dataclass(frozen=True)
class KeywordConfig(Section):
    """The spoken-word voice encoder that stands in for Speech Commands (section ``keyword_pretrain``)."""

    SECTION = "keyword_pretrain"
    n_voices: int = _default("keyword_pretrain", "n_voices", ge=2)
    test_voices: int = _default("keyword_pretrain", "test_voices", ge=1)
    max_epochs: int = _default("keyword_pretrain", "max_epochs", ge=0)
    batch_size: int = _default("keyword_pretrain", "batch_size", ge=1)
    extra_words: list[str] = _default("keyword_pretrain", "extra_words")


@dataclass(frozen=True)
class GradcamConfig(Section):
    SECTION = "gradcam"
    n_examples: int = _default("gradcam", "n_examples", ge=0)


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


# ---------------------------------------------------------------- the task


def forward(model, batch: dict) -> torch.Tensor:
    """Feed only the modalities the model variant uses."""
    return model(batch["frames"] if model.uses_image else None, batch["spec"] if model.uses_voice else None)


@torch.no_grad()
def predict(model, loader) -> tuple[np.ndarray, np.ndarray, float]:
    """Scores (N, K) and sample indices in loader order, plus inference clips per second."""
    model.eval()
    scores, index, n, t0 = [], [], 0, time.perf_counter()
    for batch in loader:
        scores.append(torch.softmax(forward(model, batch), dim=1).numpy())
        index.append(batch["index"].numpy())
        n += len(batch["index"])
    dt = time.perf_counter() - t0
    if not scores:
        return np.zeros((0, model.num_classes), np.float32), np.zeros(0, int), float("nan")
    return np.concatenate(scores), np.concatenate(index), n / max(dt, 1e-9)


def model_kwargs(cfg: dict, variant: dict, num_classes: int, keyword_ckpt: Path | None = None) -> dict:
    """``create_model("voice_label", cfg["model"], **kwargs)`` arguments of one variant."""
    data = SampleConfig.from_dict(cfg.get("data"))
    kwargs = {"num_classes": num_classes, "mode": variant.get("mode", "image_voice")}
    kwargs["in_frames"] = data.reduced_frames if variant.get("reduced_frames") else data.n_frames
    if variant.get("pretrained_voice"):
        pv = variant["pretrained_voice"]
        kwargs["pretrained_voice"] = str(keyword_ckpt) if pv == "keyword" else str(pv)
    if variant.get("pretrained_image"):
        pi = variant["pretrained_image"]
        kwargs["pretrained_image"] = str(cfg.get("pretrained_image")) if pi == "config" else str(pi)
    if cfg.get("image_encoder"):  # a registered image encoder as the image branch (e.g. ImageNet EfficientNet-Lite0)
        kwargs["image_encoder"] = dict(cfg["image_encoder"])
    kwargs.update(variant.get("model_overrides", {}))
    return kwargs


def build_model(cfg: dict, variant: dict, num_classes: int, keyword_ckpt: Path | None = None):
    from sonotell.models import create_model

    return create_model("voice_label", _model_config(cfg), **model_kwargs(cfg, variant, num_classes, keyword_ckpt))


def _model_config(cfg: dict) -> str:
    """The ``configs/models/voice_label`` size a method config names (its ``model`` key)."""
    return str(cfg["model"]) if "model" in cfg else packaged_default(GROUP, "paper", "model")


def train_fold(
    samples: Samples,
    train_idx: np.ndarray,
    test_idx: np.ndarray,
    cfg: dict,
    variant: dict,
    out_dir: Path,
    seed: int,
    keyword_ckpt: Path | None = None,
    progress: Progress = silent,
):
    """Train one variant on ``train_idx``; return the trained model, test scores and throughput."""
    from sonotell.losses.weighted_ce import WeightedCrossEntropy, class_weights_from_labels
    from sonotell.seeding import seed_everything
    from sonotell.train import ClassificationTask, fit

    seed_everything(seed)
    tcfg, K = TrainConfig.from_dict(cfg.get("train")), len(samples.classes)
    weights = tcfg.class_weights
    if weights == "auto":
        weights = class_weights_from_labels(samples.label[train_idx], K)
    elif weights is not None and len(weights) != K:
        raise ConfigError(f"train.class_weights has {len(weights)} values for {K} classes")
    model = build_model(cfg, variant, K, keyword_ckpt)
    task = ClassificationTask(
        model,
        WeightedCrossEntropy(weights),
        optimizer=dict(tcfg.optimizer),
        recipe="voice_label",
        config={"method": cfg, "variant": variant},
        forward=forward,
        metric="acc",
    )
    reduced = SampleConfig.from_dict(cfg.get("data")).reduced_frames if variant.get("reduced_frames") else None
    train_ds = VoiceLabelDataset(
        samples,
        train_idx,
        train=True,
        random_pairs=bool(variant.get("random_pairs")),
        reduced_frames=reduced,
        seed=seed,
    )
    test_ds = VoiceLabelDataset(samples, test_idx, train=False, reduced_frames=reduced, seed=seed)
    bs = tcfg.batch_size
    generator = torch.Generator().manual_seed(seed)
    train_dl = DataLoader(train_ds, batch_size=bs, shuffle=True, generator=generator, drop_last=len(train_ds) > bs)
    epochs = tcfg.max_epochs
    t0 = time.perf_counter()
    result = fit(
        task,
        train_dl,
        None,
        out_dir=out_dir,
        max_epochs=epochs,
        seed=seed,
        devices=tcfg.devices,
        accelerator=tcfg.accelerator,
        strategy=tcfg.strategy,
        num_nodes=tcfg.num_nodes,
        progress=progress,
    )
    train_s = time.perf_counter() - t0
    scores, index, clips_per_s = predict(model, DataLoader(test_ds, batch_size=bs))
    if not tcfg.keep_checkpoints:
        shutil.rmtree(out_dir / "checkpoints", ignore_errors=True)
    stats = {
        "train_samples_per_s": len(train_ds) * max(result.epochs_run, 1) / max(train_s, 1e-9),
        "inference_clips_per_s": clips_per_s,
        "train_wall_s": train_s,
        "epochs_run": result.epochs_run,
        "final_train_loss": result.metrics.get("train/loss"),
    }
    return model, scores, index, stats


# ---------------------------------------------------------------- keyword encoder (stands in for Speech Commands)


def pretrain_keyword_encoder(
    words: Sequence[str],
    out_path: str | Path,
    *,
    model_config: str = "small",
    kw_cfg: dict | None = None,
    seed: int = 0,
    progress: Progress = silent,
) -> Path:
    """Train a small voice encoder to recognise single spoken words (sonotell's eSpeak voices).

    Voices are split by timbre into train / held-out test voices; the held-out word accuracy
    is stored in the checkpoint (``keyword_accuracy``). The saved branch has the voice widths
    of ``model_config`` so it drops into ``VoiceLabelNet`` as ``pretrained_voice``.
    """
    from sonotell.config import load_config as load
    from sonotell.data.tts import EspeakTTS, voice_bank
    from sonotell.losses.weighted_ce import WeightedCrossEntropy
    from sonotell.models.voice_cnn import KeywordNet
    from sonotell.models.voice_label import save_branch
    from sonotell.seeding import seed_everything
    from sonotell.train import ClassificationTask, fit

    out_path = Path(out_path)
    if out_path.exists():
        return out_path
    kw_cfg = dict(kw_cfg or {})
    kw = KeywordConfig.from_dict(kw_cfg)
    words = sorted(dict.fromkeys(w.lower() for w in words))
    n_voices, n_test = kw.n_voices, kw.test_voices
    voices = voice_bank(n_voices, seed=seed + 7919)  # a bank of its own, not the benchmark's seed
    tts = EspeakTTS()
    specs, labels, is_test = [], [], []
    total = len(words) * len(voices)
    for vi, voice in enumerate(voices):
        for wi, word in enumerate(words):
            speech = tts.synthesize(word, voice)
            specs.append(bonmati_spectrogram(speech.audio, speech.sample_rate_hz))
            labels.append(wi)
            is_test.append(vi >= n_voices - n_test)
            progress(len(specs), total, f"keyword {word}")
    spec, y, test = np.stack(specs), np.asarray(labels), np.asarray(is_test)
    mcfg = load("models/voice_label", model_config)
    # Seed before the network is built: its initial weights are part of the result (two runs
    # differed by 0.08 keyword accuracy when the seed was set only inside ``fit``).
    seed_everything(seed)
    net = KeywordNet(
        len(words),
        in_channels=int(mcfg["spec_bins"]),
        widths=list(mcfg["voice_widths"]),
        pool_every=int(mcfg["voice_pool_every"]),
    )

    task = ClassificationTask(
        net,
        WeightedCrossEntropy(None),
        optimizer={"name": "adam", "lr": 1e-3},
        recipe="keyword_encoder",
        config={"words": words, **kw_cfg},
        metric="acc",
    )
    tr = torch.utils.data.TensorDataset(torch.from_numpy(spec[~test]), torch.from_numpy(y[~test]))
    dl = DataLoader(tr, batch_size=kw.batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))
    work = out_path.parent / (out_path.stem + "_training")
    fit(task, dl, None, out_dir=work, max_epochs=kw.max_epochs, seed=seed)
    net.eval()
    with torch.no_grad():
        acc = (
            float((net(torch.from_numpy(spec[test])).argmax(1).numpy() == y[test]).mean())
            if test.any()
            else float("nan")
        )
    shutil.rmtree(work / "checkpoints", ignore_errors=True)
    log.info("keyword encoder: %d words, held-out-voice accuracy %.3f", len(words), acc)
    return save_branch(net.voice, out_path, words=words, keyword_accuracy=acc)


# ---------------------------------------------------------------- the experiment (Table III)


def method_config(config: str | dict = "small", overrides: list[str] | None = None) -> dict:
    if isinstance(config, dict):
        from sonotell.config import apply_overrides

        return apply_overrides(config, overrides or [])
    return load_config("methods/voice_label", config, overrides)


def run_experiment(
    benchmark,
    out_dir,
    config: str | dict = "small",
    overrides: list[str] | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    variants: Sequence[str] | None = None,
) -> Path:
    """Every variant of the paper under patient-level CV; writes ``results.md`` + ``results.json``.

    Resumable: each (variant, fold) writes its predictions once and is skipped on a rerun.
    """
    from sonotell.eval.report import write_results

    progress = progress or silent
    out_dir = Path(out_dir)
    cfg = method_config(config, overrides)
    bench = resolve_benchmark(benchmark)
    samples = extract_samples(bench, cfg["data"], out_dir / "cache", progress)
    folds, warnings = patient_folds(samples, CvConfig.from_dict(cfg.get("cv")), seed)
    chosen = [v for v in cfg["variants"] if variants is None or v["name"] in variants]
    keyword_ckpt = _keyword_checkpoint(cfg, samples, out_dir, seed, chosen)
    rows, per_variant = [], {}
    jobs, done = len(chosen) * len(folds), 0
    for variant in chosen:
        name = variant["name"]
        if variant.get("pretrained_image") == "config" and not cfg.get("pretrained_image"):
            rows.append(
                {
                    "variant": name,
                    "description": variant.get("description", ""),
                    "skipped": "no pretrained_image checkpoint configured",
                }
            )
            done += len(folds)
            continue
        fold_scores, stats = [], []
        for f in range(len(folds)):
            scores, st = _fold_scores(samples, folds, f, cfg, variant, out_dir, seed, keyword_ckpt)
            fold_scores.append(scores)
            stats.append(st)
            done += 1
            progress(done, jobs, f"{name} fold {f + 1}/{len(folds)}")
        row, per_variant[name] = _variant_result(samples, folds, fold_scores, stats, cfg, variant, out_dir, seed)
        rows.append(row)
    _accuracy_plot(out_dir, rows, bench.name, cfg.get("paper_accuracy"))
    K = len(samples.classes)
    meta = {
        "benchmark": bench.name,
        "benchmark_root": str(bench.root),
        "classes": samples.classes,
        "n_samples": len(samples),
        "n_patients": len(set(samples.subject.tolist())),
        "class_counts": {c: int(np.sum(samples.label == i)) for i, c in enumerate(samples.classes)},
        "majority_class_accuracy": float(np.bincount(samples.label, minlength=K).max() / len(samples)),
        "cv": {"scheme": CvConfig.from_dict(cfg.get("cv")).scheme, "k": len(folds)},
        "seed": seed,
        "config": cfg,
        "warnings": warnings,
        "paper_accuracy": cfg.get("paper_accuracy", {}),
        "keyword_encoder": _keyword_info(keyword_ckpt),
    }
    return write_results(out_dir, rows, per_variant, meta)


def patient_folds(samples: Samples, cv: CvConfig, seed: int) -> tuple[list, list[str]]:
    """The patient-level folds of ``cv`` (k capped at the number of patients) and warnings about them."""
    from sonotell.eval.cv import make_folds, missing_classes

    groups = samples.subject
    n_groups = len(set(groups.tolist()))
    k = cv.k
    if cv.scheme == "kfold" and k > n_groups:
        log.warning("only %d patients: %d-fold CV becomes %d-fold", n_groups, k, n_groups)
        k = n_groups
    folds = make_folds(groups, cv.scheme, k, seed)
    warnings = [
        f"fold {f}: class {samples.classes[c]!r} has no training sample"
        for f, (tr, _te) in enumerate(folds)
        for c in missing_classes(samples.label, tr, len(samples.classes))
    ]
    for w in warnings:
        log.warning(w)
    singles = sorted(u for u in set(groups.tolist()) if int(np.sum(groups == u)) == 1)
    if singles:
        warnings.append(f"{len(singles)} patient(s) with a single sample: {', '.join(singles[:5])}")
    return folds, warnings


def _keyword_checkpoint(cfg: dict, samples: Samples, out_dir: Path, seed: int, variants: list[dict]) -> Path | None:
    """The spoken-word voice encoder, trained once when a variant asks for it (``pretrained_voice: keyword``)."""
    if not any(v.get("pretrained_voice") == "keyword" for v in variants):
        return None
    kw = KeywordConfig.from_dict(cfg.get("keyword_pretrain"))
    words = sorted(set(samples.term.tolist()) | {str(w) for w in kw.extra_words})
    return pretrain_keyword_encoder(
        words,
        out_dir / "keyword_encoder.pt",
        model_config=_model_config(cfg),
        kw_cfg=cfg["keyword_pretrain"],
        seed=seed,
    )


def _fold_scores(
    samples: Samples,
    folds: list,
    f: int,
    cfg: dict,
    variant: dict,
    out_dir: Path,
    seed: int,
    keyword_ckpt: Path | None,
) -> tuple[np.ndarray, dict]:
    """Test scores and training stats of one (variant, fold): read back when written before, else trained."""
    name = variant["name"]
    tr, te = folds[f]
    fold_file = out_dir / "folds" / name / f"fold{f}.json"
    stamp = _variant_stamp(cfg, variant, seed)
    if fold_file.exists():
        saved = json.loads(fold_file.read_text())
        if saved.get("stamp", stamp) != stamp:
            raise ConfigError(
                f"{fold_file}: holds results of another config or seed; use a new --out folder or delete it"
            )
        return np.asarray(saved["scores"], np.float32), saved["stats"]
    model, scores, index, st = train_fold(
        samples, tr, te, cfg, variant, out_dir / "runs" / name / f"fold{f}", seed + f, keyword_ckpt
    )
    if not np.array_equal(index, te):
        raise RuntimeError(f"fold {f}: scores do not follow the test indices")
    if name == "image_voice" and f == 0 and model.uses_image:
        n = GradcamConfig.from_dict(cfg.get("gradcam")).n_examples
        gradcam_examples(model, samples, te, out_dir / "gradcam", n=n, seed=seed)
    write_json(fold_file, {"stamp": stamp, "test_idx": te, "scores": scores, "stats": st})
    return scores, st


def _variant_result(
    samples: Samples,
    folds: list,
    fold_scores: list,
    stats: list[dict],
    cfg: dict,
    variant: dict,
    out_dir: Path,
    seed: int,
) -> tuple[dict, dict]:
    """A variant's table row and its full record: scores pooled over folds, bootstrap over patients."""
    from sonotell.eval.bootstrap import bootstrap_by_group
    from sonotell.eval.cv import pool_fold_predictions
    from sonotell.eval.metrics import accuracy, classification_summary
    from sonotell.eval.plots import confusion_matrix_png

    name = variant["name"]
    scores = pool_fold_predictions(len(samples), folds, fold_scores)
    pred = scores.argmax(1)
    summary = classification_summary(samples.label, pred, samples.classes)
    boot = bootstrap_by_group(
        samples.label,
        pred,
        samples.subject,
        accuracy,
        n_subsets=int(cfg["bootstrap"]["n_subsets"]),
        subset_size=int(cfg["bootstrap"]["subset_size"]),
        seed=seed,
    )
    confusion_matrix_png(
        out_dir / "confusion" / f"{name}.png",
        summary["confusion_true_normalised"],
        samples.classes,
        title=f"{name} (rows: true class)",
    )
    throughput = {k: float(np.mean([s[k] for s in stats])) for k in ("train_samples_per_s", "inference_clips_per_s")}
    record = {
        "summary": summary,
        "bootstrap_accuracy": {k: boot[k] for k in ("mean", "std", "n_subsets", "subset_size", "replace", "n_groups")},
        "throughput": throughput,
        "fold_stats": stats,
    }
    row = {
        "variant": name,
        "description": variant.get("description", ""),
        "accuracy": summary["accuracy"],
        "precision": summary["precision"],
        "recall": summary["recall"],
        "f1": summary["f1"],
        "boot_mean": boot["mean"],
        "boot_std": boot["std"],
        **throughput,
    }
    return row, record


def _accuracy_plot(out_dir: Path, rows: list[dict], bench_name: str, reference: dict | None) -> None:
    from sonotell.eval.plots import bar_png

    done_rows = [r for r in rows if "accuracy" in r]
    if done_rows:
        bar_png(
            out_dir / "accuracy.png",
            [r["variant"] for r in done_rows],
            [r["accuracy"] for r in done_rows],
            [r["boot_std"] for r in done_rows],
            ylabel="accuracy (pooled; bars: bootstrap std)",
            title=f"voice_label on {bench_name}",
            reference=reference,
        )


def _variant_stamp(cfg: dict, variant: dict, seed: int) -> str:
    """What a fold's result depends on: a rerun with other settings must not reuse it."""
    keys = {k: cfg.get(k) for k in ("model", "data", "train", "cv")}
    if variant.get("pretrained_voice") == "keyword":
        keys["keyword_pretrain"] = cfg.get("keyword_pretrain")
    if variant.get("pretrained_image") == "config":
        keys["pretrained_image"] = cfg.get("pretrained_image")
    keys = {**keys, "variant": variant, "seed": seed}
    return hashlib.sha1(json.dumps(keys, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _keyword_info(path: Path | None) -> dict | None:
    if path is None:
        return None
    ck = load_weights_only(path)
    return {"path": str(path), "words": ck.get("words"), "held_out_voice_accuracy": ck.get("keyword_accuracy")}


def gradcam_examples(
    model, samples: Samples, test_idx: np.ndarray, out_dir: Path, n: int = 3, seed: int = 0
) -> list[Path]:
    """Grad-CAM of the image branch for matched and mismatched (other-class voice) pairs (paper Fig. 7).

    Writes one PNG overlay per pair and ``gradcam.json``: per image, the class predicted with
    each voice and the Pearson correlation of the two maps (1: the voice does not move the map).
    """
    from sonotell.eval.gradcam import GradCAM, save_overlay

    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    cam = GradCAM(model, model.image_branch.last_conv)
    paths, records = [], []
    for j in test_idx[:n]:
        others = np.flatnonzero(samples.label != samples.label[j])
        pairs = [("matched", int(j))] + ([("mismatched", int(rng.choice(others)))] if len(others) else [])
        frames = samples.frames[j]
        if model.in_frames < len(frames):  # a reduced-input model: evenly spaced frames of the 25
            frames = frames[np.linspace(0, len(frames) - 1, model.in_frames).round().astype(int)]
        frames_t = torch.from_numpy(frames.astype(np.float32) / 255.0)[None]
        record = {
            "scan_id": str(samples.scan_id[j]),
            "time_s": float(samples.time_s[j]),
            "image_class": samples.classes[samples.label[j]],
        }
        maps = []
        for kind, v in pairs:
            spec = torch.from_numpy(samples.spec[v].astype(np.float32))[None]
            with torch.no_grad():
                model.eval()
                pred = int(model(frames_t, spec).argmax(1))
            heat = cam(frames_t, spec, target=pred)[0]
            maps.append(heat.flatten().numpy())
            record[kind] = {
                "voice_class": samples.classes[samples.label[v]],
                "predicted": samples.classes[pred],
                "map": heat.numpy(),
            }
            title = (
                f"img {samples.classes[samples.label[j]]} | voice {samples.classes[samples.label[v]]} "
                f"-> {samples.classes[pred]}"
            )
            paths.append(
                save_overlay(
                    out_dir / f"{samples.scan_id[j]}_{samples.time_s[j]:.2f}s_{kind}.png",
                    samples.frames[j][len(samples.frames[j]) // 2],
                    heat,
                    title=title,
                )
            )
        if len(maps) == 2 and maps[0].std() > 0 and maps[1].std() > 0:
            record["map_correlation"] = float(np.corrcoef(maps[0], maps[1])[0, 1])
        records.append(record)
    if records:
        write_json(out_dir / "gradcam.json", records)
    return paths


# ---------------------------------------------------------------- single training run and Grad-CAM (CLI)


def _variant(cfg: dict, name: str) -> dict:
    for v in cfg["variants"]:
        if v["name"] == name:
            return v
    raise ConfigError(f"unknown voice_label variant {name!r}; known: {', '.join(v['name'] for v in cfg['variants'])}")


def train_voice_label(
    benchmark,
    out_dir,
    config: str | dict = "small",
    overrides: list[str] | None = None,
    seed: int = 0,
    variant: str = "image_voice",
    progress: Progress | None = None,
) -> Path:
    """Train one variant on every sample of a benchmark; returns ``model.pt`` (config beside it).

    The checkpoint records the model config and build arguments, so ``load_voice_label`` (and
    ``sonotell gradcam``) rebuild the same network. Multi-GPU: ``train.devices=N``,
    ``train.accelerator=gpu``, ``train.strategy=ddp``.
    """
    from sonotell.train import save_model_checkpoint

    progress = progress or silent
    out_dir = Path(out_dir)
    cfg = method_config(config, overrides)
    bench = resolve_benchmark(benchmark)
    samples = extract_samples(bench, cfg["data"], out_dir / "cache", progress)
    v = dict(_variant(cfg, variant))
    keyword_ckpt = _keyword_checkpoint(cfg, samples, out_dir, seed, [v])
    every = np.arange(len(samples))
    model, _, _, stats = train_fold(samples, every, every[:0], cfg, v, out_dir / "run", seed, keyword_ckpt, progress)
    kwargs = model_kwargs(cfg, v, len(samples.classes), keyword_ckpt)
    meta = {
        "model_config": _model_config(cfg),
        "model_kwargs": kwargs,
        "classes": samples.classes,
        "data": cfg["data"],
        "variant": v,
        "stats": stats,
        "benchmark": str(bench.root),
    }
    return save_model_checkpoint(out_dir / "model.pt", model, "voice_label", meta)


def load_voice_label(path: str | Path):
    """Rebuild and load a model written by ``train_voice_label``; returns ``(model, checkpoint config)``."""
    from sonotell.models import create_model
    from sonotell.train import load_model_checkpoint

    meta = load_model_checkpoint(path, expected="voice_label")["config"]
    model = create_model("voice_label", meta["model_config"], **meta["model_kwargs"])
    load_model_checkpoint(path, expected="voice_label", model=model)
    model.eval()
    return model, meta


def gradcam_from_checkpoint(
    checkpoint, benchmark, out_dir, n: int = 4, seed: int = 0, progress: Progress | None = None
) -> list[Path]:
    """Grad-CAM overlays (matched and mismatched voice) for ``n`` samples of a benchmark."""
    model, meta = load_voice_label(checkpoint)
    if not model.uses_image:
        raise ConfigError(f"{checkpoint}: a voice-only model has no image branch to explain")
    bench = resolve_benchmark(benchmark)
    samples = extract_samples(bench, meta["data"], Path(out_dir) / "cache", progress or silent)
    if samples.classes != meta["classes"]:
        raise InputError(benchmark, f"classes {samples.classes} differ from the checkpoint's {meta['classes']}")
    order = np.random.default_rng(seed).permutation(len(samples))[:n]
    return gradcam_examples(model, samples, order, Path(out_dir), n=n, seed=seed)

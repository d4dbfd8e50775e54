"""The network of a variant, its training on one fold, and the spoken-word voice encoder."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from sonotell.errors import ConfigError
from sonotell.methods.voice_label.config import KeywordConfig, SampleConfig, TrainConfig, model_config_name
from sonotell.methods.voice_label.samples import Samples, VoiceLabelDataset, bonmati_spectrogram
from sonotell.progress import Progress, silent

log = logging.getLogger(__name__)

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

    return create_model("voice_label", model_config_name(cfg), **model_kwargs(cfg, variant, num_classes, keyword_ckpt))


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


def keyword_checkpoint(cfg: dict, samples: Samples, out_dir: Path, seed: int, variants: list[dict]) -> Path | None:
    """The spoken-word voice encoder, trained once when a variant asks for it (``pretrained_voice: keyword``)."""
    if not any(v.get("pretrained_voice") == "keyword" for v in variants):
        return None
    kw = KeywordConfig.from_dict(cfg.get("keyword_pretrain"))
    words = sorted(set(samples.term.tolist()) | {str(w) for w in kw.extra_words})
    return pretrain_keyword_encoder(
        words,
        out_dir / "keyword_encoder.pt",
        model_config=model_config_name(cfg),
        kw_cfg=cfg["keyword_pretrain"],
        seed=seed,
    )

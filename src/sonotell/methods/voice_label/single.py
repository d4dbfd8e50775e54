"""One variant trained on every sample (``sonotell train voice_label``), reloaded, and explained."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from sonotell.data.format import resolve_benchmark
from sonotell.errors import ConfigError, InputError
from sonotell.methods.voice_label.config import method_config, model_config_name
from sonotell.methods.voice_label.report import gradcam_examples
from sonotell.methods.voice_label.samples import extract_samples
from sonotell.methods.voice_label.task import keyword_checkpoint, model_kwargs, train_fold
from sonotell.progress import Progress, silent

log = logging.getLogger(__name__)

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
    keyword_ckpt = keyword_checkpoint(cfg, samples, out_dir, seed, [v])
    every = np.arange(len(samples))
    model, _, _, stats = train_fold(samples, every, every[:0], cfg, v, out_dir / "run", seed, keyword_ckpt, progress)
    kwargs = model_kwargs(cfg, v, len(samples.classes), keyword_ckpt)
    meta = {
        "model_config": model_config_name(cfg),
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

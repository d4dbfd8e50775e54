"""The recipe's typed settings; their defaults are ``configs/methods/voice_label/paper.yaml``'s."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sonotell.config import Section, defaults_from, load_config, packaged_default

log = logging.getLogger(__name__)

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


def method_config(config: str | dict = "small", overrides: list[str] | None = None) -> dict:
    if isinstance(config, dict):
        from sonotell.config import apply_overrides

        return apply_overrides(config, overrides or [])
    return load_config("methods/voice_label", config, overrides)


def model_config_name(cfg: dict) -> str:
    """The ``configs/models/voice_label`` size a method config names (its ``model`` key)."""
    return str(cfg["model"]) if "model" in cfg else packaged_default(GROUP, "paper", "model")

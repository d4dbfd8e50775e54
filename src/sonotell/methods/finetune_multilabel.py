"""Multi-label fine-tuning (Dadoun et al. 2023): a feature extractor — from deep clustering, a
random init or any local checkpoint — with a multi-label head trained by BCE.

Also holds what the deep-clustering and FixMatch recipes share: the image encoder and the
multi-label network (the frames themselves: ``sonotell.data.frames``).

Example:
    >>> net = MultiLabelNet(build_encoder({"widths": [4, 8, 8, 8], "blocks": [1, 1, 1, 1]}), n_classes=3)
    >>> net(torch.zeros(2, 1, 32, 32))["multilabel"].shape
    torch.Size([2, 3])
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset, RandomSampler

from sonotell.config import Section, defaults_from
from sonotell.data.augment import STRONG, WEAK, build_augment
from sonotell.data.frames import FrameSet
from sonotell.errors import InputError
from sonotell.progress import Progress, silent
from sonotell.train import Task, fit

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# Frames with multi-label organ / finding labels


# ---------------------------------------------------------------------------------------------
# Networks


_default = defaults_from("methods/fixmatch", "small")


@dataclass(frozen=True)
class MultiLabelConfig(Section):
    """Multi-label fine-tuning and FixMatch; defaults from ``configs/methods/fixmatch/small.yaml`` (the base)."""

    SECTION = "semisup"
    steps: int = _default("steps", ge=1)
    steps_per_epoch: int = _default("steps_per_epoch", ge=1)
    batch_size: int = _default("batch_size", ge=1)
    unlabelled_ratio: int = _default("unlabelled_ratio", ge=1)  # mu
    threshold: float = _default("threshold", ge=0.0, le=1.0)  # tau
    unlabelled_weight: float = _default("unlabelled_weight", ge=0.0)  # lambda_u
    mask: str = _default("mask", choices=("class", "sample"))
    multilabel_weight: float = _default("multilabel_weight", ge=0.0)
    min_combination_count: int = _default("min_combination_count", ge=1)
    optimizer: dict = _default("optimizer")


def build_encoder(config: dict | None = None) -> nn.Module:
    """The shared image encoder (``sonotell.models.create_model``, default ``image_resnet``).

    Config keys: ``model`` (registered name), ``config`` (its ``small``/``paper`` YAML) and any
    of its keyword arguments as overrides (``widths``, ``blocks``). ``out_features`` is set.
    """
    from sonotell.models import create_model

    cfg = dict(config or {})
    name = cfg.pop("model", "image_resnet")
    config_name = cfg.pop("config", "small")
    net = create_model(name, config_name, **cfg)
    net.out_features = int(getattr(net, "out_dim", getattr(net, "out_features", 0)))
    if not net.out_features:
        raise InputError(None, f"encoder {name!r} does not say its feature size (out_dim)")
    return net


class MultiLabelNet(nn.Module):
    """Encoder + multi-label head (+ optional single-label head over label combinations)."""

    def __init__(self, encoder: nn.Module, n_classes: int, n_combinations: int = 0):
        super().__init__()
        self.encoder = encoder
        self.multilabel_head = nn.Linear(encoder.out_features, n_classes)
        self.combination_head = nn.Linear(encoder.out_features, n_combinations) if n_combinations else None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = self.encoder(x)
        out = {"features": feats, "multilabel": self.multilabel_head(feats)}
        if self.combination_head is not None:
            out["combination"] = self.combination_head(feats)
        return out


@torch.no_grad()
def predict_scores(model: nn.Module, images: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """Sigmoid multi-label scores (N, K) of (N, H, W) images, in eval mode."""
    model.eval()
    out = [
        torch.sigmoid(model(torch.from_numpy(images[i : i + batch_size])[:, None])["multilabel"])
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(out).numpy()


# ---------------------------------------------------------------------------------------------
# Training


class FrameDataset(Dataset):
    """Items ``{"image": (1, H, W), "labels": (K,), "combination": int}`` of a ``FrameSet`` subset."""

    def __init__(self, frames: FrameSet, indices, combination_ids: np.ndarray | None = None):
        self.frames, self.indices = frames, np.asarray(indices, int)
        self.combination_ids = combination_ids

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        j = int(self.indices[i])
        item = {
            "image": torch.from_numpy(self.frames.images[j])[None],
            "labels": torch.from_numpy(self.frames.labels[j]),
        }
        item["combination"] = int(self.combination_ids[i]) if self.combination_ids is not None else -1
        return item


def sampled_loader(dataset: Dataset, batch_size: int, n_batches: int, seed: int) -> DataLoader:
    """``n_batches`` batches drawn with replacement: a fixed number of steps however small the set."""
    g = torch.Generator().manual_seed(seed)
    sampler = RandomSampler(dataset, replacement=True, num_samples=batch_size * n_batches, generator=g)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=True)


class FinetuneTask(Task):
    """Supervised multi-label training: BCE on the weakly augmented labelled images."""

    def __init__(
        self,
        model: MultiLabelNet,
        optimizer: dict | None = None,
        recipe: str = "finetune_multilabel",
        config: dict | None = None,
        seed: int = 0,
    ):
        super().__init__(model, optimizer, recipe, config)
        self.weak = build_augment((config or {}).get("weak_augment"), WEAK)
        self.strong = build_augment((config or {}).get("strong_augment"), STRONG)
        self.aug_generator = torch.Generator().manual_seed(seed)

    def augment(self, x: torch.Tensor, strong: bool = False) -> torch.Tensor:
        if not self.training:
            return x
        return (self.strong if strong else self.weak)(x, self.aug_generator)

    def supervised(self, batch: dict) -> dict:
        out = self.model(self.augment(batch["image"]))
        loss = F.binary_cross_entropy_with_logits(out["multilabel"], batch["labels"])
        result = {"loss_supervised": loss}
        if "combination" in out:
            combos = batch["combination"]
            if (combos >= 0).any():
                result["loss_combination"] = F.cross_entropy(out["combination"], combos, ignore_index=-1)
                loss = loss + result["loss_combination"]
        result["loss"] = loss
        return result

    def step(self, batch) -> dict:
        if "labelled" in batch:
            batch = batch["labelled"]
        return self.supervised(batch)


def train_multilabel(
    task: FinetuneTask,
    frames: FrameSet,
    train_idx,
    *,
    config: dict,
    out_dir: str | Path,
    seed: int,
    unlabelled_idx=None,
    combination_ids: np.ndarray | None = None,
    progress: Progress = silent,
) -> Task:
    """Fit ``task`` for ``config['steps']`` steps; FixMatch tasks also get an unlabelled stream.

    Resumable: re-running with the same ``out_dir`` continues from its last checkpoint.
    """
    from lightning.pytorch.utilities import CombinedLoader

    typed = MultiLabelConfig.pick(config)
    per_epoch = typed.steps_per_epoch
    epochs = max(1, -(-typed.steps // per_epoch))
    bs = typed.batch_size
    loaders = {"labelled": sampled_loader(FrameDataset(frames, train_idx, combination_ids), bs, per_epoch, seed)}
    if unlabelled_idx is not None and len(unlabelled_idx):
        mu = typed.unlabelled_ratio
        loaders["unlabelled"] = sampled_loader(FrameDataset(frames, unlabelled_idx), bs * mu, per_epoch, seed + 1)
    fit(
        task,
        CombinedLoader(loaders, mode="max_size_cycle"),
        None,
        out_dir=out_dir,
        max_epochs=epochs,
        seed=seed,
        progress=progress,
    )
    return task


def encoder_state_from(path: str | Path) -> dict:
    """Encoder weights from a local checkpoint of any recipe (keys under ``encoder.``)."""
    from sonotell.train import load_model_checkpoint

    state = load_model_checkpoint(path)["state_dict"]
    for prefix in ("model.encoder.", "encoder."):
        sub = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if sub:
            return sub
    raise InputError(path, "checkpoint has no encoder weights (no 'encoder.' keys)")

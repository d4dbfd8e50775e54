"""The training tasks: PICA clustering with a cluster-size prior, and the multi-label / FixMatch network of a run."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sonotell.config import Section, apply_overrides, defaults_from, load_config
from sonotell.data.augment import STRONG, WEAK, build_augment
from sonotell.data.frames import FrameSet
from sonotell.errors import ConfigError
from sonotell.losses.dirichlet_prior import DirichletPriorLoss
from sonotell.losses.pica import NegativeEntropyLoss, PICALoss
from sonotell.methods import cluster_match
from sonotell.methods.deep_cluster.model import PRIORS, ClusterNet
from sonotell.methods.finetune_multilabel import FrameDataset, MultiLabelConfig, build_encoder, sampled_loader
from sonotell.progress import Progress, silent
from sonotell.train import Task, fit, save_model_checkpoint

log = logging.getLogger(__name__)


_default = defaults_from("methods/deep_cluster", "small")


@dataclass(frozen=True)
class ClusteringConfig(Section):
    """PICA / Dirichlet-prior clustering (section ``clustering``; defaults: ``deep_cluster/small.yaml``, the base)."""

    SECTION = "clustering"
    k: int | str = _default("clustering", "k")  # a number, or auto: the dev set's frequent label combinations
    min_combination_count: int = _default("clustering", "min_combination_count", ge=1)
    prior: str = _default("clustering", "prior")
    prior_weight: float = _default("clustering", "prior_weight", ge=0.0)  # lambda
    dirichlet_eps: float = _default("clustering", "dirichlet_eps", gt=0.0)
    epochs: int = _default("clustering", "epochs", ge=0)
    batch_size: int = _default("clustering", "batch_size", ge=1)
    optimizer: dict = _default("clustering", "optimizer")


def size_prior(config: dict) -> nn.Module:
    """The cluster-size term named by ``config['prior']``."""
    cfg = ClusteringConfig.pick(config)
    if cfg.prior == "dirichlet":
        return DirichletPriorLoss(eps=cfg.dirichlet_eps)
    if cfg.prior == "negative_entropy":
        return NegativeEntropyLoss()
    raise ConfigError(f"clustering prior must be one of {PRIORS}, got {cfg.prior!r}")


class DeepClusterTask(Task):
    """PICA with a choice of cluster-size term: ``L_CE(P, P') + lambda * size(P, P')``."""

    def __init__(self, model: ClusterNet, optimizer: dict | None = None, config: dict | None = None, seed: int = 0):
        cfg = dict(config or {})
        super().__init__(model, optimizer or cfg.get("optimizer"), recipe="deep_cluster", config=cfg)
        self.partition_loss = PICALoss()
        self.size_loss = size_prior(cfg)
        self.prior_weight = ClusteringConfig.pick(cfg).prior_weight
        self.weak = build_augment(cfg.get("weak_augment"), WEAK)
        self.strong = build_augment(cfg.get("strong_augment"), STRONG)
        self.aug_generator = torch.Generator().manual_seed(seed)

    def step(self, batch) -> dict:
        x = batch["image"]
        p = self.model(self.weak(x, self.aug_generator))
        p_aug = self.model(self.strong(x, self.aug_generator))
        l_ce = self.partition_loss(p, p_aug)
        l_size = 0.5 * (self.size_loss(p) + self.size_loss(p_aug))
        largest = torch.bincount(p.argmax(1), minlength=p.shape[1]).max().float() / len(p)
        return {
            "loss": l_ce + self.prior_weight * l_size,
            "loss_ce": l_ce,
            "loss_size": l_size,
            "largest_cluster": largest,
        }


def train_clustering(
    frames: FrameSet, indices, k: int, config: dict, *, out_dir: str | Path, seed: int, progress: Progress = silent
) -> ClusterNet:
    """Fit PICA / Dirichlet-prior clustering on ``frames.images[indices]`` (labels unused); resumable."""
    indices = np.asarray(indices, int)
    if k > len(indices):
        log.warning("K=%d clusters > %d images to cluster; using K=%d", k, len(indices), len(indices))
        k = len(indices)
    torch.manual_seed(seed)
    model = ClusterNet(build_encoder(config.get("encoder")), k)
    cfg = dict(config["clustering"])
    task = DeepClusterTask(model, config=cfg, seed=seed)
    typed = ClusteringConfig.pick(cfg)
    bs = min(typed.batch_size, len(indices))
    loader = sampled_loader(FrameDataset(frames, indices), bs, max(1, len(indices) // bs), seed)
    fit(task, loader, None, out_dir=out_dir, max_epochs=typed.epochs, seed=seed, progress=progress)
    save_model_checkpoint(Path(out_dir) / "cluster_model.pt", model, "deep_cluster", {**config, "k": k})
    return model


def semisup_model(
    method: str,
    labelled_labels: np.ndarray,
    encoder_cfg: dict | None,
    n_classes: int,
    semi_cfg: dict,
    seed: int,
    init_path: str | Path | None = None,
    init_name: str | None = None,
):
    """The network and task of one multi-label run (supervised / FixMatch one-head / two-head).

    Two-head's label combinations come from the labelled frames' labels; ``init_path`` is an encoder
    checkpoint (a mismatching encoder is named, with ``init_name``). Returns
    ``(net, task, combinations, combination_ids)``, the last two None unless two-head.
    """
    from sonotell.methods.finetune_multilabel import FinetuneTask, MultiLabelNet, encoder_state_from
    from sonotell.methods.fixmatch import FixMatchTask
    from sonotell.train.checkpoint import load_state_checked

    combos = combo_ids = None
    if method == "two_head":
        min_count = MultiLabelConfig.pick(semi_cfg).min_combination_count
        combos = cluster_match.frequent_combinations(labelled_labels, min_count)
        combo_ids = cluster_match.combination_index(labelled_labels, combos)
    net = MultiLabelNet(build_encoder(encoder_cfg), n_classes, 0 if combos is None else len(combos))
    if init_path is not None:
        load_state_checked(net.encoder, encoder_state_from(init_path), init_path, init_name or str(init_path))
    optimizer = semi_cfg.get("optimizer")
    if method == "supervised":
        task = FinetuneTask(net, optimizer, config=semi_cfg, seed=seed)
    else:
        task = FixMatchTask(
            net, method, None if combos is None else torch.from_numpy(combos), optimizer, semi_cfg, seed
        )
    return net, task, combos, combo_ids


def semisup_config(cfg: dict) -> dict:
    """The fine-tuning / FixMatch config of a deep_cluster config: ``fixmatch/<semisup._config>`` with the
    other ``semisup`` keys over it (each must be a fixmatch setting)."""
    section = dict(cfg["semisup"])
    base = load_config("methods/fixmatch", section.pop("_config"))
    # wrapped so that a typo is reported with its full key (semisup.step -> 'semisup.steps')
    wrapped = apply_overrides({"semisup": base}, [f"semisup.{k}={_yaml_value(v)}" for k, v in section.items()])
    return wrapped["semisup"]


def _yaml_value(v) -> str:
    import yaml

    return yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("...").strip()

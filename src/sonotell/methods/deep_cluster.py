"""Deep clustering for organ classification in ultrasound (Dadoun et al. 2023), PICA-style.

The recipe: a ResNet encoder with a softmax cluster head sees two augmentations of each
frame (weak and strong ultrasound augmentations); the cluster prediction matrices P, P'
are trained with PICA's partition-uncertainty cross-entropy ``L_CE`` plus a cluster-size
term, PICA's negative entropy ``L_NE`` or the paper's symmetric Dirichlet prior ``L_SD``
(alpha = 1 + eps):

    loss = L_CE + lambda * L_SD          (lambda = 2)

Clusters are named by a small labelled dev set (``cluster_match``, Algorithm 1); the
clustering encoder initialises multi-label fine-tuning and FixMatch (``finetune_multilabel``,
``fixmatch``). ``run_experiment`` produces the paper's tables on a frame folder.

Example:
    >>> from sonotell.methods.finetune_multilabel import build_encoder
    >>> net = ClusterNet(build_encoder({"widths": [4, 8, 8, 8], "blocks": [1, 1, 1, 1]}), k=3)
    >>> task = DeepClusterTask(net, config={"prior": "dirichlet", "prior_weight": 2.0})
    >>> sorted(task.step({"image": torch.rand(4, 1, 32, 32)}))
    ['largest_cluster', 'loss', 'loss_ce', 'loss_size']
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sonotell.config import Section, apply_overrides, load_config, setting
from sonotell.data.augment import STRONG, WEAK, build_augment
from sonotell.data.frames import FrameSet, load_frames
from sonotell.errors import ConfigError
from sonotell.eval.multilabel import weighted_average_precision
from sonotell.files import write_json, write_text
from sonotell.losses.dirichlet_prior import DirichletPriorLoss
from sonotell.losses.pica import NegativeEntropyLoss, PICALoss
from sonotell.methods import cluster_match
from sonotell.methods.finetune_multilabel import FrameDataset, MultiLabelConfig, build_encoder, sampled_loader
from sonotell.progress import Progress, silent
from sonotell.safeload import load_weights_only
from sonotell.train import Task, fit, save_model_checkpoint

log = logging.getLogger(__name__)

PRIORS = ("dirichlet", "negative_entropy")
DEGENERATE_FRACTION = 0.9


class ClusterNet(nn.Module):
    """Encoder + linear cluster head; ``forward`` returns the (N, K) cluster probabilities."""

    def __init__(self, encoder: nn.Module, k: int):
        super().__init__()
        if k < 2:
            raise ValueError(f"clustering needs K >= 2 clusters, got {k}")
        self.encoder = encoder
        self.cluster_head = nn.Linear(encoder.out_features, k)
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.cluster_head(self.encoder(x)), dim=1)


def _default(*path: str, **checks):
    return setting("methods/deep_cluster", "small", *path, **checks)


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


@torch.no_grad()
def assign_clusters(model: ClusterNet, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Hard cluster id of each (H, W) image; warns when one cluster takes nearly everything."""
    model.eval()
    ids = torch.cat(
        [
            model(torch.from_numpy(images[i : i + batch_size])[:, None]).argmax(1)
            for i in range(0, len(images), batch_size)
        ]
    ).numpy()
    counts = np.bincount(ids, minlength=model.k)
    if counts.max() >= DEGENERATE_FRACTION * len(ids) and len(ids) > 1:
        log.warning(
            "degenerate clustering: cluster %d holds %d of %d images", int(counts.argmax()), int(counts.max()), len(ids)
        )
    return ids


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


# ---------------------------------------------------------------------------------------------
# Experiment: the paper's tables


@dataclass(frozen=True)
class Split:
    test: np.ndarray
    val: np.ndarray
    train: np.ndarray  # labelled training frames
    pool: np.ndarray  # unlabelled frames outside the val/test subjects
    test_groups: tuple
    val_groups: tuple


def subject_splits(frames: FrameSet, n_folds: int, seed: int) -> list[Split]:
    """Rotating subject-level splits: test = block i, validation = block i+1, train = the rest.

    Blocks are whole subjects (``grouped_kfold``); unlabelled frames of val/test subjects are
    never used. Train / val / test subjects are asserted disjoint.
    """
    from sonotell.eval.cv import assert_disjoint_groups, make_folds

    lab = np.flatnonzero(frames.labelled)
    groups = frames.groups[lab]
    n_groups = len(set(groups.tolist()))
    if n_groups < 3:
        raise ConfigError(f"need labelled frames from >= 3 subjects (train/val/test), got {n_groups}")
    n_folds = min(n_folds, n_groups)
    blocks = [lab[test] for _, test in make_folds(groups, "kfold", n_folds, seed)]
    out = []
    for i in range(n_folds):
        test, val = blocks[i], blocks[(i + 1) % n_folds]
        train = np.concatenate([b for j, b in enumerate(blocks) if j not in (i, (i + 1) % n_folds)])
        held = set(frames.groups[test].tolist()) | set(frames.groups[val].tolist())
        pool = np.flatnonzero(~frames.labelled & ~np.isin(frames.groups, list(held)))
        for a, b in ((train, test), (train, val), (val, test), (pool, test), (pool, val)):
            assert_disjoint_groups(frames.groups, a, b)
        out.append(
            Split(
                test,
                val,
                train,
                pool,
                tuple(sorted(set(frames.groups[test].tolist()))),
                tuple(sorted(set(frames.groups[val].tolist()))),
            )
        )
    return out


def labelled_subset(train: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A seeded ``fraction`` of the labelled training frames (at least 2)."""
    if not 0 < fraction <= 1:
        raise ConfigError(f"labelled fraction must be in (0, 1], got {fraction}")
    n = max(2, int(round(fraction * len(train))))
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(train, size=min(n, len(train)), replace=False))


def _cluster_scores(model: ClusterNet, frames: FrameSet, dev: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    soft = cluster_match.match_clusters(assign_clusters(model, frames.images[dev]), frames.labels[dev], model.k)
    return [cluster_match.predict_from_clusters(assign_clusters(model, frames.images[o]), soft) for o in others]


def _evaluate(frames: FrameSet, val_scores, test_scores, split: Split) -> dict:
    from sonotell.eval.multilabel import evaluate_multilabel

    rep = evaluate_multilabel(
        frames.labels[split.val], val_scores, frames.labels[split.test], test_scores, frames.classes
    )
    return {
        "f1": rep["weighted"]["f1"],
        "precision": rep["weighted"]["precision"],
        "recall": rep["weighted"]["recall"],
        "ap": weighted_average_precision(frames.labels[split.test], test_scores),
        "per_class_f1": {c: v["f1"] for c, v in rep["per_class"].items()},
    }


def _cached(path: Path, compute, backfill=None) -> dict:
    """Resumability: one small JSON per finished run.

    ``backfill(result) -> dict | None`` adds metrics newer than a cached result (from the run's
    saved checkpoint) without retraining.
    """
    import json

    if path.exists():
        result = json.loads(path.read_text())
        if backfill is not None and "ap" not in result and "skipped" not in result:
            extra = backfill(result)
            if extra:
                result.update(extra)
                write_json(path, result)
        return result
    result = compute()
    write_json(path, result)
    return result


def _ap_from_multilabel_checkpoint(frames: FrameSet, split: Split, run_dir: Path, cfg: dict) -> dict | None:
    from sonotell.methods.finetune_multilabel import MultiLabelNet, predict_scores

    ckpt = run_dir / "checkpoints" / "last.ckpt"
    if not ckpt.exists():
        return None
    state = load_weights_only(ckpt)["state_dict"]
    state = {k[len("model.") :]: v for k, v in state.items() if k.startswith("model.")}
    n_combos = state["combination_head.weight"].shape[0] if "combination_head.weight" in state else 0
    net = MultiLabelNet(build_encoder(cfg.get("encoder")), len(frames.classes), n_combos)
    net.load_state_dict(state)
    return {"ap": weighted_average_precision(frames.labels[split.test], predict_scores(net, frames.images[split.test]))}


def _ap_from_cluster_checkpoint(frames: FrameSet, split: Split, run_dir: Path, cfg: dict) -> dict | None:
    from sonotell.train import load_model_checkpoint

    path = run_dir / "cluster_model.pt"
    if not path.exists():
        return None
    ckpt = load_model_checkpoint(path)
    model = ClusterNet(build_encoder(cfg.get("encoder")), int(ckpt["config"]["k"]))
    model.load_state_dict(ckpt["state_dict"])
    (scores,) = _cluster_scores(model, frames, split.train, split.test)
    return {"ap": weighted_average_precision(frames.labels[split.test], scores)}


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


def train_and_evaluate(
    frames: FrameSet,
    split: Split,
    labelled: np.ndarray,
    pool: np.ndarray,
    init: str,
    method: str,
    cfg: dict,
    semi_cfg: dict,
    run_dir: Path,
    seed: int,
    init_ckpt: Path | None = None,
    train_labels: np.ndarray | None = None,
) -> dict:
    """Train one multi-label model (supervised / FixMatch one-head / two-head) and score it on the split.

    ``train_labels`` (N, K) replaces the training labels (e.g. weak labels from speech); the
    validation and test labels are always ``frames.labels``.
    """
    from dataclasses import replace

    from sonotell.methods.finetune_multilabel import (
        predict_scores,
        train_multilabel,
    )
    from sonotell.seeding import seed_everything

    seed_everything(seed)
    torch.manual_seed(seed)
    train_frames = frames if train_labels is None else replace(frames, labels=np.asarray(train_labels, np.float32))
    path = None if init == "random" else (init_ckpt if init == "cluster" else init)
    net, task, combos, combo_ids = semisup_model(
        method, train_frames.labels[labelled], cfg.get("encoder"), len(frames.classes), semi_cfg, seed, path, init
    )
    if combos is not None and len(combos) < 2:
        log.warning("%s: one label combination only; the two-head run is skipped", run_dir)
        return {"skipped": "one label combination"}
    train_multilabel(
        task,
        train_frames,
        labelled,
        config=semi_cfg,
        out_dir=run_dir,
        seed=seed,
        unlabelled_idx=None if method == "supervised" else pool,
        combination_ids=combo_ids,
    )
    return {
        **_evaluate(
            frames, predict_scores(net, frames.images[split.val]), predict_scores(net, frames.images[split.test]), split
        ),
        "n_labelled": int(len(labelled)),
    }


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


def cluster_frames(
    frames,
    out_dir,
    k: int = 0,
    prior: str | None = None,
    config: str | dict = "small",
    overrides: list[str] | None = None,
    seed: int = 0,
    progress: Progress = silent,
) -> dict:
    """Cluster a frame folder with PICA + a cluster-size prior and name clusters from its labelled frames.

    ``k`` <= 0: the number of frequent label combinations of the labelled frames. Writes
    ``assignments.csv``, ``clusters.json`` and ``cluster_model.pt`` under ``out_dir``; returns
    the ``clusters.json`` content.
    """
    import pandas as pd

    from sonotell.files import atomic_path

    overrides = [*(overrides or []), *([f"clustering.prior={prior}"] if prior else [])]
    cfg = (
        apply_overrides(config, overrides)
        if isinstance(config, dict)
        else load_config("methods/deep_cluster", config, overrides)
    )
    prior = cfg["clustering"]["prior"]
    out_dir = Path(out_dir)
    fs = load_frames(frames, tuple(cfg["image_size"]), progress, **_loader_kwargs(frames, cfg))
    lab = np.flatnonzero(fs.labelled)
    if k <= 0:
        if not len(lab):
            raise ConfigError("no labelled frames to choose K from; give k")
        k = cluster_match.choose_k(fs.labels[lab], int(cfg["clustering"]["min_combination_count"]), len(fs.images))
    model = train_clustering(fs, np.arange(len(fs.images)), k, cfg, out_dir=out_dir, seed=seed, progress=progress)
    ids = assign_clusters(model, fs.images)
    table = pd.DataFrame({"name": fs.names, "subject_id": fs.groups, "cluster": ids})
    with atomic_path(out_dir / "assignments.csv") as tmp:
        table.to_csv(tmp, index=False)
    rows = [{"cluster": c, "frames": int((ids == c).sum())} for c in range(model.k)]
    if len(lab):
        soft = cluster_match.match_clusters(ids[lab], fs.labels[lab], model.k)
        for r in rows:
            r.update({name: float(v) for name, v in zip(fs.classes, soft[r["cluster"]])})
    result = {"k": model.k, "prior": prior, "classes": fs.classes, "clusters": rows}
    write_json(out_dir / "clusters.json", result)
    return result


SEMISUP_METHODS = ("supervised", "one_head", "two_head")


def semisup_frames(
    frames,
    out_dir,
    method: str = "two_head",
    init: str = "random",
    fraction: float = 1.0,
    fold: int = 0,
    config: str | dict = "small",
    overrides: list[str] | None = None,
    seed: int = 0,
    progress: Progress = silent,
) -> dict:
    """Multi-label fine-tuning or FixMatch on one subject-level split of a frame folder; per-class P/R/F1 on test.

    ``config`` is a deep_cluster config (its ``semisup`` section names the fixmatch config and
    overrides it; ``overrides`` apply to the deep_cluster config, e.g. ``semisup.steps=10``).
    Writes ``report.json`` under ``out_dir`` and returns it.
    """
    from sonotell.eval.multilabel import evaluate_multilabel
    from sonotell.methods.finetune_multilabel import (
        predict_scores,
        train_multilabel,
    )

    if method not in SEMISUP_METHODS:
        raise ConfigError(f"method {method!r}: choose {', '.join(SEMISUP_METHODS)}")
    dc_cfg = (
        apply_overrides(config, overrides or [])
        if isinstance(config, dict)
        else load_config("methods/deep_cluster", config, overrides)
    )
    cfg = semisup_config(dc_cfg)
    out_dir = Path(out_dir)
    fs = load_frames(frames, tuple(dc_cfg["image_size"]), progress, **_loader_kwargs(frames, dc_cfg))
    splits = subject_splits(fs, int(dc_cfg["experiment"]["folds"]), seed)
    if not 0 <= fold < len(splits):
        raise ConfigError(f"fold {fold}: {len(splits)} folds available (0..{len(splits) - 1})")
    split = splits[fold]
    labelled = labelled_subset(split.train, fraction, seed)
    pool = np.concatenate([split.pool, np.setdiff1d(split.train, labelled)])
    net, task, _, combo_ids = semisup_model(
        method, fs.labels[labelled], dc_cfg["encoder"], len(fs.classes), cfg, seed, None if init == "random" else init
    )
    train_multilabel(
        task,
        fs,
        labelled,
        config=cfg,
        out_dir=out_dir,
        seed=seed,
        unlabelled_idx=None if method == "supervised" else pool,
        combination_ids=combo_ids,
        progress=progress,
    )
    rep = evaluate_multilabel(
        fs.labels[split.val],
        predict_scores(net, fs.images[split.val]),
        fs.labels[split.test],
        predict_scores(net, fs.images[split.test]),
        fs.classes,
    )
    rep.update(
        {
            "method": method,
            "init": init,
            "fraction": fraction,
            "fold": fold,
            "test_subjects": split.test_groups,
            "n_labelled": int(len(labelled)),
            "n_unlabelled": int(len(pool)),
            "seed": seed,
            "settings": cfg,
        }
    )
    write_json(out_dir / "report.json", rep)
    return rep


def _loader_kwargs(frames, cfg: dict) -> dict:
    return {"min_area_fraction": float(cfg["data"]["min_area_fraction"])} if (Path(frames) / "images").is_dir() else {}


def run_experiment(
    benchmark, out_dir, config="small", overrides=None, seed: int = 0, progress: Progress = silent
) -> Path:
    """Clustering alone (prior x seeds, lambda sweep) and init x method x labelled fraction tables.

    ``benchmark`` is a frame folder (``frameset.npz`` or the abdominal ``images/`` +
    ``annotations/`` layout). Writes ``results.json``, ``report.md`` and ``f1_vs_fraction.png``
    under ``out_dir``; finished runs are cached under ``out_dir/runs`` (re-run to resume).
    """
    from sonotell.seeding import seed_everything

    cfg = config if isinstance(config, dict) else load_config("methods/deep_cluster", config, overrides)
    semi_cfg = semisup_config(cfg)
    exp = cfg["experiment"]
    out_dir = Path(out_dir)
    frames = (
        load_frames(benchmark, tuple(cfg["image_size"]), min_area_fraction=float(cfg["data"]["min_area_fraction"]))
        if not isinstance(benchmark, FrameSet)
        else benchmark
    )
    splits = subject_splits(frames, int(exp["folds"]), seed)[: exp.get("max_folds") or None]
    seeds = [int(s) for s in exp["seeds"]]
    n_runs = (
        len(splits)
        * len(seeds)
        * (len(exp["priors"]) + len(exp["fractions"]) * len(exp["inits"]) * len(exp["methods"]))
    )
    n_runs += len(splits) * min(len(seeds), int(exp["lambda_seeds"])) * len(exp["lambdas"])
    done = 0
    rows: list[dict] = []

    def tick(msg: str) -> None:
        nonlocal done
        done += 1
        progress(done, n_runs, msg)

    for f, split in enumerate(splits):
        k = cfg["clustering"]["k"]
        k = (
            cluster_match.choose_k(
                frames.labels[split.train],
                int(cfg["clustering"]["min_combination_count"]),
                len(split.train) + len(split.pool),
            )
            if k == "auto"
            else int(k)
        )
        unsup = np.concatenate([split.train, split.pool])
        for s in seeds:
            # the loop's values are bound as defaults: each run sees its own fold and seed
            def clustering_run(prior: str, lam: float, table: str, f=f, s=s, split=split, unsup=unsup, k=k) -> dict:
                key = f"fold{f}/seed{s}/cluster_{prior}_lam{lam:g}"
                run_cfg = {**cfg, "clustering": {**cfg["clustering"], "prior": prior, "prior_weight": lam}}

                def compute() -> dict:
                    seed_everything(s)
                    model = train_clustering(frames, unsup, k, run_cfg, out_dir=out_dir / "runs" / key, seed=s)
                    val_scores, test_scores = _cluster_scores(model, frames, split.train, split.val, split.test)
                    sizes = np.bincount(assign_clusters(model, frames.images[unsup]), minlength=model.k)
                    return {
                        **_evaluate(frames, val_scores, test_scores, split),
                        "k": int(model.k),
                        "non_empty_clusters": int((sizes > 0).sum()),
                    }

                res = _cached(
                    out_dir / "runs" / key / "result.json",
                    compute,
                    lambda _: _ap_from_cluster_checkpoint(frames, split, out_dir / "runs" / key, run_cfg),
                )
                tick(key)
                return {"table": table, "fold": f, "seed": s, "prior": prior, "lambda": lam, **res}

            for prior in exp["priors"]:
                rows.append(clustering_run(prior, float(cfg["clustering"]["prior_weight"]), "clustering"))
            if seeds.index(s) < int(exp["lambda_seeds"]):
                for lam in exp["lambdas"]:
                    rows.append(clustering_run("dirichlet", float(lam), "lambda"))
            init_ckpt = (
                out_dir
                / "runs"
                / f"fold{f}/seed{s}/cluster_dirichlet_lam{float(cfg['clustering']['prior_weight']):g}"
                / "cluster_model.pt"
            )

            for fraction in exp["fractions"]:
                if s == seeds[0]:
                    # reference: call every class present (what per-class thresholds fall back to)
                    ones = np.ones((len(split.test), len(frames.classes)))
                    rows.append(
                        {
                            "table": "semisup",
                            "fold": f,
                            "seed": None,
                            "fraction": float(fraction),
                            "init": "-",
                            "method": "all_positive",
                            **_evaluate(frames, np.ones((len(split.val), len(frames.classes))), ones, split),
                        }
                    )
                labelled = labelled_subset(split.train, float(fraction), s)
                pool = np.concatenate([split.pool, np.setdiff1d(split.train, labelled)])
                for init in exp["inits"]:
                    for method in exp["methods"]:
                        key = f"fold{f}/seed{s}/frac{fraction:g}/{init}_{method}"
                        run_dir = out_dir / "runs" / key
                        res = _cached(
                            run_dir / "result.json",
                            partial(
                                train_and_evaluate,
                                frames,
                                split,
                                labelled,
                                pool,
                                init,
                                method,
                                cfg,
                                semi_cfg,
                                run_dir,
                                s,
                                init_ckpt,
                            ),
                            lambda _, split=split, run_dir=run_dir: _ap_from_multilabel_checkpoint(
                                frames, split, run_dir, cfg
                            ),
                        )
                        tick(key)
                        rows.append(
                            {
                                "table": "semisup",
                                "fold": f,
                                "seed": s,
                                "fraction": float(fraction),
                                "init": init,
                                "method": method,
                                **res,
                            }
                        )
    return write_report(rows, frames, splits, cfg, out_dir)


def _mean_std(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, float)
    return (float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0) if len(a) else (float("nan"), float("nan"))


def summarise(rows: list[dict]) -> dict:
    """Mean / std (over folds x seeds) and best-seed F1 for each table cell."""
    out: dict = {"clustering": [], "lambda": [], "semisup": []}
    for prior in sorted({r["prior"] for r in rows if r["table"] == "clustering"}):
        f1 = [r["f1"] for r in rows if r["table"] == "clustering" and r["prior"] == prior]
        by_seed = {}
        for r in rows:
            if r["table"] == "clustering" and r["prior"] == prior:
                by_seed.setdefault(r["seed"], []).append(r["f1"])
        m, sd = _mean_std(f1)
        ap = [r.get("ap") for r in rows if r["table"] == "clustering" and r["prior"] == prior]
        out["clustering"].append(
            {
                "prior": prior,
                "f1_mean": m,
                "f1_std": sd,
                "f1_best_seed": max(np.mean(v) for v in by_seed.values()),
                "ap_mean": _mean_std(ap)[0] if None not in ap else None,
                "n_runs": len(f1),
            }
        )
    for lam in sorted({r["lambda"] for r in rows if r["table"] == "lambda"}):
        f1 = [r["f1"] for r in rows if r["table"] == "lambda" and r["lambda"] == lam]
        m, sd = _mean_std(f1)
        ap = [r.get("ap") for r in rows if r["table"] == "lambda" and r["lambda"] == lam]
        out["lambda"].append(
            {
                "lambda": lam,
                "f1_mean": m,
                "f1_std": sd,
                "ap_mean": _mean_std(ap)[0] if None not in ap else None,
                "n_runs": len(f1),
            }
        )
    cells = sorted({(r["fraction"], r["init"], r["method"]) for r in rows if r["table"] == "semisup"})
    for fraction, init, method in cells:
        cell = [
            r
            for r in rows
            if r["table"] == "semisup"
            and (r["fraction"], r["init"], r["method"]) == (fraction, init, method)
            and "f1" in r
        ]
        m, sd = _mean_std([r["f1"] for r in cell])
        ap = [r["ap"] for r in cell if r.get("ap") is not None]
        out["semisup"].append(
            {
                "fraction": fraction,
                "init": init,
                "method": method,
                "f1_mean": m,
                "f1_std": sd,
                "ap_mean": _mean_std(ap)[0] if len(ap) == len(cell) else None,
                "n_runs": len(cell),
            }
        )
    return out


def paired_clustering(rows: list[dict], seed: int = 0) -> dict:
    """Dirichlet vs negative-entropy prior, and each vs "every label present", paired by (fold, seed) on F1."""
    from sonotell.eval.paired import paired_difference

    runs = {
        (r["prior"], r["fold"], r["seed"]): r["f1"]
        for r in rows
        if r.get("table") == "clustering" and r.get("f1") is not None
    }
    every = {r["fold"]: r["f1"] for r in rows if r.get("method") == "all_positive" and r.get("f1") is not None}
    out = {}
    keys = sorted({(f, s) for (_, f, s) in runs}, key=str)
    if all(("dirichlet", f, s) in runs and ("negative_entropy", f, s) in runs for f, s in keys) and len(keys) >= 2:
        out[("dirichlet", "negative_entropy")] = paired_difference(
            [runs["dirichlet", f, s] for f, s in keys], [runs["negative_entropy", f, s] for f, s in keys], seed=seed
        )
    for prior in ("dirichlet", "negative_entropy"):
        ks = [(f, s) for f, s in keys if (prior, f, s) in runs and f in every]
        if len(ks) >= 2:
            out[(prior, "every label present")] = paired_difference(
                [runs[prior, f, s] for f, s in ks], [every[f] for f, s in ks], seed=seed
            )
    return out


def write_report(rows: list[dict], frames: FrameSet, splits: list[Split], cfg: dict, out_dir: Path) -> Path:
    """``results.json`` (every run + summary), ``report.md`` and the F1-vs-fraction plot."""
    summary = summarise(rows)
    split_info = [
        {
            "test": s.test_groups,
            "val": s.val_groups,
            "n_train": len(s.train),
            "n_pool": len(s.pool),
            "n_val": len(s.val),
            "n_test": len(s.test),
        }
        for s in splits
    ]
    write_json(
        out_dir / "results.json",
        {"classes": frames.classes, "splits": split_info, "config": cfg, "summary": summary, "runs": rows},
    )
    lines = [
        "# Deep clustering and multi-label semi-supervised learning",
        "",
        f"{int(frames.labelled.sum())} labelled / {len(frames.images)} frames, classes: {', '.join(frames.classes)}; "
        f"{len(splits)} subject-level folds; weighted F1 on test with per-class thresholds from validation.",
        "",
        "## Clustering alone (Algorithm 1 labels from the training dev set)",
        "",
        "F1: weighted, thresholds from validation. AP: support-weighted average precision on test (threshold-free).",
        "",
        "| prior | F1 mean | F1 std | best seed | AP mean | runs |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['prior']} | {r['f1_mean']:.3f} | {r['f1_std']:.3f} | {r['f1_best_seed']:.3f} "
        f"| {_fmt(r.get('ap_mean'))} | {r['n_runs']} |"
        for r in summary["clustering"]
    ]
    lines += [
        "",
        "## Dirichlet prior weight lambda",
        "",
        "| lambda | F1 mean | F1 std | AP mean | runs |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['lambda']:g} | {r['f1_mean']:.3f} | {r['f1_std']:.3f} | {_fmt(r.get('ap_mean'))} | {r['n_runs']} |"
        for r in summary["lambda"]
    ]
    lines += [
        "",
        "## Init x method x labelled fraction",
        "",
        "| fraction | init | method | F1 mean | F1 std | AP mean | runs |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['fraction']:g} | {r['init']} | {r['method']} | {r['f1_mean']:.3f} | {r['f1_std']:.3f} "
        f"| {_fmt(r.get('ap_mean'))} | {r['n_runs']} |"
        for r in summary["semisup"]
    ]
    paired = paired_clustering(rows)
    if paired:
        from sonotell.eval.paired import describe

        lines += [
            "",
            "## Paired comparisons (same folds x seeds; 95 % bootstrap interval of the mean F1 difference)",
            "",
            "| A | B | F1 difference A - B | pairs |",
            "|---|---|---|---|",
        ]
        lines += [f"| {a} | {b} | {describe(r)} | {r['n']} |" for (a, b), r in paired.items()]
    write_text(out_dir / "report.md", "\n".join(lines) + "\n")
    write_json(out_dir / "paired.json", [{"a": a, "b": b, **r} for (a, b), r in paired.items()])
    if summary["semisup"]:
        _plot_f1_vs_fraction(summary["semisup"], out_dir / "f1_vs_fraction.png")
    return out_dir / "report.md"


def _fmt(v) -> str:
    return "" if v is None else f"{v:.3f}"


def _plot_f1_vs_fraction(cells: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sonotell.files import atomic_path

    fig, ax = plt.subplots(figsize=(6, 4))
    for init, method in sorted({(c["init"], c["method"]) for c in cells}):
        pts = sorted(
            (c["fraction"], c["f1_mean"], c["f1_std"]) for c in cells if (c["init"], c["method"]) == (init, method)
        )
        x, y, e = (np.array(v) for v in zip(*pts))
        label = method if init == "-" else f"{init} init, {method}"
        ax.errorbar(
            100 * x,
            y,
            yerr=e,
            marker="o",
            capsize=3,
            linestyle=":" if init == "-" else "-" if init == "cluster" else "--",
            label=label,
        )
    ax.set_xlabel("labelled fraction (%)")
    ax.set_ylabel("weighted F1 (test)")
    ax.set_xscale("log")
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def run_speech_labels(
    frames: FrameSet,
    out_dir,
    config="small",
    overrides=None,
    seed: int = 0,
    progress: Progress = silent,
    methods: tuple[str, ...] = ("supervised", "two_head"),
) -> Path:
    """Speech-labelled frames as the labelled set: how close do they get to ground-truth labels?

    ``frames.weak_labels`` holds what was said about each labelled frame (from the speech
    pipeline, see ``load_benchmark_frames``). Reports (1) the speech labels' per-class
    precision / recall / F1 against the mask ground truth and (2) the test F1 of models trained
    on speech labels vs. on ground-truth labels (same subjects, same seeds; test labels are
    always ground truth). Writes ``speech_labels.json`` and ``speech_labels.md``.
    """
    from sonotell.eval.multilabel import multilabel_report

    if frames.weak_labels is None:
        raise ConfigError("this frame set has no speech (weak) labels; load it with load_benchmark_frames")
    cfg = config if isinstance(config, dict) else load_config("methods/deep_cluster", config, overrides)
    semi_cfg = semisup_config(cfg)
    exp = cfg["experiment"]
    out_dir = Path(out_dir)
    lab = frames.labelled
    agreement = multilabel_report(frames.labels[lab], frames.weak_labels[lab], frames.classes)
    splits = subject_splits(frames, int(exp["folds"]), seed)[: exp.get("max_folds") or None]
    seeds = [int(s) for s in exp["seeds"]]
    total, rows = len(splits) * len(seeds) * 2 * len(methods), []
    for f, split in enumerate(splits):
        # reference: call every class present
        rows.append(
            {
                "fold": f,
                "seed": None,
                "labels": "-",
                "method": "all_positive",
                **_evaluate(
                    frames,
                    np.ones((len(split.val), len(frames.classes))),
                    np.ones((len(split.test), len(frames.classes))),
                    split,
                ),
            }
        )
        for s in seeds:
            for source in ("truth", "speech"):
                for method in methods:
                    key = f"fold{f}/seed{s}/{source}_{method}"
                    weak = None if source == "truth" else frames.weak_labels
                    res = _cached(
                        out_dir / "runs" / key / "result.json",
                        partial(
                            train_and_evaluate,
                            frames,
                            split,
                            split.train,
                            split.pool,
                            "random",
                            method,
                            cfg,
                            semi_cfg,
                            out_dir / "runs" / key,
                            s,
                            None,
                            weak,
                        ),
                    )
                    rows.append({"fold": f, "seed": s, "labels": source, "method": method, **res})
                    progress(len(rows) - f - 1, total, key)
    summary = []
    for source, method in [("truth", m) for m in methods] + [("speech", m) for m in methods] + [("-", "all_positive")]:
        cell = [r for r in rows if (r["labels"], r["method"]) == (source, method) and "f1" in r]
        m, sd = _mean_std([r["f1"] for r in cell])
        ap = [r["ap"] for r in cell if r.get("ap") is not None]
        summary.append(
            {
                "labels": source,
                "method": method,
                "f1_mean": m,
                "f1_std": sd,
                "ap_mean": _mean_std(ap)[0] if len(ap) == len(cell) else None,
            }
        )
    write_json(
        out_dir / "speech_labels.json",
        {"agreement": agreement, "summary": summary, "runs": rows, "classes": frames.classes},
    )
    lines = [
        "# Speech-labelled frames as the labelled set",
        "",
        f"{int(lab.sum())} labelled frames; speech labels vs. mask ground truth (weighted): "
        f"P {agreement['weighted']['precision']:.3f}, R {agreement['weighted']['recall']:.3f}, "
        f"F1 {agreement['weighted']['f1']:.3f}",
        "",
        "| class | P | R | F1 | support |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {c} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['support']} |"
        for c, v in agreement["per_class"].items()
    ]
    lines += [
        "",
        "## Test F1 (ground-truth test labels) of models trained on each label source",
        "",
        "| training labels | method | F1 mean | F1 std | AP mean |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['labels']} | {r['method']} | {r['f1_mean']:.3f} | {r['f1_std']:.3f} "
        f"| {'' if r['ap_mean'] is None else format(r['ap_mean'], '.3f')} |"
        for r in summary
    ]
    write_text(out_dir / "speech_labels.md", "\n".join(lines) + "\n")
    return out_dir / "speech_labels.md"

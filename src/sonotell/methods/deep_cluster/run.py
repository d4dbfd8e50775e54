"""The paper's runs: subject splits, clustering, multi-label fine-tuning / FixMatch, and the experiment grid."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import numpy as np
import torch

from sonotell.config import apply_overrides, load_config
from sonotell.data.frames import FrameSet, load_frames
from sonotell.errors import ConfigError
from sonotell.eval.multilabel import weighted_average_precision
from sonotell.files import write_json
from sonotell.methods import cluster_match
from sonotell.methods.deep_cluster.model import ClusterNet, assign_clusters
from sonotell.methods.deep_cluster.report import write_report
from sonotell.methods.deep_cluster.splits import Split, labelled_subset, subject_splits
from sonotell.methods.deep_cluster.task import semisup_config, semisup_model, train_clustering
from sonotell.methods.finetune_multilabel import build_encoder
from sonotell.progress import Progress, silent
from sonotell.safeload import load_weights_only

log = logging.getLogger(__name__)


def _cluster_scores(model: ClusterNet, frames: FrameSet, dev: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    soft = cluster_match.match_clusters(assign_clusters(model, frames.images[dev]), frames.labels[dev], model.k)
    return [cluster_match.predict_from_clusters(assign_clusters(model, frames.images[o]), soft) for o in others]


def evaluate_split(frames: FrameSet, val_scores, test_scores, split: Split) -> dict:
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


def cached_result(path: Path, compute, backfill=None) -> dict:
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
        **evaluate_split(
            frames, predict_scores(net, frames.images[split.val]), predict_scores(net, frames.images[split.test]), split
        ),
        "n_labelled": int(len(labelled)),
    }


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
                        **evaluate_split(frames, val_scores, test_scores, split),
                        "k": int(model.k),
                        "non_empty_clusters": int((sizes > 0).sum()),
                    }

                res = cached_result(
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
                            **evaluate_split(frames, np.ones((len(split.val), len(frames.classes))), ones, split),
                        }
                    )
                labelled = labelled_subset(split.train, float(fraction), s)
                pool = np.concatenate([split.pool, np.setdiff1d(split.train, labelled)])
                for init in exp["inits"]:
                    for method in exp["methods"]:
                        key = f"fold{f}/seed{s}/frac{fraction:g}/{init}_{method}"
                        run_dir = out_dir / "runs" / key
                        res = cached_result(
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

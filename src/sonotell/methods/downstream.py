"""Downstream evaluation of pretrained encoders: fine-tune plane / finding classification.

The papers' test of a self-supervised representation: initialise a classifier's encoder from
a pretrained checkpoint, fine-tune it on labelled clips, and compare with the same network
from random initialisation, under patient-level k-fold cross-validation.

* A *variant* is one row of the table: a recipe (``show_from_tell``, ``dual``,
  ``av_contrastive``), an ablation of it (pretraining config overrides), a random init of a
  recipe's architecture, or any local checkpoint a user supplies.
* Every variant sees the same folds (grouped by ``subject_id``), so its margin over random
  init is a paired, per-fold difference: we report its mean and standard deviation.
* Predictions are made per clip and averaged per scan; metrics are macro precision, recall
  and F1 over the scans of each test fold (mean +- std over folds) plus a confusion matrix
  normalised by true class, pooled over folds.

Encoder interface: a model with ``encode_video(frames)`` (``(B, T, H, W)`` -> ``(B, D)``) or
``encode_image(frames)`` (``(B, H, W)`` -> ``(B, D)``); a plain ``nn.Module`` whose
``forward`` does the same also works. Checkpoints are read with
``sonotell.train.load_model_checkpoint`` (a checkpoint of the wrong recipe or shape is
refused with a message naming both).

Example:
    >>> path = run_experiment("bench_out/pocus", "runs/downstream", "small", [], 0, silent)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from sonotell.config import Section, defaults_from, load_config
from sonotell.data.format import resolve_benchmark
from sonotell.errors import ConfigError, InputError, SubjectLeakError
from sonotell.files import write_json, write_text
from sonotell.progress import Progress, silent
from sonotell.train import ClassificationTask, fit, load_model_checkpoint
from sonotell.train.checkpoint import load_state_checked

log = logging.getLogger(__name__)

RANDOM = "random"
GROUP = "methods/downstream"


# --------------------------------------------------------------------------- config


_default = defaults_from(GROUP, "paper")  # configs/methods/downstream/paper.yaml: the one place a default lives


@dataclass(frozen=True)
class ClipDataConfig(Section):
    """The labelled clips (section ``data``)."""

    SECTION = "data"
    n_frames: int = _default("data", "n_frames", ge=1)
    frame_stride: int = _default("data", "frame_stride", ge=1)
    size: list[int] = _default("data", "size")
    audio_window_s: float = _default("data", "audio_window_s", ge=0.0)
    sample_rate_hz: int = _default("data", "sample_rate_hz", gt=0)
    clip_hop_s: float = _default("data", "clip_hop_s", gt=0.0)


@dataclass(frozen=True)
class FinetuneConfig(Section):
    """Fine-tuning of one fold (section ``finetune``)."""

    SECTION = "finetune"
    input: str = _default("finetune", "input", choices=("video", "image"))
    epochs: int = _default("finetune", "epochs", ge=0)
    batch_size: int = _default("finetune", "batch_size", ge=1)
    optimizer: dict = _default("finetune", "optimizer")
    class_weighted: bool = _default("finetune", "class_weighted")
    freeze_encoder: bool = _default("finetune", "freeze_encoder")
    dropout: float = _default("finetune", "dropout", ge=0.0, le=1.0)


@dataclass(frozen=True)
class PretrainRef(Section):
    """How a variant's encoder is pretrained (section ``pretrain``)."""

    SECTION = "pretrain"
    config: str = _default("pretrain", "config")
    overrides: list[str] = _default("pretrain", "overrides")
    per_fold: bool = _default("pretrain", "per_fold")


@dataclass(frozen=True)
class DownstreamConfig(Section):
    """The typed view of a downstream config; the dict itself is kept for the results and checkpoints."""

    SECTION = "downstream"
    folds: int = _default("folds", ge=2)
    data: ClipDataConfig = field(default_factory=ClipDataConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    pretrain: PretrainRef = field(default_factory=PretrainRef)

    @classmethod
    def of(cls, cfg: dict) -> DownstreamConfig:
        """The typed settings of ``cfg`` (a loaded config, or a partial one: missing keys take the YAML's)."""
        return cls(
            **({"folds": cfg["folds"]} if "folds" in cfg else {}),
            data=ClipDataConfig.from_dict(cfg.get("data")),
            finetune=FinetuneConfig.from_dict(cfg.get("finetune")),
            pretrain=PretrainRef.from_dict(cfg.get("pretrain")),
        )


# --------------------------------------------------------------------------- encoders


def model_for_recipe(recipe: str, config: dict | None = None) -> nn.Module:
    """Build the (untrained) model of ``recipe`` from the config stored with its checkpoint.

    The config's ``model`` section names the registered model and its keyword arguments
    (``{name, ...kwargs}``, the format of ``sonotell.methods.pretrain``); without one the
    recipe name is the model name and its ``small`` config (if it has one) is used.
    """
    from sonotell.models import create_model
    from sonotell.models.registry import model_configs

    config = config or {}
    section = config.get("model") if isinstance(config.get("model"), dict) else None
    if section is None:  # a recipe network without packaged sizes is built from its own arguments
        return create_model(recipe, config="small" if "small" in model_configs(recipe) else None)
    kwargs = {k: v for k, v in section.items() if k not in ("name", "config")}
    return create_model(section.get("name", recipe), config=section.get("config"), **kwargs)


def recipe_config(recipe: str, config: str = "small", overrides: list[str] | None = None) -> dict:
    """The resolved pretraining config of a recipe (its ``model`` section builds the network)."""
    from sonotell.methods.pretrain import resolve_config

    cfg = resolve_config(recipe, config, list(overrides or []))
    cfg.setdefault("model", {})["name"] = recipe
    return cfg


def load_encoder(
    checkpoint: str | Path | None = None, recipe: str | None = None, config: dict | None = None
) -> tuple[nn.Module, str]:
    """An encoder from ``checkpoint`` (any local path), or a random init of ``recipe``.

    With a checkpoint and a ``recipe``, the checkpoint must be of that recipe; its weights must
    fit the architecture its own config describes. Returns ``(model, recipe)``.

    Example:
        >>> enc, recipe = load_encoder("runs/pretrain/show_from_tell/encoder.pt")  # doctest: +SKIP
    """
    if checkpoint is None:
        if recipe is None:
            raise ConfigError("random init needs a recipe (whose architecture to build)")
        return model_for_recipe(recipe, config), recipe
    ckpt = load_model_checkpoint(checkpoint, expected=recipe)
    model = model_for_recipe(ckpt["recipe"], ckpt["config"] or config)
    load_state_checked(model, ckpt["state_dict"], checkpoint, ckpt["recipe"], strict=True)
    return model, ckpt["recipe"]


def encode(model: nn.Module, frames: torch.Tensor, input_kind: str = "video") -> torch.Tensor:
    """Features of (B, T, H, W) frames: the clip (``video``) or its middle frame (``image``)."""
    if input_kind == "video":
        fn = getattr(model, "encode_video", None) or model
        return fn(frames)
    if input_kind == "image":
        fn = getattr(model, "encode_image", None) or model
        return fn(frames[:, frames.shape[1] // 2])
    raise ConfigError(f"finetune.input must be 'video' or 'image', got {input_kind!r}")


class DownstreamClassifier(nn.Module):
    """Encoder + linear classifier on its pooled features.

    Args:
        encoder: a model with ``encode_video`` / ``encode_image`` (or a plain forward).
        num_classes: output classes.
        example: one (1, T, H, W) batch, used once to find the feature width.
        input_kind: ``video`` (the clip) or ``image`` (its middle frame).
    """

    def __init__(
        self,
        encoder: nn.Module,
        num_classes: int,
        example: torch.Tensor,
        input_kind: str = "video",
        dropout: float = 0.0,
    ):
        super().__init__()
        self.encoder = encoder
        self.input_kind = input_kind
        was_training = encoder.training
        encoder.eval()
        with torch.no_grad():
            dim = encode(encoder, example, input_kind).reshape(example.shape[0], -1).shape[1]
        encoder.train(was_training)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(dim, num_classes)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        feats = encode(self.encoder, frames, self.input_kind).reshape(frames.shape[0], -1)
        return self.classifier(self.dropout(feats))


# --------------------------------------------------------------------------- data


@dataclass
class ClipArrays:
    """Labelled clips held in memory: decoded once, shared by every variant and fold."""

    frames: np.ndarray  # (N, T, H, W) uint8
    labels: np.ndarray  # (N,) int, class index
    scan_ids: np.ndarray  # (N,) str
    subject_ids: np.ndarray  # (N,) str
    class_names: list[str]

    def __post_init__(self):
        n = len(self.frames)
        if not (len(self.labels) == len(self.scan_ids) == len(self.subject_ids) == n):
            raise ValueError("ClipArrays fields must have one entry per clip")


class _ArrayDataset(torch.utils.data.Dataset):
    def __init__(self, data: ClipArrays, idx: np.ndarray):
        self.data, self.idx = data, np.asarray(idx, int)

    def __len__(self) -> int:
        return len(self.idx)

    def __getitem__(self, i: int) -> dict:
        j = self.idx[i]
        return {
            "frames": torch.from_numpy(self.data.frames[j].astype(np.float32) / 255.0),
            "label": int(self.data.labels[j]),
        }


def clips_from_benchmark(benchmark, cfg: dict, cache_dir: Path, progress: Progress = silent) -> ClipArrays:
    """Labelled clips of every scan with a clip-level label, through ``ClipDataset``."""
    from sonotell.data.datasets import ClipDataset

    data_cfg = DownstreamConfig.of(cfg).data
    table = benchmark.table
    labelled = table[table["label"].fillna("").astype(str).str.len() > 0]
    if labelled.empty:
        raise InputError(benchmark.root, "no scan has a clip-level label: nothing to classify")
    classes = sorted(labelled["label"].astype(str).unique().tolist())
    ds = ClipDataset(
        benchmark,
        labelled["scan_id"].astype(str).tolist(),
        n_frames=data_cfg.n_frames,
        frame_stride=data_cfg.frame_stride,
        size=tuple(data_cfg.size),
        audio_window_s=data_cfg.audio_window_s,
        sample_rate_hz=data_cfg.sample_rate_hz,
        cache_dir=cache_dir,
        clip_hop_s=data_cfg.clip_hop_s,
        progress=progress,
    )
    label_of = dict(zip(labelled["scan_id"].astype(str), labelled["label"].astype(str)))
    frames, labels, scans, subjects = [], [], [], []
    n = len(ds)
    for i in range(n):
        item = ds[i]
        f = item["frames"]
        f = f.numpy() if hasattr(f, "numpy") else np.asarray(f)
        frames.append(np.clip(f * 255.0 + 0.5, 0, 255).astype(np.uint8))
        scans.append(str(item["scan_id"]))
        subjects.append(str(item["subject_id"]))
        labels.append(classes.index(label_of[str(item["scan_id"])]))
        progress(i + 1, n, "decoding clips")
    return ClipArrays(np.stack(frames), np.asarray(labels), np.asarray(scans), np.asarray(subjects), classes)


# --------------------------------------------------------------------------- cross-validation


def make_folds(data: ClipArrays, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Patient-level folds over clips (``eval.cv.make_folds``: train and test subjects asserted disjoint)."""
    from sonotell.eval.cv import make_folds as subject_folds

    return subject_folds(data.subject_ids, "kfold", k, seed)


def scan_level(probs: np.ndarray, idx: np.ndarray, data: ClipArrays) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Average clip probabilities per scan: (true labels, predicted labels, scan ids)."""
    scans = data.scan_ids[idx]
    order = sorted(set(scans.tolist()))
    y_true, y_pred = [], []
    for s in order:
        sel = scans == s
        y_true.append(int(data.labels[idx][sel][0]))
        y_pred.append(int(np.argmax(probs[sel].mean(axis=0))))
    return np.asarray(y_true), np.asarray(y_pred), order


def finetune_fold(
    make_encoder: Callable[[], nn.Module],
    data: ClipArrays,
    train_idx: np.ndarray,
    test_idx: np.ndarray,
    cfg: dict,
    out_dir: Path,
    seed: int,
) -> np.ndarray:
    """Fine-tune a fresh copy of the encoder on ``train_idx``; return test-clip probabilities."""
    from sonotell.seeding import seed_everything

    ft = DownstreamConfig.of(cfg).finetune
    seed_everything(seed)
    torch.manual_seed(seed)
    encoder = make_encoder()
    example = torch.from_numpy(data.frames[:1].astype(np.float32) / 255.0)
    model = DownstreamClassifier(encoder, len(data.class_names), example, ft.input, ft.dropout)
    if ft.freeze_encoder:
        for p in model.encoder.parameters():
            p.requires_grad_(False)
    weights = None
    if ft.class_weighted:
        counts = np.bincount(data.labels[train_idx], minlength=len(data.class_names)).astype(np.float64)
        w = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / len(data.class_names), 0.0)
        weights = torch.tensor(w, dtype=torch.float32)
    task = ClassificationTask(
        model,
        optimizer=dict(ft.optimizer),
        class_weights=weights,
        recipe="downstream",
        config=cfg,
    )
    g = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(
        _ArrayDataset(data, train_idx),
        batch_size=ft.batch_size,
        shuffle=True,
        generator=g,
        drop_last=len(train_idx) > ft.batch_size,
    )
    fit(task, loader, None, out_dir=out_dir, max_epochs=ft.epochs, seed=seed, resume=True)
    model.eval()
    probs = []
    with torch.no_grad():
        test_loader = torch.utils.data.DataLoader(_ArrayDataset(data, test_idx), batch_size=ft.batch_size)
        for batch in test_loader:
            probs.append(model(batch["frames"]).softmax(dim=1).numpy())
    return np.concatenate(probs) if probs else np.zeros((0, len(data.class_names)))


def cross_validate(
    make_encoder: Callable[[int], nn.Module],
    data: ClipArrays,
    folds: list[tuple[np.ndarray, np.ndarray]],
    cfg: dict,
    out_dir: Path,
    seed: int = 0,
    progress: Progress = silent,
) -> dict:
    """Fine-tune and test on every fold; per-fold macro P/R/F1 on scans, pooled confusion matrix.

    ``make_encoder(fold)`` returns the starting encoder of that fold (per-fold pretraining
    gives each fold its own checkpoint).

    Results are cached in ``out_dir/cv.json``: a rerun skips finished variants (resumable).
    """
    import json

    from sonotell.eval.metrics import confusion_matrix, precision_recall_f1

    cache = Path(out_dir) / "cv.json"
    if cache.exists():
        return json.loads(cache.read_text())
    per_fold, all_true, all_pred, all_scans = [], [], [], []
    subject_of = dict(zip(data.scan_ids.tolist(), data.subject_ids.tolist()))
    for f, (tr, te) in enumerate(folds):
        probs = finetune_fold(lambda f=f: make_encoder(f), data, tr, te, cfg, Path(out_dir) / f"fold{f}", seed + f)
        y_true, y_pred, scan_ids = scan_level(probs, te, data)
        all_scans += scan_ids
        scores = precision_recall_f1(y_true, y_pred)  # classes present in this fold
        scores["accuracy"] = float(np.mean(y_true == y_pred))
        scores["n_scans"] = int(len(y_true))
        per_fold.append(scores)
        all_true.append(y_true)
        all_pred.append(y_pred)
        progress(f + 1, len(folds), f"fold {f + 1}: F1 {scores['f1']:.3f}")
    t, p = np.concatenate(all_true), np.concatenate(all_pred)
    result = {
        "per_fold": per_fold,
        **{f"{m}_mean": float(np.mean([s[m] for s in per_fold])) for m in ("precision", "recall", "f1", "accuracy")},
        **{f"{m}_std": float(np.std([s[m] for s in per_fold])) for m in ("precision", "recall", "f1", "accuracy")},
        "confusion_true_normalised": confusion_matrix(t, p, n_classes=len(data.class_names), normalize="true").tolist(),
        "class_names": data.class_names,
        # pooled scan predictions: paired comparisons bootstrap over the patients behind them
        "scans": {
            "scan_ids": all_scans,
            "subjects": [subject_of[s] for s in all_scans],
            "y_true": t.tolist(),
            "y_pred": p.tolist(),
        },
    }
    write_json(cache, result)
    return result


def margins(result: dict, baseline: dict, metric: str = "f1") -> dict:
    """Paired per-fold margin of ``result`` over ``baseline`` (same folds): mean, std, per fold."""
    diff = [a[metric] - b[metric] for a, b in zip(result["per_fold"], baseline["per_fold"])]
    return {"mean": float(np.mean(diff)), "std": float(np.std(diff)), "per_fold": diff}


def paired_comparison(result: dict, baseline: dict, seed: int = 0) -> dict:
    """Macro-F1 difference to ``baseline`` with 95 % intervals: over folds, and over patients.

    ``folds``: bootstrap of the per-fold differences; ``patients``: patients resampled, both
    systems' pooled scan predictions rescored on each resample (``sonotell.eval.paired``).
    """
    from sonotell.eval.metrics import precision_recall_f1
    from sonotell.eval.paired import paired_bootstrap_by_group, paired_difference

    out = {
        "folds": paired_difference(
            [f["f1"] for f in result["per_fold"]], [f["f1"] for f in baseline["per_fold"]], seed=seed, unit="fold"
        )
    }
    a, b = result.get("scans"), baseline.get("scans")
    if a and b and a["scan_ids"] == b["scan_ids"]:

        def f1(t, p):
            return precision_recall_f1(t, p)["f1"]

        out["patients"] = paired_bootstrap_by_group(a["y_true"], a["y_pred"], b["y_pred"], a["subjects"], f1, seed=seed)
    return out


# --------------------------------------------------------------------------- experiment


@dataclass
class Variant:
    """One table row: ``init`` is ``pretrain`` (pretrain now), ``random``, or a checkpoint path."""

    name: str
    recipe: str
    init: str = "pretrain"
    overrides: tuple[str, ...] = ()
    baseline: str | None = None  # the random-init row it is compared with


def variants_from_config(cfg: dict) -> list[Variant]:
    """Rows from ``variants`` and ``checkpoints``, plus one random-init row per architecture."""
    rows: list[Variant] = []
    for v in cfg.get("variants", []):
        rows.append(
            Variant(
                v["name"],
                v["recipe"],
                str(v.get("init", "pretrain")),
                tuple(v.get("overrides", [])),
                v.get("compare_with"),
            )
        )
    for name, path in (cfg.get("checkpoints") or {}).items():
        rows.append(
            Variant(str(name), load_model_checkpoint(path)["recipe"], str(path))
        )  # CheckpointError names a bad file
    names = [r.name for r in rows]
    if len(set(names)) != len(names):
        raise ConfigError(f"downstream variants must have unique names, got {names}")
    for r in list(rows):
        if r.baseline is not None:
            if r.baseline not in names:
                raise ConfigError(
                    f"variant {r.name!r}: compare_with {r.baseline!r} is not a variant ({', '.join(names)})"
                )
            continue
        if r.init == RANDOM:
            continue
        base = f"{RANDOM}:{r.recipe}"
        r.baseline = base
        if base not in names:
            rows.insert(0, Variant(base, r.recipe, RANDOM))
            names.insert(0, base)
    return rows


def _pretrain(
    variant: Variant,
    benchmark,
    out_dir: Path,
    cfg: dict,
    seed: int,
    progress: Progress,
    cache_dir: Path | None = None,
    exclude_subjects: list[str] | None = None,
) -> Path:
    """Pretrain ``variant`` with the shared runner (``sonotell.methods.pretrain``); cached.

    ``cache_dir``: one frame cache shared by every variant (decoding is the slow part).
    ``exclude_subjects``: subjects whose scans pretraining must not see (a test fold).
    """
    from sonotell.methods import pretrain as runner

    pre = DownstreamConfig.of(cfg).pretrain
    scan_ids = None
    if exclude_subjects is not None:
        held_out = set(exclude_subjects)
        kept = [s for s in benchmark.scans if s.subject_id not in held_out]
        if {s.subject_id for s in kept} & held_out:
            raise SubjectLeakError("pretraining subjects overlap the test fold")
        scan_ids = [s.scan_id for s in kept]
    return Path(
        runner.pretrain(
            variant.recipe,
            benchmark=benchmark,
            out_dir=out_dir,
            config=pre.config,
            overrides=list(pre.overrides) + list(variant.overrides),
            seed=seed,
            progress=progress,
            cache_dir=cache_dir,
            scan_ids=scan_ids,
        )
    )


def run_downstream(
    data: ClipArrays,
    variants: list[Variant],
    cfg: dict,
    out_dir: Path,
    seed: int = 0,
    progress: Progress = silent,
    checkpoint_for: Callable[[Variant, list[str] | None, str], Path] | None = None,
) -> dict:
    """Cross-validate every variant on the same folds; margins over each one's random init.

    ``checkpoint_for(variant, test_subjects, tag)`` pretrains a variant. With
    ``pretrain.per_fold`` (the default) it is called once per fold with that fold's test
    subjects, which pretraining must leave out: self-supervision on the test patients' own
    scans and narration would leak into the scores. Otherwise once, with ``None``.
    """
    typed = DownstreamConfig.of(cfg)
    folds = make_folds(data, typed.folds, seed)
    per_fold = typed.pretrain.per_fold
    fold_subjects = [sorted(set(data.subject_ids[te].tolist())) for _, te in folds]
    results: dict[str, dict] = {}
    # Pretrained rows first: a random-init row then copies the architecture (config) of the
    # first checkpoint of its recipe, so the two differ only in their initial weights.
    ckpts: dict[str, list[Path]] = {}  # one checkpoint per fold
    arch: dict[str, dict] = dict(cfg.get("model_configs") or {})
    for v in variants:
        if v.init == RANDOM:
            continue
        paths = _fold_checkpoints(v, fold_subjects, per_fold, checkpoint_for)
        for ckpt in dict.fromkeys(paths):
            load_encoder(ckpt, v.recipe)  # fail fast, with the checkpoint's own message
        ckpts[v.name] = paths
        arch.setdefault(v.recipe, load_model_checkpoint(paths[0])["config"])
    for i, v in enumerate(variants):
        progress(i, len(variants), f"variant {v.name}")
        if v.init == RANDOM and v.overrides:
            # an architecture of its own, e.g. an ImageNet-initialised video branch without SSL
            own = recipe_config(v.recipe, typed.pretrain.config, list(v.overrides))
            make = lambda fold, v=v, own=own: model_for_recipe(v.recipe, own)  # noqa: E731
        elif v.init == RANDOM:
            if v.recipe not in arch:
                arch[v.recipe] = recipe_config(v.recipe, typed.pretrain.config)
            make = lambda fold, v=v: model_for_recipe(v.recipe, arch[v.recipe])  # noqa: E731
        else:
            make = lambda fold, paths=ckpts[v.name], v=v: load_encoder(paths[fold], v.recipe)[0]  # noqa: E731
        res = cross_validate(make, data, folds, cfg, out_dir / "variants" / _slug(v.name), seed)
        res.update(
            {
                "recipe": v.recipe,
                "init": v.init if v.name not in ckpts else [str(p) for p in ckpts[v.name]],
                "baseline": v.baseline,
            }
        )
        results[v.name] = res
    for res in results.values():
        if res.get("baseline") in results:
            res["margin_f1"] = margins(res, results[res["baseline"]])
            res["paired_f1"] = paired_comparison(res, results[res["baseline"]], seed)
    progress(len(variants), len(variants), "done")
    folds_info = [
        {"n_train_clips": len(tr), "n_test_clips": len(te), "test_subjects": subjects}
        for (tr, te), subjects in zip(folds, fold_subjects)
    ]
    return {"folds": folds_info, "pretrain_per_fold": per_fold, "variants": results}


def _fold_checkpoints(
    v: Variant,
    fold_subjects: list[list[str]],
    per_fold: bool,
    checkpoint_for: Callable[[Variant, list[str] | None, str], Path] | None,
) -> list[Path]:
    """The starting checkpoint of each fold: the variant's own file, or pretrained (per fold or once)."""
    if v.init != "pretrain":
        return [Path(v.init)] * len(fold_subjects)
    if checkpoint_for is None:
        raise ConfigError(f"variant {v.name!r}: no checkpoint and no way to pretrain one")
    if per_fold:
        return [checkpoint_for(v, subjects, f"fold{f}") for f, subjects in enumerate(fold_subjects)]
    return [checkpoint_for(v, None, "all")] * len(fold_subjects)


def results_table(results: dict) -> list[dict]:
    """One row per variant: P / R / F1 mean +- std, margin over random init +- its fold spread."""
    rows = []
    for name, r in results["variants"].items():
        m = r.get("margin_f1")
        rows.append(
            {
                "variant": name,
                "recipe": r["recipe"],
                "precision": f"{r['precision_mean']:.3f} ± {r['precision_std']:.3f}",
                "recall": f"{r['recall_mean']:.3f} ± {r['recall_std']:.3f}",
                "f1": f"{r['f1_mean']:.3f} ± {r['f1_std']:.3f}",
                "f1_margin_vs_random": "—" if m is None else f"{100 * m['mean']:+.1f} ± {100 * m['std']:.1f} pts",
                "vs": r.get("baseline") or "—",
                "F1 diff, 95% CI over folds": _ci(r, "folds"),
                "F1 diff, 95% CI over patients": _ci(r, "patients"),
            }
        )
    return rows


def _ci(result: dict, unit: str) -> str:
    from sonotell.eval.paired import describe

    c = (result.get("paired_f1") or {}).get(unit)
    return "—" if c is None else describe(c)


def markdown_table(rows: list[dict]) -> str:
    if not rows:
        return "(no rows)\n"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def _plot_confusions(results: dict, out_dir: Path) -> dict[str, str]:
    """One confusion-matrix PNG per variant (normalised by true class)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sonotell.files import atomic_path

    paths = {}
    for name, r in results["variants"].items():
        cm = np.asarray(r["confusion_true_normalised"])
        names = r["class_names"]
        fig, ax = plt.subplots(figsize=(1.2 + 0.8 * len(names), 1.0 + 0.8 * len(names)))
        ax.imshow(cm, vmin=0, vmax=1, cmap="Blues")
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
        ax.set_yticks(range(len(names)), names)
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", color="white" if v > 0.5 else "black", fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(name)
        fig.tight_layout()
        path = out_dir / "confusion" / f"{_slug(name)}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
        plt.close(fig)
        paths[name] = str(path.relative_to(out_dir))
    return paths


def run_experiment(
    benchmark, out_dir, config="small", overrides=None, seed: int = 0, progress: Progress = silent
) -> Path:
    """Pretrained vs random init on the benchmark's clip labels, every recipe and ablation.

    Writes ``results.json`` and ``results.md`` (with confusion-matrix PNGs) under ``out_dir``
    and returns the Markdown path. Pretrained checkpoints come from ``checkpoints`` in the
    config (local paths), or are pretrained here with ``sonotell.methods.pretrain``.
    """
    cfg = load_config("methods/downstream", config, list(overrides or []))
    return _run(cfg, benchmark, Path(out_dir), seed, progress)


def run_finetune(
    benchmark,
    checkpoints: dict[str, str | Path],
    out_dir,
    config="small",
    overrides=None,
    seed: int = 0,
    progress: Progress = silent,
) -> Path:
    """Fine-tune from the given local checkpoints only (``{row name: path}``), each against a
    random init of its own architecture: ``sonotell finetune``.

    Example:
        >>> run_finetune("bench_out/pocus", {"mine": "enc.pt"}, "runs/ft")  # doctest: +SKIP
    """
    cfg = load_config("methods/downstream", config, list(overrides or []))
    cfg["variants"] = []
    cfg["checkpoints"] = {str(k): str(v) for k, v in checkpoints.items()}
    if not checkpoints:
        raise ConfigError("finetune needs at least one --checkpoint")
    return _run(cfg, benchmark, Path(out_dir), seed, progress)


def _run(cfg: dict, benchmark, out_dir: Path, seed: int, progress: Progress) -> Path:
    bench = resolve_benchmark(benchmark)
    data = clips_from_benchmark(bench, cfg, out_dir / "cache", progress)
    variants = variants_from_config(cfg)
    pre_dir = out_dir / "pretrain"

    def checkpoint_for(v: Variant, test_subjects: list[str] | None, tag: str) -> Path:
        return _pretrain(
            v,
            bench,
            pre_dir / _slug(v.name) / tag,
            cfg,
            seed,
            progress,
            pre_dir / "frame_cache",
            exclude_subjects=test_subjects,
        )

    result = run_downstream(data, variants, cfg, out_dir, seed, progress, checkpoint_for=checkpoint_for)
    result.update(
        {
            "benchmark": str(bench.root),
            "config": cfg,
            "seed": seed,
            "n_clips": int(len(data.labels)),
            "n_scans": int(len(set(data.scan_ids.tolist()))),
            "n_subjects": int(len(set(data.subject_ids.tolist()))),
        }
    )
    result["confusion_png"] = _plot_confusions(result, out_dir)
    write_json(out_dir / "results.json", result)
    rows = results_table(result)
    md = [
        f"# Downstream classification on `{bench.name}` ({DownstreamConfig.of(cfg).folds}-fold, patient-level)",
        "",
        f"{result['n_scans']} scans of {result['n_subjects']} subjects, {result['n_clips']} clips; "
        f"classes: {', '.join(data.class_names)}.",
        "Macro P / R / F1 over scans, mean ± std over folds; margin: paired per-fold F1 difference to the same "
        "architecture from random init (or to the row named under `vs`), with 95 % bootstrap intervals over folds "
        "and over patients; "
        "'not distinguishable' when the interval contains 0.",
        "",
        markdown_table(rows),
        "Confusion matrices (normalised by true class, pooled over folds): "
        + ", ".join(f"[{k}]({v})" for k, v in result["confusion_png"].items()),
        "",
    ]
    return write_text(out_dir / "results.md", "\n".join(md))

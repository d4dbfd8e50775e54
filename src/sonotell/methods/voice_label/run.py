"""The paper's Table III: every variant under patient-level cross-validation, pooled over folds."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from sonotell.data.format import resolve_benchmark
from sonotell.errors import ConfigError
from sonotell.files import write_json
from sonotell.methods.voice_label.config import CvConfig, GradcamConfig, method_config
from sonotell.methods.voice_label.report import accuracy_plot, gradcam_examples
from sonotell.methods.voice_label.samples import Samples, extract_samples
from sonotell.methods.voice_label.task import keyword_checkpoint, train_fold
from sonotell.progress import Progress, silent
from sonotell.safeload import load_weights_only

log = logging.getLogger(__name__)


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
    keyword_ckpt = keyword_checkpoint(cfg, samples, out_dir, seed, chosen)
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
    accuracy_plot(out_dir, rows, bench.name, cfg.get("paper_accuracy"))
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

"""The speech-label experiment: the same runs trained on what the narration said instead of the masks."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import numpy as np

from sonotell.config import load_config
from sonotell.data.frames import FrameSet
from sonotell.errors import ConfigError
from sonotell.files import write_json, write_text
from sonotell.methods.deep_cluster.report import mean_std
from sonotell.methods.deep_cluster.run import cached_result, evaluate_split, train_and_evaluate
from sonotell.methods.deep_cluster.splits import subject_splits
from sonotell.methods.deep_cluster.task import semisup_config
from sonotell.progress import Progress, silent

log = logging.getLogger(__name__)


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
    rows = _runs(frames, splits, [int(s) for s in exp["seeds"]], methods, cfg, semi_cfg, out_dir, progress)
    summary = _summary(rows, methods)
    write_json(
        out_dir / "speech_labels.json",
        {"agreement": agreement, "summary": summary, "runs": rows, "classes": frames.classes},
    )
    lines = _markdown(agreement, summary, int(lab.sum()))
    write_text(out_dir / "speech_labels.md", "\n".join(lines) + "\n")
    return out_dir / "speech_labels.md"


def _runs(frames: FrameSet, splits, seeds: list[int], methods, cfg: dict, semi_cfg: dict, out_dir: Path, progress):
    """Every (fold, seed, label source, method) run, plus the "call every class present" reference per fold."""
    total, rows = len(splits) * len(seeds) * 2 * len(methods), []
    for f, split in enumerate(splits):
        # reference: call every class present
        rows.append(
            {
                "fold": f,
                "seed": None,
                "labels": "-",
                "method": "all_positive",
                **evaluate_split(
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
                    res = cached_result(
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
    return rows


def _summary(rows: list[dict], methods) -> list[dict]:
    """F1 mean / std (and AP mean when every run has one) per (label source, method)."""
    summary = []
    for source, method in [("truth", m) for m in methods] + [("speech", m) for m in methods] + [("-", "all_positive")]:
        cell = [r for r in rows if (r["labels"], r["method"]) == (source, method) and "f1" in r]
        m, sd = mean_std([r["f1"] for r in cell])
        ap = [r["ap"] for r in cell if r.get("ap") is not None]
        summary.append(
            {
                "labels": source,
                "method": method,
                "f1_mean": m,
                "f1_std": sd,
                "ap_mean": mean_std(ap)[0] if len(ap) == len(cell) else None,
            }
        )
    return summary


def _markdown(agreement: dict, summary: list[dict], n_labelled: int) -> list[str]:
    lines = [
        "# Speech-labelled frames as the labelled set",
        "",
        f"{n_labelled} labelled frames; speech labels vs. mask ground truth (weighted): "
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
    return lines

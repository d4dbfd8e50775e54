"""Summaries of repeated subject-grouped splits: per label and macro, speech vs truth and model vs baseline.

Runs come from ``sonotell.methods.frame_classifier.cross_validate``: one per (seed, fold, trained
on), each with the ``metrics.json``-shaped figures of that fold's held-out subjects. Runs of the
same (seed, fold) were scored on the same frames, so they pair up: the interval of a difference
is ``sonotell.eval.paired.paired_difference`` over the (seed, fold) units, and the ratio
speech ÷ truth (ratio of means) gets a paired bootstrap interval over the same units.

Example:
    >>> r = paired_ratio([0.9, 0.8, 0.85], [1.0, 0.9, 0.9], n_boot=200)
    >>> round(r["ratio"], 3)
    0.911
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sonotell.eval.paired import paired_difference

METRICS = ("auroc", "average_precision", "f1")
LEVELS = ("frame", "clip")


def paired_ratio(a: Sequence[float], b: Sequence[float], *, n_boot: int = 10000, level: float = 0.95, seed: int = 0):
    """``mean(a) / mean(b)`` with a percentile bootstrap interval, pairs resampled together."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.size < 2:
        raise ValueError(f"a paired ratio needs two 1-D arrays of one length >= 2, got {a.shape} and {b.shape}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, a.size, size=(int(n_boot), a.size))
    den = b[idx].mean(1)
    boots = np.where(den > 0, a[idx].mean(1) / np.where(den > 0, den, 1), np.nan)
    boots = boots[np.isfinite(boots)]
    alpha = (1 - level) / 2
    low, high = (float(v) for v in np.quantile(boots, [alpha, 1 - alpha])) if boots.size else (None, None)
    return {"ratio": float(a.mean() / b.mean()) if b.mean() > 0 else None, "low": low, "high": high, "n": int(a.size)}


def _value(run: dict, metric: str, level: str, label: str, baseline: str | None = None) -> float | None:
    m = run["metrics"]
    src = m["baselines"][baseline] if baseline else m
    return src.get(metric, {}).get(level, {}).get(label)


def summarise_runs(runs: list[dict], labels: Sequence[str], n_boot: int = 10000) -> dict:
    """Means over runs and paired intervals, per metric, level and label (``macro`` included).

    For each trained-on source: mean and sd of the model and of both baselines, and the paired
    difference model − baseline. Where both sources ran: the paired difference speech − truth
    and the ratio speech ÷ truth. Units where a figure is undefined (None) are left out of that
    comparison; ``n`` says how many remained.
    """
    sources = sorted({r["trained_on"] for r in runs})
    units = sorted({(r["seed"], r["fold"]) for r in runs})
    by = {(r["seed"], r["fold"], r["trained_on"]): r for r in runs}
    out: dict = {"units": len(units), "sources": sources, "figures": {}}
    for metric in METRICS:
        for level in LEVELS:
            for label in [*labels, "macro"]:
                cell: dict = {}
                for src in sources:
                    rs = [by.get((s, f, src)) for s, f in units]
                    model = [_value(r, metric, level, label) if r else None for r in rs]
                    entry = _describe(model)
                    for base in ("all_present", "prior"):
                        b = [_value(r, metric, level, label, base) if r else None for r in rs]
                        entry[base] = _describe(b)
                        entry[f"vs_{base}"] = _paired(model, b, n_boot)
                    cell[src] = entry
                if {"speech", "truth"} <= set(sources):
                    sp = [
                        _value(by[(s, f, "speech")], metric, level, label) if (s, f, "speech") in by else None
                        for s, f in units
                    ]
                    tr = [
                        _value(by[(s, f, "truth")], metric, level, label) if (s, f, "truth") in by else None
                        for s, f in units
                    ]
                    cell["speech_vs_truth"] = _paired(sp, tr, n_boot)
                    keep = [(a, b) for a, b in zip(sp, tr) if a is not None and b is not None]
                    cell["speech_over_truth"] = (
                        paired_ratio([a for a, _ in keep], [b for _, b in keep], n_boot=n_boot)
                        if len(keep) >= 2
                        else None
                    )
                out["figures"][f"{metric}/{level}/{label}"] = cell
    return out


def _describe(values: list[float | None]) -> dict:
    v = np.array([x for x in values if x is not None], np.float64)
    if not v.size:
        return {"mean": None, "sd": None, "n": 0}
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if v.size > 1 else 0.0, "n": int(v.size)}


def _paired(a: list[float | None], b: list[float | None], n_boot: int) -> dict | None:
    keep = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
    if len(keep) < 2:
        return None
    return paired_difference([x for x, _ in keep], [y for _, y in keep], n_boot=n_boot, unit="seed x fold")

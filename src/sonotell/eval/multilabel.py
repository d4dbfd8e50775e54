"""Multi-label evaluation (Dadoun et al. 2023): per-class thresholds chosen to maximise F1 on a
validation split, then per-class and support-weighted precision / recall / F1 on test.

``y_true`` is an (N, K) 0/1 matrix, ``scores`` an (N, K) matrix of per-class scores
(sigmoid outputs, cluster soft labels, ...).

Example:
    >>> y = np.array([[1, 0], [1, 1], [0, 1]])
    >>> s = np.array([[0.9, 0.2], [0.6, 0.7], [0.3, 0.8]])
    >>> best_thresholds(y, s).round(3).tolist()
    [0.45, 0.45]
    >>> multilabel_report(y, s >= 0.5, ["liver", "kidney"])["weighted"]["f1"]
    1.0
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.5


def _as_matrix(a, name: str) -> np.ndarray:
    m = np.asarray(a, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"{name}: expected an (N, K) matrix, got shape {m.shape}")
    if m.shape[0] == 0:
        raise ValueError(f"{name}: no samples")
    if not np.isfinite(m).all():
        raise ValueError(f"{name}: contains NaN or inf")
    return m


def f1_at(y: np.ndarray, pred: np.ndarray) -> float:
    """Binary F1 of one class (0 when there is neither a positive nor a predicted positive)."""
    tp = float(np.sum((pred == 1) & (y == 1)))
    denom = float(np.sum(pred == 1) + np.sum(y == 1))
    return 2 * tp / denom if denom else 0.0


def best_thresholds(y_true, scores, class_names: Sequence[str] | None = None) -> np.ndarray:
    """Per class, the score threshold (``pred = score >= t``) with the best validation F1.

    Candidates lie *between* the class's observed scores (midpoints), plus 0 (everything
    positive) and just above the maximum, so a threshold never sits exactly on one validation
    image's score — a slightly lower score on another subject would flip it. Ties go to the
    highest threshold (fewest false positives). A class without a positive in validation has no
    F1 to maximise: it gets ``DEFAULT_THRESHOLD`` and a warning.
    """
    y, s = _as_matrix(y_true, "y_true"), _as_matrix(scores, "scores")
    if y.shape != s.shape:
        raise ValueError(f"y_true {y.shape} and scores {s.shape} differ in shape")
    names = list(class_names) if class_names is not None else [str(k) for k in range(y.shape[1])]
    out = np.full(y.shape[1], DEFAULT_THRESHOLD)
    for k in range(y.shape[1]):
        if y[:, k].sum() == 0:
            log.warning(
                "class %r has no positive in the validation split; threshold left at %.2f", names[k], DEFAULT_THRESHOLD
            )
            continue
        u = np.unique(s[:, k])
        candidates = np.concatenate([[min(0.0, u[0])], (u[1:] + u[:-1]) / 2, [u[-1] + 1e-6]])
        best_f1, best_t = -1.0, DEFAULT_THRESHOLD
        for t in candidates[::-1]:
            f1 = f1_at(y[:, k], (s[:, k] >= t).astype(int))
            if f1 > best_f1:
                best_f1, best_t = f1, float(t)
        out[k] = best_t
    return out


def multilabel_report(y_true, y_pred, class_names: Sequence[str]) -> dict:
    """Per-class precision / recall / F1 / support and their macro and support-weighted averages.

    A class absent from ``y_true`` has support 0: it gets a warning, weight 0 in the weighted
    average and is left out of the macro average (its recall is undefined).
    """
    y, p = _as_matrix(y_true, "y_true").astype(int), _as_matrix(y_pred, "y_pred").astype(int)
    if y.shape != p.shape:
        raise ValueError(f"y_true {y.shape} and y_pred {p.shape} differ in shape")
    if len(class_names) != y.shape[1]:
        raise ValueError(f"{len(class_names)} class names for {y.shape[1]} columns")
    per_class = {}
    for k, name in enumerate(class_names):
        tp = int(np.sum((p[:, k] == 1) & (y[:, k] == 1)))
        n_pred, support = int(p[:, k].sum()), int(y[:, k].sum())
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    supports = np.array([c["support"] for c in per_class.values()], float)
    absent = [n for n, c in per_class.items() if c["support"] == 0]
    if absent:
        log.warning("classes never present in this split (left out of the averages): %s", ", ".join(absent))
    present = [n for n, c in per_class.items() if c["support"] > 0]
    out = {"per_class": per_class, "n_samples": int(y.shape[0])}
    for avg in ("weighted", "macro"):
        if not present:
            out[avg] = {"precision": 0.0, "recall": 0.0, "f1": 0.0}
            continue
        w = (
            supports / supports.sum()
            if avg == "weighted"
            else np.array([1.0 / len(present) if c["support"] else 0.0 for c in per_class.values()])
        )
        out[avg] = {
            m: float(sum(w[i] * c[m] for i, c in enumerate(per_class.values()))) for m in ("precision", "recall", "f1")
        }
    return out


def weighted_average_precision(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Support-weighted average precision over the classes present: ranking quality, no threshold."""
    from sklearn.metrics import average_precision_score

    y, s = np.asarray(y_true), np.asarray(scores, float)
    support = y.sum(axis=0)
    present = np.flatnonzero(support > 0)
    if not len(present):
        return float("nan")
    ap = [average_precision_score(y[:, k], s[:, k]) for k in present]
    return float(np.average(ap, weights=support[present]))


def evaluate_multilabel(val_true, val_scores, test_true, test_scores, class_names: Sequence[str]) -> dict:
    """Thresholds from validation, report on test; the thresholds are returned with the report."""
    thresholds = best_thresholds(val_true, val_scores, class_names)
    pred = (_as_matrix(test_scores, "test_scores") >= thresholds[None, :]).astype(int)
    report = multilabel_report(test_true, pred, class_names)
    report["thresholds"] = {n: float(t) for n, t in zip(class_names, thresholds)}
    return report

"""Classification metrics shared by every recipe, each checked against sklearn in the tests.

Labels are integer class indices. ``labels`` (the class list the macro average runs over)
defaults to the classes present in ``y_true`` or ``y_pred``, as sklearn does; pass
``n_classes`` to average over a fixed class list (a class never seen then counts as 0).

Example:
    >>> accuracy([0, 1, 2, 2], [0, 2, 2, 2])
    0.75
    >>> round(precision_recall_f1([0, 1, 2, 2], [0, 2, 2, 2])["f1"], 4)
    0.6
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from sonotell.eval.bootstrap import bootstrap_by_group  # noqa: F401  (part of this module's API)


def _classes(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int | None) -> np.ndarray:
    if n_classes is not None:
        return np.arange(n_classes)
    return np.unique(np.concatenate([y_true, y_pred]))


def _check(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if t.shape != p.shape:
        raise ValueError(f"y_true {t.shape} and y_pred {p.shape} differ in shape")
    if t.size == 0:
        raise ValueError("metrics of an empty prediction set are undefined")
    return t, p


def accuracy(y_true, y_pred) -> float:
    """Subset accuracy: the fraction of samples whose prediction matches exactly.

    For multi-label inputs of shape (N, K) a sample counts only when all K labels match.
    """
    t, p = _check(y_true, y_pred)
    if t.ndim == 2:
        return float(np.mean(np.all(t == p, axis=1)))
    return float(np.mean(t == p))


def confusion_matrix(y_true, y_pred, n_classes: int | None = None, normalize: str | None = "true") -> np.ndarray:
    """Rows are true classes, columns predicted; ``normalize="true"`` makes each row sum to 1.

    A class with no true sample keeps a row of zeros (nothing to normalise).
    """
    t, p = _check(y_true, y_pred)
    classes = _classes(t, p, n_classes)
    pos = {c: i for i, c in enumerate(classes.tolist())}
    cm = np.zeros((len(classes), len(classes)), np.float64)
    for a, b in zip(t.tolist(), p.tolist()):
        cm[pos[a], pos[b]] += 1
    if normalize == "true":
        rows = cm.sum(axis=1, keepdims=True)
        cm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    elif normalize not in (None, "none"):
        raise ValueError(f"normalize must be 'true' or None, got {normalize!r}")
    return cm


def per_class(y_true, y_pred, n_classes: int | None = None) -> dict[str, np.ndarray]:
    """Per-class precision, recall, F1 and support (0 where undefined, as sklearn's zero_division=0)."""
    t, p = _check(y_true, y_pred)
    classes = _classes(t, p, n_classes)
    precision, recall, f1, support = [], [], [], []
    for c in classes.tolist():
        tp = float(np.sum((p == c) & (t == c)))
        n_pred, n_true = float(np.sum(p == c)), float(np.sum(t == c))
        pr = tp / n_pred if n_pred else 0.0
        rc = tp / n_true if n_true else 0.0
        precision.append(pr)
        recall.append(rc)
        f1.append(2 * pr * rc / (pr + rc) if pr + rc else 0.0)
        support.append(int(n_true))
    return {
        "classes": classes,
        "precision": np.array(precision),
        "recall": np.array(recall),
        "f1": np.array(f1),
        "support": np.array(support),
    }


def precision_recall_f1(y_true, y_pred, n_classes: int | None = None) -> dict[str, float]:
    """Macro precision, recall and F1: unweighted means of the per-class figures."""
    pc = per_class(y_true, y_pred, n_classes)
    return {
        "precision": float(pc["precision"].mean()),
        "recall": float(pc["recall"].mean()),
        "f1": float(pc["f1"].mean()),
    }


def classification_summary(y_true, y_pred, class_names: Sequence[str]) -> dict:
    """Everything a results table needs for one prediction vector, as plain JSON-able values."""
    n = len(class_names)
    t, p = _check(y_true, y_pred)
    macro = precision_recall_f1(t, p, n_classes=n)
    pc = per_class(t, p, n_classes=n)
    return {
        "n": int(t.size),
        "accuracy": accuracy(t, p),
        **macro,
        "per_class": {
            name: {
                "precision": float(pc["precision"][i]),
                "recall": float(pc["recall"][i]),
                "f1": float(pc["f1"][i]),
                "support": int(pc["support"][i]),
            }
            for i, name in enumerate(class_names)
        },
        "confusion_true_normalised": confusion_matrix(t, p, n_classes=n, normalize="true").tolist(),
        "class_names": list(class_names),
    }

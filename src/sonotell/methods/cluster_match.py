"""Cluster -> multi-label matching (Dadoun et al. 2023, Algorithm 1).

Clustering gives every image a cluster id but no organ names. A small labelled *development*
set names them: the soft multi-label of cluster ``c`` is the mean multi-hot label of the dev
images assigned to ``c`` (how often each organ is seen in that cluster). A new image's
per-class scores are the soft label of its cluster; per-class thresholds then turn them into
labels (``sonotell.eval.multilabel``).

The number of clusters ``K`` is the number of *frequent label combinations* in the dev set
(combinations seen at least ``min_count`` times), so clusters can stand for combinations
such as "liver + gallbladder".

Example:
    >>> labels = np.array([[1, 0], [1, 0], [1, 1], [1, 1], [0, 1]])
    >>> choose_k(labels, min_count=2)
    2
    >>> soft = match_clusters(np.array([0, 0, 1, 1, 1]), labels, k=2)
    >>> soft.round(3).tolist()
    [[1.0, 0.0], [0.667, 1.0]]
"""

from __future__ import annotations

import logging
from collections import Counter

import numpy as np

log = logging.getLogger(__name__)


def _check_labels(labels) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 2:
        raise ValueError(f"labels: expected an (N, K) multi-hot matrix, got shape {y.shape}")
    if y.shape[0] == 0:
        raise ValueError("labels: the development set is empty")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels: multi-hot entries must be 0 or 1")
    return y.astype(np.float64)


def frequent_combinations(labels, min_count: int = 2) -> np.ndarray:
    """The label combinations (rows of 0/1) seen at least ``min_count`` times, most frequent first.

    Ties are broken by the combination itself so the order is deterministic.
    """
    y = _check_labels(labels).astype(int)
    counts = Counter(tuple(row) for row in y.tolist())
    frequent = sorted((c for c, n in counts.items() if n >= min_count), key=lambda c: (-counts[c], c))
    if not frequent:
        raise ValueError(f"no label combination occurs {min_count} times in the {len(y)}-image development set")
    return np.array(frequent, dtype=np.float32)


def choose_k(labels, min_count: int = 2, n_samples: int | None = None) -> int:
    """``K`` = number of frequent label combinations; capped (with a warning) at ``n_samples``."""
    k = len(frequent_combinations(labels, min_count))
    if k < 2:
        log.warning("only one frequent label combination: clustering into K=2 clusters instead")
        k = 2
    if n_samples is not None and k > n_samples:
        log.warning("K=%d frequent combinations > %d images to cluster; using K=%d", k, n_samples, n_samples)
        k = n_samples
    return k


def match_clusters(assignments, labels, k: int) -> np.ndarray:
    """Algorithm 1: (k, n_classes) soft multi-label per cluster from the dev set.

    A cluster with no dev image gets the dev set's overall label frequencies (a warning says
    how many); all dev images in one cluster is reported as a degenerate clustering.
    """
    y = _check_labels(labels)
    a = np.asarray(assignments, dtype=int)
    if a.shape != (y.shape[0],):
        raise ValueError(f"assignments {a.shape} do not match {y.shape[0]} dev labels")
    if a.min() < 0 or a.max() >= k:
        raise ValueError(f"cluster ids must lie in [0, {k}), got {a.min()}..{a.max()}")
    prior = y.mean(axis=0)
    soft = np.tile(prior, (k, 1))
    used = np.unique(a)
    for c in used:
        soft[c] = y[a == c].mean(axis=0)
    empty = k - len(used)
    if len(used) == 1 and k > 1:
        log.warning("degenerate clustering: all %d dev images fall in one cluster (%d)", len(a), int(used[0]))
    elif empty:
        log.warning("%d of %d clusters hold no dev image; they predict the dev label frequencies", empty, k)
    return soft


def predict_from_clusters(assignments, soft_labels: np.ndarray) -> np.ndarray:
    """Per-class scores of images: the soft label of the cluster each is assigned to (N, n_classes)."""
    a = np.asarray(assignments, dtype=int)
    if a.size and (a.min() < 0 or a.max() >= len(soft_labels)):
        raise ValueError(f"cluster ids must lie in [0, {len(soft_labels)})")
    return np.asarray(soft_labels)[a]


def combination_index(labels, combinations: np.ndarray) -> np.ndarray:
    """Index of each label row in ``combinations``, -1 when it is not one of them (N,)."""
    y = _check_labels(labels).astype(int)
    lookup = {tuple(c): i for i, c in enumerate(np.asarray(combinations, int).tolist())}
    return np.array([lookup.get(tuple(row), -1) for row in y.tolist()], dtype=np.int64)

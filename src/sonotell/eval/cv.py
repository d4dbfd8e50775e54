"""Subject-level cross-validation: no subject (patient) ever sits on both sides of a split.

Every splitter yields ``(train_idx, test_idx)`` integer arrays over the samples and asserts
that the train and test *groups* are disjoint, so a bug upstream cannot leak a patient.

Example:
    >>> groups = ["p1", "p1", "p2", "p3"]
    >>> [sorted(te.tolist()) for _, te in leave_one_group_out(groups)]
    [[0, 1], [2], [3]]
"""

from __future__ import annotations

import logging
from typing import Iterator, Sequence

import numpy as np

from sonotell.errors import SubjectLeakError

log = logging.getLogger(__name__)


def assert_disjoint_groups(groups: Sequence, train_idx: np.ndarray, test_idx: np.ndarray) -> None:
    """Raise ``SubjectLeakError`` when a group appears in both ``train_idx`` and ``test_idx``."""
    g = np.asarray(groups)
    shared = set(g[np.asarray(train_idx, int)].tolist()) & set(g[np.asarray(test_idx, int)].tolist())
    if shared:
        raise SubjectLeakError(f"groups leak across the split: {sorted(map(str, shared))[:5]}")


def leave_one_group_out(groups: Sequence) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One fold per group (leave-one-patient-out), groups in sorted order."""
    g = np.asarray(groups)
    uniq = sorted(set(g.tolist()), key=str)
    if len(uniq) < 2:
        raise ValueError(f"leave-one-group-out needs at least 2 groups, got {len(uniq)}")
    for u in uniq:
        test = np.flatnonzero(g == u)
        train = np.flatnonzero(g != u)
        assert_disjoint_groups(g, train, test)
        yield train, test


def grouped_kfold(groups: Sequence, k: int, seed: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``k`` folds of whole groups, balanced by sample count, shuffled reproducibly by ``seed``.

    Groups are shuffled, then assigned largest-first to the fold with the fewest samples
    (sklearn's ``GroupKFold`` rule, plus a seed so repeated CV runs differ when asked to).

    Example:
        >>> folds = list(grouped_kfold(["a", "a", "b", "c", "d"], k=2, seed=0))
        >>> len(folds), sorted(np.concatenate([te for _, te in folds]).tolist())
        (2, [0, 1, 2, 3, 4])
    """
    g = np.asarray(groups)
    uniq = sorted(set(g.tolist()), key=str)
    if k < 2:
        raise ValueError(f"grouped k-fold needs k >= 2, got {k}")
    if k > len(uniq):
        raise ValueError(f"grouped k-fold with k={k} needs at least {k} groups, got {len(uniq)}")
    rng = np.random.default_rng(seed)
    order = [uniq[i] for i in rng.permutation(len(uniq))]
    sizes = {u: int(np.sum(g == u)) for u in uniq}
    order.sort(key=lambda u: -sizes[u])  # stable: ties keep the seeded order
    fold_of: dict = {}
    load = np.zeros(k, int)
    for u in order:
        f = int(np.argmin(load))
        fold_of[u] = f
        load[f] += sizes[u]
    fold_idx = np.array([fold_of[x] for x in g.tolist()])
    for f in range(k):
        test = np.flatnonzero(fold_idx == f)
        train = np.flatnonzero(fold_idx != f)
        assert_disjoint_groups(g, train, test)
        yield train, test


def make_folds(
    groups: Sequence, scheme: str = "kfold", k: int = 5, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``scheme`` is ``"lopo"`` (leave one patient out) or ``"kfold"`` (grouped k-fold)."""
    if scheme in ("lopo", "logo", "leave_one_out"):
        return list(leave_one_group_out(groups))
    if scheme in ("kfold", "grouped_kfold"):
        return list(grouped_kfold(groups, k, seed))
    raise ValueError(f"unknown CV scheme {scheme!r}; use 'lopo' or 'kfold'")


def holdout_groups(groups: Sequence, fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One split: a seeded ``fraction`` of the groups held out (at least one group stays in training).

    Example:
        >>> train, held = holdout_groups(["a", "a", "b", "c"], 0.34, seed=0)
        >>> len(train) + len(held)
        4
    """
    g = np.asarray(groups)
    uniq = sorted(set(g.tolist()), key=str)
    rng = np.random.default_rng(seed)
    n_held = min(int(round(fraction * len(uniq))), len(uniq) - 1) if len(uniq) > 1 else 0
    held = set(rng.permutation(uniq)[:n_held].tolist())
    train, test = np.flatnonzero(~np.isin(g, list(held))), np.flatnonzero(np.isin(g, list(held)))
    assert_disjoint_groups(g, train, test)
    return train, test


def missing_classes(labels: Sequence[int], idx: np.ndarray, n_classes: int) -> list[int]:
    """Classes with no sample among ``labels[idx]`` (a fold that cannot learn or test them)."""
    present = set(np.asarray(labels)[np.asarray(idx, int)].tolist())
    return [c for c in range(n_classes) if c not in present]


def pool_fold_predictions(
    n_samples: int, folds: Sequence[tuple[np.ndarray, np.ndarray]], fold_outputs: Sequence[np.ndarray]
) -> np.ndarray:
    """One prediction vector over all samples from per-fold test outputs (the paper pools folds).

    ``fold_outputs[i]`` holds the outputs for ``folds[i][1]`` in that order (1-D labels or 2-D scores).
    Every sample must be tested exactly once.
    """
    first = np.asarray(fold_outputs[0])
    pooled = np.zeros((n_samples,) + first.shape[1:], first.dtype)
    seen = np.zeros(n_samples, int)
    for (_, test), out in zip(folds, fold_outputs):
        out = np.asarray(out)
        if len(out) != len(test):
            raise ValueError(f"fold output has {len(out)} rows for {len(test)} test samples")
        pooled[test] = out
        seen[test] += 1
    if not np.all(seen == 1):
        raise ValueError(f"pooling needs every sample tested exactly once; counts seen: {sorted(set(seen.tolist()))}")
    return pooled

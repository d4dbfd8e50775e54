"""Subject-level splits of a frame set: test block, validation block, labelled training frames, unlabelled pool."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sonotell.data.frames import FrameSet
from sonotell.errors import ConfigError


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

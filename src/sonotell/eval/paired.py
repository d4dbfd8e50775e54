"""Paired comparisons "A vs B" with a 95 % bootstrap interval, and a verdict that says when they cannot be told apart.

Both systems must be scored on the same units: the same folds × seeds (``paired_difference``)
or the same test patients (``paired_bootstrap_by_group``, which resamples patients and
recomputes the metric of each system on the resample). The interval is the percentile
bootstrap interval of the mean difference A − B; when it contains 0 the verdict is
"not distinguishable".

Example:
    >>> r = paired_difference([0.70, 0.72, 0.69, 0.75], [0.60, 0.66, 0.61, 0.64], n_boot=500)
    >>> round(r["mean"], 4), r["verdict"]
    (0.0875, 'A better')
    >>> paired_difference([0.7, 0.6, 0.8], [0.6, 0.7, 0.8], n_boot=500)["verdict"]
    'not distinguishable'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

NOT_DISTINGUISHABLE = "not distinguishable"


def _verdict(low: float, high: float) -> str:
    if low > 0:
        return "A better"
    if high < 0:
        return "B better"
    return NOT_DISTINGUISHABLE


def _summary(diffs: np.ndarray, boots: np.ndarray, level: float, unit: str) -> dict:
    alpha = (1.0 - level) / 2.0
    low, high = (float(v) for v in np.quantile(boots, [alpha, 1.0 - alpha]))
    return {
        "mean": float(np.mean(diffs)) if diffs.ndim else float(diffs),
        "low": low,
        "high": high,
        "level": level,
        "n": int(diffs.size),
        "unit": unit,
        "n_boot": int(len(boots)),
        "verdict": _verdict(low, high),
    }


def paired_difference(
    a: Sequence[float],
    b: Sequence[float],
    *,
    n_boot: int = 10000,
    level: float = 0.95,
    seed: int = 0,
    unit: str = "fold x seed",
) -> dict:
    """Mean of the paired differences ``a[i] - b[i]`` (e.g. per fold × seed) with a bootstrap interval.

    Returns ``{mean, low, high, level, n, unit, n_boot, verdict}``; ``verdict`` is ``A better``,
    ``B better`` or ``not distinguishable`` (the interval contains 0).
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired scores need two 1-D arrays of one length, got {a.shape} and {b.shape}")
    if a.size < 2:
        raise ValueError("a paired interval needs at least 2 pairs")
    if np.isnan(a).any() or np.isnan(b).any():
        raise ValueError("paired scores contain NaN")
    d = a - b
    rng = np.random.default_rng(seed)
    boots = d[rng.integers(0, d.size, size=(int(n_boot), d.size))].mean(axis=1)
    return _summary(d, boots, level, unit)


def paired_bootstrap_by_group(
    y_true: Sequence,
    pred_a: Sequence,
    pred_b: Sequence,
    groups: Sequence,
    metric: Callable[[np.ndarray, np.ndarray], float],
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> dict:
    """``metric(A) - metric(B)`` on the same test items, patients resampled with replacement.

    Each resample draws as many groups (patients) as there are, keeps all their items, and
    scores both systems on exactly those items, so the interval reflects which patients
    happen to be tested while keeping the comparison paired.
    """
    t, pa, pb, g = (np.asarray(x) for x in (y_true, pred_a, pred_b, groups))
    if not (len(t) == len(pa) == len(pb) == len(g)):
        raise ValueError(
            f"y_true, pred_a, pred_b and groups differ in length: {len(t)}, {len(pa)}, {len(pb)}, {len(g)}"
        )
    uniq = sorted(set(g.tolist()), key=str)
    if len(uniq) < 2:
        raise ValueError("a patient bootstrap needs at least 2 groups")
    members = [np.flatnonzero(g == u) for u in uniq]
    rng = np.random.default_rng(seed)
    boots = np.empty(int(n_boot))
    for i in range(int(n_boot)):
        idx = np.concatenate([members[j] for j in rng.integers(0, len(members), size=len(members))])
        boots[i] = metric(t[idx], pa[idx]) - metric(t[idx], pb[idx])
    point = np.asarray(metric(t, pa) - metric(t, pb), np.float64)
    out = _summary(point, boots, level, "patient")
    out["n"] = len(uniq)
    return out


def describe(result: dict, scale: float = 100.0, unit_label: str = "pts") -> str:
    """``+4.1 pts [−1.2, +9.0] (not distinguishable)``: a table cell for one comparison."""
    return (
        f"{scale * result['mean']:+.1f} {unit_label} [{scale * result['low']:+.1f}, {scale * result['high']:+.1f}]"
        f" ({result['verdict']})"
    )

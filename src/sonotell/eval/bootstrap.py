"""Bootstrap over patients: how much a metric moves when the set of test patients changes.

The paper (Bonmati et al. 2021) reports mean ± std over 100 random subsets of 10 patients.

Example:
    >>> import numpy as np
    >>> from sonotell.eval.metrics import accuracy
    >>> r = bootstrap_by_group([0, 1, 1, 0], [0, 1, 0, 0], ["a", "b", "c", "d"], accuracy, n_subsets=5, subset_size=2)
    >>> len(r["values"])
    5
"""

from __future__ import annotations

import logging
from typing import Callable, Sequence

import numpy as np

log = logging.getLogger(__name__)


def bootstrap_by_group(
    y_true: Sequence,
    y_pred: Sequence,
    groups: Sequence,
    metric: Callable[[np.ndarray, np.ndarray], float],
    *,
    n_subsets: int = 100,
    subset_size: int = 10,
    replace: bool | None = None,
    seed: int = 0,
) -> dict:
    """``metric`` on ``n_subsets`` random subsets of ``subset_size`` groups; mean, std and values.

    Within one subset groups are drawn without replacement (the paper's "subsets of
    patients"); when there are fewer groups than ``subset_size`` they are drawn with
    replacement (a classic bootstrap) and the result says so. ``std`` is the population
    standard deviation (ddof=0) of the subset values.
    """
    t, p, g = np.asarray(y_true), np.asarray(y_pred), np.asarray(groups)
    if not (len(t) == len(p) == len(g)):
        raise ValueError(f"y_true, y_pred and groups differ in length: {len(t)}, {len(p)}, {len(g)}")
    uniq = np.array(sorted(set(g.tolist()), key=str), dtype=object)
    if len(uniq) == 0:
        raise ValueError("bootstrap over an empty set of groups")
    if replace is None:
        replace = len(uniq) < subset_size
        if replace:
            log.warning("only %d groups for subsets of %d: drawing with replacement", len(uniq), subset_size)
    size = subset_size if replace else min(subset_size, len(uniq))
    members = {u: np.flatnonzero(g == u) for u in uniq.tolist()}
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_subsets):
        chosen = rng.choice(len(uniq), size=size, replace=replace)
        idx = np.concatenate([members[uniq[i]] for i in chosen])
        values.append(float(metric(t[idx], p[idx])))
    v = np.array(values)
    return {
        "mean": float(v.mean()),
        "std": float(v.std()),
        "values": values,
        "n_subsets": n_subsets,
        "subset_size": int(size),
        "replace": bool(replace),
        "n_groups": int(len(uniq)),
    }

import numpy as np
import pytest

from sonotell.eval.bootstrap import bootstrap_by_group
from sonotell.eval.metrics import accuracy


def test_bootstrap_against_naive_loop():
    rng = np.random.default_rng(3)
    groups = np.repeat([f"p{i}" for i in range(15)], 4)
    t = rng.integers(0, 3, len(groups))
    p = np.where(rng.random(len(groups)) < 0.7, t, 0)
    r = bootstrap_by_group(t, p, groups, accuracy, n_subsets=100, subset_size=10, seed=7)
    # naive re-implementation with the same RNG stream
    uniq = sorted(set(groups.tolist()))
    gen = np.random.default_rng(7)
    vals = []
    for _ in range(100):
        pick = gen.choice(len(uniq), size=10, replace=False)
        mask = np.isin(groups, [uniq[i] for i in pick])
        vals.append(np.mean(t[mask] == p[mask]))
    assert r["mean"] == pytest.approx(np.mean(vals))
    assert r["std"] == pytest.approx(np.std(vals))
    assert r["subset_size"] == 10 and not r["replace"] and len(r["values"]) == 100


def test_perfect_predictions_have_zero_spread_and_few_groups_use_replacement():
    groups = ["a", "a", "b", "c"]
    r = bootstrap_by_group([0, 1, 1, 2], [0, 1, 1, 2], groups, accuracy, n_subsets=10, subset_size=10)
    assert r["mean"] == 1.0 and r["std"] == 0.0 and r["replace"] and r["n_groups"] == 3


def test_length_mismatch():
    with pytest.raises(ValueError, match="length"):
        bootstrap_by_group([0], [0, 1], ["a", "b"], accuracy)

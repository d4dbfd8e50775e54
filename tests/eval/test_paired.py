import numpy as np
import pytest

from sonotell.eval.metrics import accuracy
from sonotell.eval.paired import NOT_DISTINGUISHABLE, describe, paired_bootstrap_by_group, paired_difference


def test_paired_difference_mean_and_interval_by_hand():
    # differences 0.1, 0.1, 0.1, 0.1: every resample has mean 0.1, so the interval is [0.1, 0.1]
    r = paired_difference([0.8, 0.7, 0.6, 0.9], [0.7, 0.6, 0.5, 0.8], n_boot=200)
    assert r["mean"] == pytest.approx(0.1) and r["low"] == pytest.approx(0.1) and r["high"] == pytest.approx(0.1)
    assert r["verdict"] == "A better" and r["n"] == 4
    assert paired_difference([0.5, 0.5], [0.6, 0.7], n_boot=200)["verdict"] == "B better"


def test_interval_containing_zero_is_not_distinguishable():
    # differences +0.2 and -0.2: resample means are -0.2, 0 or +0.2, the 95 % interval spans 0
    r = paired_difference([0.9, 0.5], [0.7, 0.7], n_boot=2000, seed=1)
    assert r["mean"] == pytest.approx(0.0) and r["low"] == pytest.approx(-0.2) and r["high"] == pytest.approx(0.2)
    assert r["verdict"] == NOT_DISTINGUISHABLE
    assert describe(r) == "+0.0 pts [-20.0, +20.0] (not distinguishable)"


def test_paired_difference_is_deterministic_and_rejects_bad_input():
    a, b = np.random.default_rng(0).random(10), np.random.default_rng(1).random(10)
    assert paired_difference(a, b, seed=3) == paired_difference(a, b, seed=3)
    with pytest.raises(ValueError, match="one length"):
        paired_difference([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="at least 2"):
        paired_difference([1], [0])


def test_patient_bootstrap_keeps_pairs_and_groups():
    # 4 patients, 2 items each; A is right on every item, B on half the patients: accuracy 1.0 vs 0.5
    y = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    a = y.copy()
    b = np.array([0, 1, 0, 1, 1, 0, 1, 0])  # wrong on patients p2, p3
    g = np.array(["p0", "p0", "p1", "p1", "p2", "p2", "p3", "p3"])
    r = paired_bootstrap_by_group(y, a, b, g, accuracy, n_boot=500)
    assert r["mean"] == pytest.approx(0.5) and r["n"] == 4 and r["unit"] == "patient"
    # a resample of only p0/p1 gives a difference of 0, of only p2/p3 gives 1: the interval lies in [0, 1]
    assert 0.0 <= r["low"] <= r["mean"] <= r["high"] <= 1.0
    same = paired_bootstrap_by_group(y, a, a, g, accuracy, n_boot=100)
    assert same["low"] == same["high"] == 0.0 and same["verdict"] == NOT_DISTINGUISHABLE

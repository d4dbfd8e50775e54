"""Multi-label thresholds and reports against a worked example, brute force and sklearn."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from sklearn.metrics import precision_recall_fscore_support

from sonotell.eval.multilabel import best_thresholds, evaluate_multilabel, f1_at, multilabel_report


def test_worked_example():
    # liver: truth 1,1,0,1 pred 1,0,0,1 -> P 1, R 2/3, F1 .8 ; kidney: truth 0,1,1,0 pred 1,1,0,0 -> P .5 R .5 F1 .5
    y = np.array([[1, 0], [1, 1], [0, 1], [1, 0]])
    p = np.array([[1, 1], [0, 1], [0, 0], [1, 0]])
    rep = multilabel_report(y, p, ["liver", "kidney"])
    assert rep["per_class"]["liver"]["f1"] == pytest.approx(0.8)
    assert rep["per_class"]["kidney"]["precision"] == pytest.approx(0.5)
    # weighted by support 3 and 2
    assert rep["weighted"]["f1"] == pytest.approx((3 * 0.8 + 2 * 0.5) / 5)
    assert rep["macro"]["recall"] == pytest.approx((2 / 3 + 0.5) / 2)


def test_matches_sklearn_weighted_random():
    rng = np.random.default_rng(0)
    y = (rng.random((40, 5)) < 0.3).astype(int)
    p = (rng.random((40, 5)) < 0.4).astype(int)
    rep = multilabel_report(y, p, list("abcde"))
    pr, rc, f1, _ = precision_recall_fscore_support(y, p, average="weighted", zero_division=0)
    assert rep["weighted"]["precision"] == pytest.approx(pr)
    assert rep["weighted"]["recall"] == pytest.approx(rc)
    assert rep["weighted"]["f1"] == pytest.approx(f1)


def test_thresholds_maximise_f1_brute_force():
    rng = np.random.default_rng(1)
    y = (rng.random((30, 3)) < 0.4).astype(int)
    y[0] = 1
    s = np.clip(0.5 * y + 0.6 * rng.random((30, 3)), 0, 1)
    t = best_thresholds(y, s)
    for k in range(3):
        brute = max(f1_at(y[:, k], (s[:, k] >= c).astype(int)) for c in np.linspace(0, 1.01, 2000))
        assert f1_at(y[:, k], (s[:, k] >= t[k]).astype(int)) == pytest.approx(brute)


def test_class_that_never_occurs_warns_not_nan(caplog):
    y = np.array([[1, 0], [0, 0], [1, 0]])
    s = np.array([[0.8, 0.1], [0.2, 0.9], [0.7, 0.3]])
    with caplog.at_level(logging.WARNING, logger="sonotell.eval.multilabel"):
        rep = evaluate_multilabel(y, s, y, s, ["liver", "pancreas"])
    assert "'pancreas' has no positive" in caplog.text and "never present" in caplog.text
    assert rep["thresholds"]["pancreas"] == 0.5
    assert rep["weighted"]["f1"] == pytest.approx(1.0) and np.isfinite(rep["macro"]["f1"])


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="NaN"):
        best_thresholds(np.ones((2, 1)), np.array([[np.nan], [0.5]]))
    with pytest.raises(ValueError, match="differ in shape"):
        multilabel_report(np.ones((2, 2)), np.ones((3, 2)), ["a", "b"])


def test_threshold_sits_between_scores_and_all_positive_when_best():
    # every validation image is positive: the best rule is "all positive", threshold 0, not the lowest score
    y = np.array([[1], [1], [1]])
    s = np.array([[0.7], [0.8], [0.9]])
    assert best_thresholds(y, s)[0] == 0.0
    # separable scores: the threshold is the midpoint of the gap (0.4 + 0.6) / 2
    y2, s2 = np.array([[0], [0], [1], [1]]), np.array([[0.1], [0.4], [0.6], [0.9]])
    assert best_thresholds(y2, s2)[0] == pytest.approx(0.5)

"""Per-label AUROC, AP, thresholds, F1 and baselines against hand-computed values."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sonotell.eval.label_metrics import (
    auroc,
    average_precision,
    best_threshold,
    choose_thresholds,
    clip_level,
    f1_at,
    score_labels,
    train_priors,
)


def test_auroc_and_ap_by_hand():
    y = np.array([1, 0, 1, 0])
    s = np.array([0.9, 0.8, 0.7, 0.1])
    # pairs (pos, neg): (.9,.8) (.9,.1) (.7,.8) (.7,.1): 3 of 4 ordered
    assert auroc(y, s) == 0.75
    # ranks: .9 pos (P=1, R=.5), .8 neg, .7 pos (P=2/3, R=1): AP = .5*1 + .5*2/3
    assert average_precision(y, s) == pytest.approx(0.5 + 1 / 3)
    assert auroc(np.array([1, 0]), np.array([0.5, 0.5])) == 0.5  # a tie counts one half
    assert auroc(np.array([1, 1]), np.array([0.2, 0.3])) is None  # one class: undefined, not NaN
    assert average_precision(np.array([0, 0]), np.array([0.2, 0.3])) is None


def test_threshold_by_hand():
    # scores .9 .6 .3 .2 with targets 1 1 0 1: candidates 0, .25, .45, .75, ~.9
    y, s = np.array([1, 1, 0, 1]), np.array([0.9, 0.6, 0.3, 0.2])
    # t=0: P=3/4 R=1 F1=6/7; t=.25: 2/2 of 3, F1=.8; t=.45: same .8; so 0 wins (6/7 = .857)
    assert best_threshold(y, s) == 0.0
    y2 = np.array([1, 1, 0, 0])
    assert best_threshold(y2, s) == 0.45  # t=.45 separates perfectly; .25 keeps one false positive
    assert f1_at(y2, s, 0.45) == 1.0 and f1_at(y2, s, 0.0) == pytest.approx(2 / 3)
    assert best_threshold(np.array([0, 0]), np.array([0.1, 0.2])) is None


def test_clip_level_mean_of_frames_and_any_present():
    probs = np.array([[0.2, 0.9], [0.4, 0.7], [0.8, 0.1]])
    y = np.array([[0, -1], [1, -1], [-1, 0]])
    p, t, ids = clip_level(probs, y, ["a", "a", "b"])
    assert ids.tolist() == ["a", "b"]
    assert p.ravel().tolist() == pytest.approx([0.3, 0.8, 0.8, 0.1])
    assert t.tolist() == [[1, -1], [-1, 0]]


def test_scores_baselines_and_untrainable_label_by_hand():
    classes = ["x", "y"]
    probs = np.array([[0.9, 0.5], [0.8, 0.5], [0.7, 0.5], [0.1, 0.5]])
    y = np.array([[1, 0], [0, 0], [1, -1], [0, 0]])
    thresholds = {"frame": [0.75, None], "clip": [0.5, None]}
    prior = {"frame": [0.25, None], "clip": [0.5, None]}
    m = score_labels(probs, y, ["c1", "c1", "c2", "c3"], classes, thresholds, prior, [True, False], "truth")
    assert m["truth"] == "truth" and m["frames"] == 4 and m["clips"] == 3
    assert m["auroc"]["frame"]["x"] == 0.75 and m["auroc"]["frame"]["y"] is None
    # the not-trainable label "y" is None, never NaN; it has no positive in these frames either, so it
    # is undefined and left out of the macro
    assert m["auroc"]["frame"]["macro"] == 0.75
    assert m["f1"]["frame"]["x"] == pytest.approx(0.5)  # >= .75: .9 (tp) and .8 (fp); .7 missed
    base = m["baselines"]
    assert base["all_present"]["auroc"]["frame"]["x"] == 0.5
    assert base["all_present"]["average_precision"]["frame"]["x"] == 0.5  # prevalence 2/4
    assert base["all_present"]["f1"]["frame"]["x"] == pytest.approx(2 * 0.5 / 1.5)
    assert base["prior"]["f1"]["frame"]["x"] == pytest.approx(2 * 0.5 * 0.25 / 0.75)
    assert (
        m["not_trainable"] == ["y"]
        and m["f1"]["frame"]["y"] is None
        and m["baselines"]["prior"]["f1"]["frame"]["y"] is None
    )
    # an untrainable label that is present in the test frames counts at chance in the macro
    y3 = np.array([[1, 1], [0, 0], [1, 0], [0, 0]])
    m3 = score_labels(probs, y3, ["c1", "c1", "c2", "c3"], classes, thresholds, prior, [True, False], "truth")
    assert m3["auroc"]["frame"]["y"] is None and m3["auroc"]["frame"]["macro"] == pytest.approx((0.75 + 0.5) / 2)
    assert m3["average_precision"]["frame"]["macro"] == pytest.approx((0.5 + 1 / 3 + 0.25) / 2)
    assert m3["f1"]["frame"]["macro"] == pytest.approx(0.25)
    # clips: c1 mean .85 target 1; c2 .7 target 1; c3 .1 target 0 -> perfect ranking, threshold .5: F1 1
    assert m["auroc"]["clip"]["x"] == 1.0 and m["f1"]["clip"]["x"] == 1.0
    assert base["all_present"]["average_precision"]["clip"]["x"] == pytest.approx(2 / 3)
    text = json.dumps(m)
    assert "NaN" not in text


def test_thresholds_and_priors_from_training():
    probs = np.array([[0.9], [0.6], [0.3], [0.2]])
    y = np.array([[1], [1], [0], [-1]])
    t = choose_thresholds(probs, y, ["a", "b", "c", "d"])
    assert t["frame"] == [0.45] and t["clip"] == [0.45]
    pr = train_priors(y, ["a", "a", "c", "d"])
    assert pr["frame"] == [pytest.approx(2 / 3)] and pr["clip"] == [0.5]  # clips a (1), c (0); d unknown

"""Algorithm 1 (cluster -> soft multi-label) against a worked example, and its degenerate cases."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from sonotell.methods.cluster_match import (
    choose_k,
    combination_index,
    frequent_combinations,
    match_clusters,
    predict_from_clusters,
)

# organs: liver, kidney, gallbladder
DEV = np.array(
    [
        [1, 0, 0],
        [1, 0, 0],
        [1, 0, 0],  # liver alone x3
        [1, 0, 1],
        [1, 0, 1],  # liver + gallbladder x2
        [0, 1, 0],  # kidney alone x1 (rare)
    ]
)


def test_frequent_combinations_and_k():
    combos = frequent_combinations(DEV, min_count=2)
    assert combos.tolist() == [[1, 0, 0], [1, 0, 1]]
    assert choose_k(DEV, min_count=2) == 2
    assert choose_k(DEV, min_count=1) == 3


def test_soft_labels_worked_example():
    # cluster 0: three liver-only + one liver+gb -> (1, 0, .25); cluster 1: liver+gb and kidney -> (.5, .5, .5)
    assign = np.array([0, 0, 0, 0, 1, 1])
    soft = match_clusters(assign, DEV, k=2)
    assert np.allclose(soft, [[1, 0, 0.25], [0.5, 0.5, 0.5]])
    scores = predict_from_clusters(np.array([1, 0, 1]), soft)
    assert np.allclose(scores, soft[[1, 0, 1]])


def test_empty_cluster_gets_prior_with_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="sonotell.methods.cluster_match"):
        soft = match_clusters(np.array([0, 0, 0, 1, 1, 1]), DEV, k=3)
    assert np.allclose(soft[2], DEV.mean(axis=0))
    assert "1 of 3 clusters hold no dev image" in caplog.text


def test_all_in_one_cluster_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="sonotell.methods.cluster_match"):
        soft = match_clusters(np.zeros(6, int), DEV, k=4)
    assert "degenerate clustering" in caplog.text
    assert np.isfinite(soft).all()


def test_k_capped_at_number_of_samples(caplog):
    with caplog.at_level(logging.WARNING, logger="sonotell.methods.cluster_match"):
        assert choose_k(DEV, min_count=1, n_samples=2) == 2
    assert "K=3 frequent combinations > 2 images" in caplog.text


def test_combination_index_and_errors():
    combos = frequent_combinations(DEV, 2)
    assert combination_index(DEV, combos).tolist() == [0, 0, 0, 1, 1, -1]
    with pytest.raises(ValueError, match="no label combination occurs 5 times"):
        frequent_combinations(DEV, 5)
    with pytest.raises(ValueError, match=r"must lie in \[0, 2\)"):
        match_clusters(np.array([0, 0, 0, 0, 1, 2]), DEV, k=2)
    with pytest.raises(ValueError, match="0 or 1"):
        match_clusters(np.zeros(2, int), np.array([[0.5], [1.0]]), k=2)

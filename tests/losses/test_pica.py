"""PICA terms against hand-computed examples and naive loops."""

from __future__ import annotations

import logging
import math

import pytest
import torch

from sonotell.losses.pica import NegativeEntropyLoss, PICALoss, cluster_size_distribution, partition_uncertainty_index


def _naive_pui(p, q):
    n, k = p.shape
    out = torch.zeros(k, k, dtype=torch.float64)
    for i in range(k):
        for j in range(k):
            dot = sum(float(p[s, i]) * float(q[s, j]) for s in range(n))
            ni = math.sqrt(sum(float(p[s, i]) ** 2 for s in range(n)))
            nj = math.sqrt(sum(float(q[s, j]) ** 2 for s in range(n)))
            out[i, j] = dot / (ni * nj)
    return out


def _naive_lce(p, q):
    pui = _naive_pui(p, q)
    k = pui.shape[0]
    total = 0.0
    for i in range(k):
        denom = sum(math.exp(pui[i, j]) for j in range(k))
        total += -math.log(math.exp(pui[i, i]) / denom)
    return total / k


def test_pui_hand_example():
    # Columns of P: (1, 0, .5) and (0, 1, .5); P' equal. cos between the two columns = .25/1.25 = 0.2.
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    pui = partition_uncertainty_index(p, p)
    assert torch.allclose(pui, torch.tensor([[1.0, 0.2], [0.2, 1.0]]), atol=1e-6)
    # L_CE = -log(e^1 / (e^1 + e^0.2)) for each row.
    expected = math.log(1 + math.exp(0.2 - 1.0))
    assert PICALoss()(p, p).item() == pytest.approx(expected, abs=1e-6)


def test_lce_matches_naive_loop():
    g = torch.Generator().manual_seed(0)
    p = torch.softmax(torch.randn(7, 3, generator=g), dim=1)
    q = torch.softmax(torch.randn(7, 3, generator=g), dim=1)
    assert torch.allclose(partition_uncertainty_index(p, q).double(), _naive_pui(p, q), atol=1e-5)
    assert PICALoss()(p, q).item() == pytest.approx(_naive_lce(p, q), abs=1e-5)


def test_lce_gradient_finite_with_empty_cluster():
    logits = torch.tensor([[10.0, -30.0], [10.0, -30.0], [9.0, -30.0]], requires_grad=True)
    p = torch.softmax(logits, dim=1)
    loss = PICALoss()(p, p)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


def test_negative_entropy_hand_example():
    # Cluster masses 3 and 1 of 4: L_NE = log 2 + .75 log .75 + .25 log .25.
    p = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert torch.allclose(cluster_size_distribution(p), torch.tensor([0.75, 0.25]))
    expected = math.log(2) + 0.75 * math.log(0.75) + 0.25 * math.log(0.25)
    assert NegativeEntropyLoss()(p).item() == pytest.approx(expected, abs=1e-6)


def test_negative_entropy_all_in_one_cluster_is_log_k_not_nan():
    p = torch.tensor([[1.0, 0.0, 0.0]] * 4)
    assert NegativeEntropyLoss()(p).item() == pytest.approx(math.log(3), abs=1e-6)


def test_k_larger_than_batch_warns(caplog):
    p = torch.softmax(torch.zeros(2, 5), dim=1)
    with caplog.at_level(logging.WARNING, logger="sonotell.losses.pica"):
        loss = PICALoss()(p, p)
    assert torch.isfinite(loss)
    assert "K=5 clusters > 2 samples" in caplog.text


def test_nan_predictions_raise():
    p = torch.tensor([[float("nan"), 1.0]])
    with pytest.raises(ValueError, match="NaN"):
        PICALoss()(p, p)
    with pytest.raises(ValueError, match="shape"):
        PICALoss()(torch.ones(3, 2), torch.ones(4, 2))

"""L_SD against the Dirichlet log-density written out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from sonotell.losses.dirichlet_prior import DirichletPriorLoss
from sonotell.losses.pica import NegativeEntropyLoss


def _neg_log_dirichlet(sizes, alpha):
    k = len(sizes)
    log_b = k * math.lgamma(alpha) - math.lgamma(k * alpha)
    return log_b - sum((alpha - 1) * math.log(s) for s in sizes)


def test_unnormalised_is_dirichlet_nll_hand_example():
    # Sizes (.75, .25), alpha = 1.5: -log Dir = 2 lgamma(1.5) - lgamma(3) - .5 (log .75 + log .25).
    p = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    expected = 2 * math.lgamma(1.5) - math.lgamma(3.0) - 0.5 * (math.log(0.75) + math.log(0.25))
    assert DirichletPriorLoss(eps=0.5, normalise=False)(p).item() == pytest.approx(expected, abs=1e-5)
    assert expected == pytest.approx(_neg_log_dirichlet([0.75, 0.25], 1.5))


def test_normalised_is_zero_at_uniform_and_positive_elsewhere():
    g = torch.Generator().manual_seed(1)
    loss = DirichletPriorLoss(eps=0.1)
    assert loss(torch.full((6, 3), 1 / 3)).item() == pytest.approx(0.0, abs=1e-5)
    for _ in range(5):
        p = torch.softmax(3 * torch.randn(8, 3, generator=g), dim=1)
        sizes = (p.sum(0) / p.sum()).tolist()
        ref = _neg_log_dirichlet(sizes, 1.1) - _neg_log_dirichlet([1 / 3] * 3, 1.1)
        assert loss(p).item() == pytest.approx(ref, abs=1e-4) and ref > 0


def test_empty_cluster_is_large_but_finite_and_penalised_more_than_ne():
    p = torch.tensor([[1.0, 0.0]] * 4, requires_grad=True)
    sd = DirichletPriorLoss(eps=0.1)(p)
    sd.backward()
    assert torch.isfinite(sd) and torch.isfinite(p.grad).all()
    ne = NegativeEntropyLoss()(p.detach())
    # Near an empty cluster the prior's penalty keeps growing, while L_NE saturates at log K.
    assert sd.item() > ne.item()


def test_bad_eps_raises():
    with pytest.raises(ValueError, match="eps must be > 0"):
        DirichletPriorLoss(eps=0.0)

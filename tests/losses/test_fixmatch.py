"""Multi-label FixMatch unlabelled terms against naive loops."""

from __future__ import annotations

import math

import pytest
import torch

from sonotell.losses.fixmatch import MultiLabelFixMatchLoss, TwoHeadFixMatchLoss


def _bce(logit, target):
    p = 1 / (1 + math.exp(-logit))
    return -(target * math.log(p) + (1 - target) * math.log(1 - p))


def _naive_one_head(weak, strong, tau, mask):
    n, k = weak.shape
    total, used = 0.0, 0
    for i in range(n):
        probs = [1 / (1 + math.exp(-float(weak[i, c]))) for c in range(k)]
        conf = [max(p, 1 - p) >= tau for p in probs]
        if mask == "sample":
            conf = [all(conf)] * k
        for c in range(k):
            if conf[c]:
                total += _bce(float(strong[i, c]), 1.0 if probs[c] > 0.5 else 0.0)
                used += 1
    return total / (n * k), used / (n * k)


@pytest.mark.parametrize("mask", ["class", "sample"])
def test_one_head_matches_naive_loop(mask):
    g = torch.Generator().manual_seed(0)
    weak, strong = 4 * torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    out = MultiLabelFixMatchLoss(threshold=0.9, mask=mask)(weak, strong)
    ref, rate = _naive_one_head(weak, strong, 0.9, mask)
    assert out["loss"].item() == pytest.approx(ref, abs=1e-5)
    assert out["mask_rate"].item() == pytest.approx(rate)


def test_one_head_no_confident_pseudo_label_gives_zero_not_nan():
    out = MultiLabelFixMatchLoss(threshold=0.99)(torch.zeros(3, 2), torch.randn(3, 2))
    assert out["loss"].item() == 0.0 and out["mask_rate"].item() == 0.0


def test_one_head_gradient_only_through_strong():
    weak = torch.tensor([[5.0, -5.0]], requires_grad=True)
    strong = torch.zeros(1, 2, requires_grad=True)
    MultiLabelFixMatchLoss(threshold=0.9)(weak, strong)["loss"].backward()
    assert weak.grad is None and strong.grad is not None and strong.grad.abs().sum() > 0


def test_two_head_matches_naive_loop():
    g = torch.Generator().manual_seed(3)
    combos = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    weak, strong = 3 * torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    ml_strong = torch.randn(5, 3, generator=g)
    out = TwoHeadFixMatchLoss(combos, threshold=0.7, multilabel_weight=0.5)(weak, strong, ml_strong)
    total = 0.0
    for i in range(5):
        e = [math.exp(float(v)) for v in weak[i]]
        probs = [v / sum(e) for v in e]
        c = max(range(3), key=lambda j: probs[j])
        if probs[c] < 0.7:
            continue
        es = [math.exp(float(v)) for v in strong[i]]
        ce = -math.log(es[c] / sum(es))
        bce = sum(_bce(float(ml_strong[i, k]), float(combos[c, k])) for k in range(3)) / 3
        total += ce + 0.5 * bce
    assert out["loss"].item() == pytest.approx(total / 5, abs=1e-5)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="tau"):
        MultiLabelFixMatchLoss(threshold=0.3)
    with pytest.raises(ValueError, match="NaN"):
        MultiLabelFixMatchLoss()(torch.tensor([[float("nan")]]), torch.zeros(1, 1))
    with pytest.raises(ValueError, match="combination"):
        TwoHeadFixMatchLoss(torch.ones(1, 3))
    with pytest.raises(ValueError, match="outputs"):
        TwoHeadFixMatchLoss(torch.eye(3))(torch.zeros(2, 4), torch.zeros(2, 4), torch.zeros(2, 3))

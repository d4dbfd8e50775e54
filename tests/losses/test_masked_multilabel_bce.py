"""The masked multi-label BCE against a plain loop over entries."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sonotell.losses.masked_multilabel_bce import MaskedMultilabelBCE, positive_weights


def reference(logits, targets, pos_weight, unknown_weight):
    total, known = 0.0, 0
    for i in range(len(logits)):
        for k in range(len(logits[i])):
            p = 1 / (1 + math.exp(-logits[i][k]))
            y = targets[i][k]
            if y == 1:
                total += pos_weight[k] * -math.log(p)
                known += 1
            elif y == 0:
                total += -math.log(1 - p)
                known += 1
            else:
                total += unknown_weight * -math.log(1 - p)
    return total / max(known, 1)


@pytest.mark.parametrize("unknown_weight", [0.0, 0.1, 1.0])
def test_loss_matches_a_plain_loop(unknown_weight):
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (5, 3))
    targets = rng.choice([1, 0, -1], size=(5, 3))
    pw = np.array([2.0, 1.0, 4.5])
    got = MaskedMultilabelBCE(pw, unknown_weight)(torch.tensor(logits), torch.tensor(targets, dtype=torch.float32))
    assert float(got) == pytest.approx(reference(logits.tolist(), targets.tolist(), pw, unknown_weight), rel=1e-6)


def test_unknowns_are_masked_by_default_and_gradient_free():
    logits = torch.tensor([[3.0, -1.0]], requires_grad=True)
    loss = MaskedMultilabelBCE()(logits, torch.tensor([[-1.0, 1.0]]))
    loss.backward()
    assert float(loss.detach()) == pytest.approx(math.log(1 + math.exp(1.0)))
    assert logits.grad[0, 0] == 0 and logits.grad[0, 1] < 0


def test_all_unknown_batch_is_zero_not_nan():
    assert float(MaskedMultilabelBCE()(torch.zeros(2, 2), -torch.ones(2, 2))) == 0.0


def test_positive_weights_by_hand():
    y = np.array([[1, 0, -1], [0, 0, -1], [0, 1, -1], [0, 1, 1]])
    # label 0: 1 present, 3 absent -> 3; label 1: 2 vs 2 -> 1; label 2: no absent -> 1
    assert positive_weights(y).tolist() == [3.0, 1.0, 1.0]
    assert positive_weights(np.array([[1], [0], [0], [0], [0]]), max_weight=2.5).tolist() == [2.5]
    assert positive_weights(np.array([[0], [0]])).tolist() == [1.0]  # not trainable: weight 1, no crash

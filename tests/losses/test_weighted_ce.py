import math

import pytest
import torch

from sonotell.losses.weighted_ce import WeightedCrossEntropy, class_weights_from_labels


def test_weights_balanced_and_absent_class():
    w = class_weights_from_labels([0, 0, 0, 1, -1], 3)
    torch.testing.assert_close(w, torch.tensor([4 / 9, 4 / 3, 0.0]))
    with pytest.raises(ValueError):
        class_weights_from_labels([-1], 2)


def test_weighted_ce_against_naive_loop():
    torch.manual_seed(0)
    logits, target = torch.randn(6, 3), torch.tensor([0, 2, 1, 1, -1, 2])
    w = torch.tensor([0.5, 2.0, 1.0])
    num = den = 0.0
    for z, y in zip(logits.tolist(), target.tolist()):
        if y < 0:
            continue
        logp = z[y] - math.log(sum(math.exp(v) for v in z))
        num += -w[y].item() * logp
        den += w[y].item()
    assert WeightedCrossEntropy(w)(logits, target).item() == pytest.approx(num / den, rel=1e-5)
    with pytest.raises(ValueError, match="class weights"):
        WeightedCrossEntropy([1.0, 1.0])(logits, target)

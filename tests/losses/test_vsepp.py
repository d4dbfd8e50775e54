import pytest
import torch
import torch.nn.functional as F

from sonotell.losses.pairs import BatchTooSmallError
from sonotell.losses.vsepp import VSEPPLoss


def naive_vsepp(a, b, margin, hardest, ignore=None):
    a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
    n = len(a)
    total = 0.0
    for i in range(n):
        s_ii = float(a[i] @ b[i])
        neg = [j for j in range(n) if j != i and (ignore is None or not ignore[i][j])]
        c_b = [max(0.0, margin - s_ii + float(a[i] @ b[j])) for j in neg]
        neg_a = [j for j in range(n) if j != i and (ignore is None or not ignore[j][i])]
        c_a = [max(0.0, margin - s_ii + float(a[j] @ b[i])) for j in neg_a]
        if hardest:
            total += (max(c_b) if c_b else 0.0) + (max(c_a) if c_a else 0.0)
        else:
            total += sum(c_b) + sum(c_a)
    return total / n


@pytest.mark.parametrize("hardest", [True, False])
def test_matches_naive_loop(hardest):
    torch.manual_seed(0)
    a, b = torch.randn(6, 5, dtype=torch.float64), torch.randn(6, 5, dtype=torch.float64)
    got = float(VSEPPLoss(margin=0.3, max_violation=hardest)(a, b))
    assert got == pytest.approx(naive_vsepp(a, b, 0.3, hardest), rel=1e-9)


def test_ignore_mask_matches_naive_loop():
    torch.manual_seed(2)
    a, b = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    ignore = torch.zeros(4, 4, dtype=torch.bool)
    ignore[0, 1] = ignore[2, 3] = True
    got = float(VSEPPLoss(0.2)(a, b, ignore=ignore))
    assert got == pytest.approx(naive_vsepp(a, b, 0.2, True, ignore.tolist()), rel=1e-9)


def test_zero_when_positives_beat_every_negative_by_the_margin():
    assert float(VSEPPLoss(0.5)(torch.eye(3), torch.eye(3))) == 0.0


def test_batch_of_one():
    with pytest.raises(BatchTooSmallError):
        VSEPPLoss()(torch.randn(1, 4), torch.randn(1, 4))

import math

import pytest
import torch

from sonotell.losses.infonce import InfoNCE
from sonotell.losses.pairs import BatchTooSmallError


def naive_infonce(a, b, tau, valid=None, ignore=None):
    """Average over anchors of the two directions; ``ignore[i][j]`` drops the pair (a_i, b_j) as a negative."""
    n = len(a)
    skip = ignore if ignore is not None else [[False] * n for _ in range(n)]

    def cos(x, y):
        return float(x @ y) / (float(x.norm()) * float(y.norm()))

    total, count = 0.0, 0
    for i in range(n):
        if valid is not None and not valid[i]:
            continue
        den_ab = sum(math.exp(cos(a[i], b[j]) / tau) for j in range(n) if j == i or not skip[i][j])
        den_ba = sum(math.exp(cos(b[i], a[j]) / tau) for j in range(n) if j == i or not skip[j][i])
        pos = math.exp(cos(a[i], b[i]) / tau)
        total += 0.5 * (-math.log(pos / den_ab) - math.log(pos / den_ba))
        count += 1
    return total / count


def test_matches_naive_loop():
    torch.manual_seed(0)
    a, b = torch.randn(5, 4, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)
    assert float(InfoNCE(0.1)(a, b)) == pytest.approx(naive_infonce(a, b, 0.1), rel=1e-9)


def test_valid_and_ignore_masks_match_naive_loop():
    torch.manual_seed(1)
    a, b = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    valid = torch.tensor([True, False, True, True])
    ignore = torch.zeros(4, 4, dtype=torch.bool)
    ignore[0, 2] = ignore[3, 1] = True
    got = float(InfoNCE(0.5)(a, b, valid=valid, ignore=ignore))
    assert got == pytest.approx(naive_infonce(a, b, 0.5, valid.tolist(), ignore.tolist()), rel=1e-9)


def test_worked_example_two_orthogonal_pairs():
    # cos = 1 on the diagonal, 0 off it: loss = -log(e^(1/t) / (e^(1/t) + 1))
    a = torch.eye(2)
    assert float(InfoNCE(0.5)(a, a)) == pytest.approx(-math.log(math.e**2 / (math.e**2 + 1)), rel=1e-6)


def test_batch_of_one_is_a_clear_error():
    with pytest.raises(BatchTooSmallError, match="at least 2"):
        InfoNCE()(torch.randn(1, 3), torch.randn(1, 3))

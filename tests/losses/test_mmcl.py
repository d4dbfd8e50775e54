import math

import pytest
import torch

from sonotell.losses.mmcl import MMCLoss
from sonotell.losses.pairs import BatchTooSmallError


def naive_nce(p, q, tau):
    n = len(p)
    cos = lambda x, y: float(x @ y) / (float(x.norm()) * float(y.norm()))  # noqa: E731
    total = 0.0
    for i in range(n):
        ab = -math.log(math.exp(cos(p[i], q[i]) / tau) / sum(math.exp(cos(p[i], q[j]) / tau) for j in range(n)))
        ba = -math.log(math.exp(cos(q[i], p[i]) / tau) / sum(math.exp(cos(q[i], p[j]) / tau) for j in range(n)))
        total += 0.5 * (ab + ba)
    return total / n


def test_terms_and_weighting_match_naive_reference():
    torch.manual_seed(0)
    mmcl = MMCLoss(dim=4, tau=0.1, pi=0.5).double()
    f_v, f_i, f_a = (torch.randn(5, 4, dtype=torch.float64) for _ in range(3))
    with torch.no_grad():
        out = mmcl(f_v, f_i, f_a)
        f_va = mmcl.fuse(f_v, f_a)
    # eq. 3, computed by hand: F_va = F_a + FC2(ReLU(FC1([F_v; F_a])))
    fc1, fc2 = mmcl.visual_to_audio[0], mmcl.visual_to_audio[2]
    with torch.no_grad():
        by_hand = torch.stack([f_a[k] + fc2(torch.relu(fc1(torch.cat([f_v[k], f_a[k]])))) for k in range(5)])
    torch.testing.assert_close(f_va, by_hand)
    l_v, l_i, l_vi = naive_nce(f_v, f_va, 0.1), naive_nce(f_i, f_va, 0.1), naive_nce(f_v, f_i, 0.1)
    assert float(out["l_v"]) == pytest.approx(l_v, rel=1e-9)
    assert float(out["l_i"]) == pytest.approx(l_i, rel=1e-9)
    assert float(out["l_vi"]) == pytest.approx(l_vi, rel=1e-9)
    assert float(out["loss"]) == pytest.approx(0.5 * 0.5 * (l_v + l_i) + 0.5 * l_vi, rel=1e-9)


def test_pi_one_keeps_only_fused_terms_and_bad_pi():
    torch.manual_seed(1)
    out = MMCLoss(dim=3, pi=1.0)(torch.randn(3, 3), torch.randn(3, 3), torch.randn(3, 3))
    torch.testing.assert_close(out["loss"], 0.5 * (out["l_v"] + out["l_i"]))
    with pytest.raises(ValueError):
        MMCLoss(dim=3, pi=1.5)


def test_batch_of_one():
    with pytest.raises(BatchTooSmallError):
        MMCLoss(dim=3)(torch.randn(1, 3), torch.randn(1, 3), torch.randn(1, 3))

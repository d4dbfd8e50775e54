import pytest
import torch
import torch.nn.functional as F

from sonotell.losses.mmsl import MMSLoss
from sonotell.losses.pairs import BatchTooSmallError


def test_matches_naive_projection_and_hardest_negative_loop():
    torch.manual_seed(0)
    mmsl = MMSLoss(dim_a=5, dim_b=3, embed_dim=4, margin=0.2).double().train()
    a, b = torch.randn(6, 5, dtype=torch.float64), torch.randn(6, 3, dtype=torch.float64)
    got = float(mmsl(a, b))

    def fc_bn(x, fc, bn):  # training-mode BatchNorm: batch statistics, biased variance
        z = x @ fc.weight.T + fc.bias
        z = (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + bn.eps)
        return z * bn.weight + bn.bias

    pa = F.normalize(fc_bn(a, mmsl.project_a[0], mmsl.project_a[1]), dim=1)
    pb = F.normalize(fc_bn(b, mmsl.project_b[0], mmsl.project_b[1]), dim=1)
    total = 0.0
    for i in range(6):
        s = float(pa[i] @ pb[i])
        total += max(max(0.0, 0.2 - s + float(pa[i] @ pb[j])) for j in range(6) if j != i)
        total += max(max(0.0, 0.2 - s + float(pa[j] @ pb[i])) for j in range(6) if j != i)
    assert got == pytest.approx(total / 6, rel=1e-7)


def test_batch_of_one():
    with pytest.raises((BatchTooSmallError, ValueError)):
        MMSLoss(3, 3, 2).train()(torch.randn(1, 3), torch.randn(1, 3))

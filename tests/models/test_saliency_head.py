"""Saliency head: shapes, a KL loss against a naive loop, and that it learns a toy target."""

import math

import torch
from torch import nn

from sonotell.eval.saliency import cc
from sonotell.models.saliency_head import SaliencyHead, SaliencyModel, saliency_distribution, saliency_kl_loss


def test_head_shapes_and_distribution():
    head = SaliencyHead(in_channels=8, hidden=4, depth=2)
    logits = head(torch.rand(3, 8, 5, 6))
    assert logits.shape == (3, 5, 6)
    dist = saliency_distribution(logits)
    torch.testing.assert_close(dist.sum(dim=(1, 2)), torch.ones(3))


def test_kl_loss_matches_naive_loop():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4)
    target = torch.rand(2, 3, 4)
    expected = 0.0
    for b in range(2):
        z = sum(math.exp(v) for v in logits[b].flatten().tolist())
        t = target[b].flatten().tolist()
        s = sum(t)
        for lv, tv in zip(logits[b].flatten().tolist(), t):
            q, p = tv / s, math.exp(lv) / z
            expected += q * math.log(q / p)
    assert saliency_kl_loss(logits, target).item() == __import__("pytest").approx(expected / 2, rel=1e-5)


def test_kl_loss_downsamples_a_fine_target():
    logits = torch.zeros(1, 2, 2)
    target = torch.zeros(1, 8, 8)
    target[0, :4, :4] = 1.0  # all mass in the top-left cell
    # uniform prediction vs a one-cell target: KL = log(4)
    assert abs(saliency_kl_loss(logits, target).item() - math.log(4)) < 1e-5


class _TinyEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, stride=2, padding=1)

    def feature_map(self, x):
        return torch.relu(self.conv(x[:, None] if x.ndim == 3 else x))


def test_saliency_model_learns_to_find_the_bright_blob():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    imgs = torch.rand(32, 16, 16, generator=g) * 0.2
    targets = torch.zeros(32, 16, 16)
    for i in range(32):
        y, x = torch.randint(2, 12, (2,), generator=g).tolist()
        imgs[i, y : y + 3, x : x + 3] += 0.8
        targets[i, y : y + 3, x : x + 3] = 1.0
    model = SaliencyModel(_TinyEncoder(), in_channels=8, hidden=8)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    first = None
    for _ in range(60):
        loss = saliency_kl_loss(model(imgs), targets)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.6 * first
    model.eval()
    pred = model.predict(imgs[:4])
    assert pred.shape == (4, 16, 16)
    torch.testing.assert_close(pred.sum(dim=(1, 2)), torch.ones(4))
    assert cc(pred[0], targets[0]) > 0.3


def test_encoder_without_feature_map_is_refused():
    import pytest

    with pytest.raises(TypeError, match="feature_map"):
        SaliencyModel(nn.Linear(2, 2), in_channels=2)

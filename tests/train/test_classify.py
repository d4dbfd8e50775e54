"""train.ClassificationTask: the one classification task, checked against hand-computed losses."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from sonotell.train import ClassificationTask, masked_bce


def test_single_label_is_weighted_cross_entropy_by_hand():
    net = nn.Identity()
    w = torch.tensor([1.0, 3.0])
    task = ClassificationTask(net, class_weights=w)
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    out = task.step({"frames": logits, "label": torch.tensor([0, 1])})
    nll0 = -math.log(math.exp(2) / (math.exp(2) + 1))
    nll1 = -math.log(math.e / (math.e + 1))
    assert out["loss"].item() == pytest.approx((1 * nll0 + 3 * nll1) / 4, rel=1e-6)
    assert out["accuracy"].item() == 1.0


def test_tuple_batch_custom_loss_and_metric_name():
    task = ClassificationTask(nn.Identity(), lambda logits, y: logits.sum() * 0 + 7.0, metric="acc")
    out = task.step((torch.tensor([[0.0, 1.0]]), torch.tensor([0])))
    assert out["loss"] == 7.0 and out["acc"].item() == 0.0


def test_forward_function_feeds_several_inputs():
    def forward(model, batch):
        return model(batch["a"]) + batch["b"]

    task = ClassificationTask(nn.Identity(), forward=forward)
    out = task.step({"a": torch.tensor([[0.0, 0.0]]), "b": torch.tensor([[5.0, 0.0]]), "label": torch.tensor([0])})
    assert out["accuracy"].item() == 1.0


def test_multilabel_ignores_unknown_targets():
    task = ClassificationTask(nn.Identity(), multilabel=True)
    logits = torch.tensor([[0.0, 3.0, -2.0]])
    y = torch.tensor([[1.0, -1.0, 0.0]])
    out = task.step({"frames": logits, "label": y})
    by_hand = (math.log(2) + math.log(1 + math.exp(-2))) / 2  # entries 0 and 2 only
    assert out["loss"].item() == pytest.approx(by_hand, rel=1e-6)
    assert out["accuracy"].item() == pytest.approx(0.5)  # entry 0 (p=0.5 -> not > 0) wrong, entry 2 right
    assert masked_bce(logits, torch.full_like(y, -1.0)).item() == 0.0

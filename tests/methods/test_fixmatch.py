"""FixMatch recipe: the task's loss is supervised + lambda_u * the unlabelled term of its variant."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from sonotell.losses.fixmatch import MultiLabelFixMatchLoss, TwoHeadFixMatchLoss
from sonotell.methods.finetune_multilabel import MultiLabelNet, build_encoder, encoder_state_from
from sonotell.methods.fixmatch import FixMatchTask
from sonotell.train import save_model_checkpoint

TINY_ENCODER = {"widths": [4, 8, 8, 8], "blocks": [1, 1, 1, 1]}
COMBOS = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])


def _batch():
    g = torch.Generator().manual_seed(0)
    return {
        "labelled": {
            "image": torch.rand(3, 1, 32, 32, generator=g),
            "labels": torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]),
            "combination": torch.tensor([0, 1, -1]),
        },
        "unlabelled": {"image": torch.rand(4, 1, 32, 32, generator=g)},
    }


@pytest.mark.parametrize("variant", ["one_head", "two_head"])
def test_loss_decomposes(variant):
    torch.manual_seed(0)
    net = MultiLabelNet(build_encoder(TINY_ENCODER), 2, 3 if variant == "two_head" else 0)
    task = FixMatchTask(
        net, variant, COMBOS if variant == "two_head" else None, config={"threshold": 0.5, "unlabelled_weight": 2.5}
    )
    task.eval()  # no augmentation, BatchNorm frozen: weak == strong view, outputs recomputable
    batch = _batch()
    out = task.step(batch)
    lab, u = batch["labelled"], batch["unlabelled"]["image"]
    o = net(lab["image"])
    sup = F.binary_cross_entropy_with_logits(o["multilabel"], lab["labels"])
    ou = net(u)
    if variant == "two_head":
        sup = sup + F.cross_entropy(o["combination"], lab["combination"], ignore_index=-1)
        unl = TwoHeadFixMatchLoss(COMBOS, 0.5)(ou["combination"], ou["combination"], ou["multilabel"])["loss"]
    else:
        unl = MultiLabelFixMatchLoss(0.5)(ou["multilabel"], ou["multilabel"])["loss"]
    assert out["loss_supervised"].item() == pytest.approx(
        F.binary_cross_entropy_with_logits(o["multilabel"], lab["labels"]).item(), rel=1e-5
    )
    assert out["loss"].item() == pytest.approx((sup + 2.5 * unl).item(), rel=1e-5)


def test_training_step_uses_augmentation_and_backprops():
    torch.manual_seed(0)
    net = MultiLabelNet(build_encoder(TINY_ENCODER), 2)
    task = FixMatchTask(net, "one_head", config={"threshold": 0.5}, seed=3)
    task.train()
    views, augment = [], task.augment

    def spy(x, strong=False):
        out = augment(x, strong=strong)
        views.append((strong, float((out - x).abs().max())))
        return out

    task.augment = spy
    batch = _batch()
    out = task.step(batch)
    out["loss"].backward()
    # the unlabelled images get a weak and a strong view, each different from the image itself
    assert {strong for strong, _ in views} == {False, True} and all(change > 0 for _, change in views)
    assert torch.isfinite(out["loss"]) and float(out["loss_unlabelled"]) >= 0
    # and the loss reaches the encoder as well as the head
    assert net.multilabel_head.weight.grad is not None and float(next(net.encoder.parameters()).grad.abs().sum()) > 0


def test_bad_variants():
    net = MultiLabelNet(build_encoder(TINY_ENCODER), 2)
    with pytest.raises(ValueError, match="variant"):
        FixMatchTask(net, "three_head")
    with pytest.raises(ValueError, match="combination table"):
        FixMatchTask(net, "two_head", COMBOS)


def test_encoder_from_cluster_checkpoint(tmp_path):
    from sonotell.methods.deep_cluster import ClusterNet

    torch.manual_seed(0)
    clusterer = ClusterNet(build_encoder(TINY_ENCODER), k=3)
    save_model_checkpoint(tmp_path / "c.pt", clusterer, "deep_cluster")
    net = MultiLabelNet(build_encoder(TINY_ENCODER), 2)
    net.encoder.load_state_dict(encoder_state_from(tmp_path / "c.pt"))
    for a, b in zip(net.encoder.state_dict().values(), clusterer.encoder.state_dict().values()):
        assert torch.equal(a, b)

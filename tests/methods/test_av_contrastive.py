import pytest
import torch
import torch.nn.functional as F

from sonotell.losses.pairs import BatchTooSmallError
from sonotell.methods.pretrain import load_pretrained, pretrain
from sonotell.models import create_model
from sonotell.models.av_contrastive import AVContrastive
from tests.methods.ssl_helpers import synthetic_batch

torch.set_num_threads(1)


def make(**kw) -> AVContrastive:
    torch.manual_seed(0)
    return create_model("av_contrastive", None, embed_dim=16, **kw)


def test_self_paced_contrastive_term_matches_hand_selection():
    net = make(
        self_paced={"start_fraction": 0.5, "epochs_to_all": 2}, weights={"correspondence": 0.0, "contrastive": 1.0}
    )
    net.eval()  # fixed BatchNorm statistics so two forward passes agree
    batch = synthetic_batch(6)  # no empty text except index 1
    out = net.losses(batch)
    v = net.video(batch["frames"])
    a = net.audio(batch["audio"])
    pv, pa = net.video_proj(v), net.audio_proj(a)
    from sonotell.losses.pairs import PairPlan, speech_mask

    plan = PairPlan(batch["scan_id"], batch["time_s"], speech_mask(batch))
    per = net.contrastive(pv, pa, ignore=plan.ignore)[plan.anchors]
    aff = F.cosine_similarity(pv, pa, dim=1)[plan.anchors]
    keep = aff.argsort(descending=True)[:3]  # ceil(0.5 * 5 anchors)
    torch.testing.assert_close(out["con"], per[keep].mean())
    torch.testing.assert_close(out["loss"], out["con"])
    net.set_epoch(2)
    out_all = net.losses(batch)
    torch.testing.assert_close(out_all["con"], per.mean())
    assert float(out_all["spl_fraction"]) == 1.0


def test_without_self_paced_and_gradients():
    net = make(self_paced={"enabled": False})
    out = net.losses(synthetic_batch(4))
    assert "spl_fraction" not in out
    out["loss"].backward()
    assert all(any(p.grad is not None for p in m.parameters()) for m in (net.video, net.audio, net.fuse))


def test_batch_of_one():
    with pytest.raises(BatchTooSmallError):
        make().losses(synthetic_batch(1))


def test_pretrain_small(tiny_bench, tmp_path):
    ckpt = pretrain(
        "av_contrastive", tiny_bench, tmp_path / "avc", overrides=["train.epochs=2", "train.batch_size=4"], seed=0
    )
    model = load_pretrained(ckpt, expected="av_contrastive")
    assert model.encode_video(torch.rand(1, 8, 64, 64)).shape == (1, model.video.out_dim)


def test_pretrain_refuses_to_resume_another_run(tiny_bench, tmp_path):
    from sonotell.errors import ConfigError

    out = tmp_path / "avc"
    pretrain("av_contrastive", tiny_bench, out, overrides=["train.epochs=1", "train.batch_size=4"], seed=0)
    (out / "encoder.pt").unlink()  # an interrupted run: Lightning checkpoints, no encoder yet
    with pytest.raises(ConfigError, match="another pretraining run.*seed"):
        pretrain("av_contrastive", tiny_bench, out, overrides=["train.epochs=1", "train.batch_size=4"], seed=1)

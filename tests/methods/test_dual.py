import pytest
import torch

from sonotell.losses.pairs import BatchTooSmallError
from sonotell.methods.pretrain import load_pretrained, pretrain
from sonotell.models import create_model
from sonotell.models.dual import Dual
from tests.methods.ssl_helpers import synthetic_batch

torch.set_num_threads(1)


def make(**kw) -> Dual:
    torch.manual_seed(0)
    return create_model("dual", None, embed_dim=16, **kw)


def test_loss_is_mmcl_plus_weighted_mmsl_and_reaches_every_encoder():
    net = make(mmsl_weight=0.3)
    out = net.losses(synthetic_batch(6))
    torch.testing.assert_close(out["loss"], out["mmcl"] + 0.3 * out["mmsl"])
    torch.testing.assert_close(out["mmcl"], 0.5 * 0.5 * (out["l_v"] + out["l_i"]) + 0.5 * out["l_vi"])
    out["loss"].backward()
    for enc in (net.video, net.image, net.audio):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in enc.parameters())


def test_paper_hyper_parameters_are_the_defaults():
    net = make()
    assert net.mmcl.nce.temperature == 0.1 and net.mmcl.pi == 0.5


def test_image_is_a_frame_of_the_clip():
    net = make()
    frames = torch.rand(3, 8, 16, 16)
    net.eval()
    torch.testing.assert_close(net.sample_image(frames), frames[:, 4])
    net.train()
    picked = net.sample_image(frames)
    for b in range(3):
        assert any(torch.equal(picked[b], frames[b, t]) for t in range(8))


def test_encoders_and_no_speech():
    net = make().eval()
    assert net.encode_image(torch.rand(2, 64, 64)).shape == (2, net.image.out_dim)
    assert net.encode_video(torch.rand(2, 8, 64, 64)).shape == (2, net.video.out_dim)
    out = make().losses(synthetic_batch(4, texts=["", "", "", "liver"]))
    assert float(out["mmsl"]) == 0.0 and torch.isfinite(out["loss"])  # one speech clip: nothing to rank
    with pytest.raises(BatchTooSmallError):
        make().losses(synthetic_batch(1))


def test_pretrain_small(tiny_bench, tmp_path):
    ckpt = pretrain("dual", tiny_bench, tmp_path / "dual", overrides=["train.epochs=1", "train.batch_size=4"], seed=0)
    assert isinstance(load_pretrained(ckpt, expected="dual"), Dual)

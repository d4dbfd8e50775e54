import pytest
import torch
from torch import nn

from sonotell.errors import InputError
from sonotell.models import create_model
from sonotell.models.matrix_fusion import MatrixFusion, matrix_product
from sonotell.models.vgg import VGGBranch
from sonotell.models.voice_cnn import KeywordNet, VoiceCNN
from sonotell.models.voice_label import VoiceLabelNet, load_branch, save_branch

SMALL = dict(
    num_classes=3,
    in_frames=25,
    image_widths=[4, 4, 8, 8, 8],
    image_pools=4,
    spec_bins=64,
    voice_widths=[4, 4, 4, 4, 8, 8],
    channels=8,
)


def test_vgg_has_13_conv_bn_relu_and_no_fc():
    net = VGGBranch(25)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 13 and all(c.kernel_size == (3, 3) for c in convs)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == 13
    assert not any(isinstance(m, nn.Linear) for m in net.modules())
    assert [c.out_channels for c in convs][-1] == 512


def test_voice_cnn_six_convs_kernel3_and_time_pooling():
    net = VoiceCNN(1024, [4, 4, 4, 4, 4, 8])
    convs = [m for m in net.modules() if isinstance(m, nn.Conv1d)]
    assert len(convs) == 6 and all(c.kernel_size == (3,) for c in convs)
    assert net(torch.zeros(1, 1024, 66)).shape == (1, 8, 8)  # 66 -> 33 -> 16 -> 8
    with pytest.raises(ValueError, match="six"):
        VoiceCNN(10, [4, 4])


def test_matrix_product_matches_naive_loop():
    q, p = torch.randn(2, 3, 4), torch.randn(2, 3, 2, 3)
    c = matrix_product(q, p)
    pf = p.flatten(2)
    for b in range(2):
        for r in range(3):
            ref = torch.outer(q[b, r], pf[b, r])  # C_r = q_r p_r^T
            torch.testing.assert_close(c[b, r], ref)
    with pytest.raises(ValueError, match="same batch and channel"):
        matrix_product(torch.randn(2, 3, 4), torch.randn(2, 5, 4))


def test_fusion_head_is_conv_then_global_average():
    fuse = MatrixFusion(channels=3, num_classes=2, kernel_size=1)
    q, p = torch.randn(1, 3, 4), torch.randn(1, 3, 5)
    w, b = fuse.head.weight[:, :, 0, 0], fuse.head.bias
    c = matrix_product(q, p)[0]  # (3, 4, 5)
    expected = torch.stack([(w[k, :, None, None] * c).sum(0).mean() + b[k] for k in range(2)])
    torch.testing.assert_close(fuse(q, p)[0], expected)


@pytest.mark.parametrize("mode", ["image_voice", "image", "voice"])
def test_variants_forward_and_backward(mode):
    net = VoiceLabelNet(mode=mode, **SMALL)
    frames, spec = torch.rand(2, 25, 32, 32), torch.rand(2, 64, 66)
    out = net(frames if mode != "voice" else None, spec if mode != "image" else None)
    assert out.shape == (2, 3)
    out.sum().backward()
    assert (net.image_branch is None) == (mode == "voice") and (net.voice_branch is None) == (mode == "image")


def test_reduced_input_and_wrong_frame_count():
    net = VoiceLabelNet(**{**SMALL, "in_frames": 3})
    assert net(torch.rand(1, 3, 32, 32), torch.rand(1, 64, 66)).shape == (1, 3)
    with pytest.raises(InputError, match="3 frames"):
        net(torch.rand(1, 25, 32, 32), torch.rand(1, 64, 66))
    with pytest.raises(InputError, match="64 bins"):
        net(torch.rand(1, 3, 32, 32), torch.rand(1, 32, 66))


def test_configs_build_through_factory():
    small = create_model("voice_label", "small", num_classes=3)
    paper = create_model("voice_label", "paper")
    assert paper.num_classes == 5 and paper.fusion.head.in_channels == 1024
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in paper.parameters())


def test_pretrained_voice_branch_frozen_with_join_conv(tmp_path):
    kw = KeywordNet(n_words=4, in_channels=64, widths=[4, 4, 4, 4, 6, 6])
    path = save_branch(kw.voice, tmp_path / "kw.pt")
    net = VoiceLabelNet(pretrained_voice=str(path), **SMALL)
    torch.testing.assert_close(net.voice_branch.features[0].weight, kw.voice.features[0].weight)
    assert not any(p.requires_grad for p in net.voice_branch.parameters())
    assert net.voice_join.in_channels == 6 and net.voice_join.out_channels == 8
    net.train()
    assert not net.voice_branch.training  # frozen BN statistics stay frozen
    before = net.voice_branch.features[1].running_mean.clone()
    net(torch.rand(2, 25, 32, 32), torch.rand(2, 64, 66)).sum().backward()
    torch.testing.assert_close(net.voice_branch.features[1].running_mean, before)


def test_pretrained_from_foreign_state_dict_and_bad_checkpoints(tmp_path):
    img = VGGBranch(25, [4, 4, 8, 8, 8], n_pools=4)
    torch.save({"state_dict": {f"model.enc.{k}": v for k, v in img.state_dict().items()}}, tmp_path / "l.ckpt")
    net = VoiceLabelNet(pretrained_image=str(tmp_path / "l.ckpt"), **SMALL)
    torch.testing.assert_close(net.image_branch.features[0].weight, img.features[0].weight)
    save_branch(img, tmp_path / "img.pt")
    with pytest.raises(InputError, match="holds a vgg branch"):
        load_branch(tmp_path / "img.pt", "voice_cnn", {})
    with pytest.raises(InputError, match="not found"):
        VoiceLabelNet(pretrained_voice=str(tmp_path / "none.pt"), **SMALL)
    torch.save(
        {"state_dict": {f"enc.{k}": v for k, v in VGGBranch(25, [4, 4, 4, 4, 4], n_pools=4).state_dict().items()}},
        tmp_path / "w.ckpt",
    )
    with pytest.raises(InputError, match="does not fit"):
        VoiceLabelNet(pretrained_image=str(tmp_path / "w.ckpt"), **SMALL)

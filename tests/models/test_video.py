import pytest
import torch

from sonotell.models import create_model
from sonotell.models.video import Conv2Plus1D, R2Plus1DEncoder, _mid_channels

torch.set_num_threads(1)


def test_small_config_shapes_and_feature_map():
    net = create_model("video_r2plus1d", "small").eval()
    x = torch.rand(2, 8, 64, 64)
    assert net(x).shape == (2, net.out_dim)
    fmap = net.feature_map(x)
    assert fmap.shape == (2, net.out_dim, 4, 4)
    # the pooled embedding is the mean of the time-averaged map
    torch.testing.assert_close(fmap.mean(dim=(2, 3)), net(x))


def test_mid_channels_match_paper_formula():
    # R(2+1)D: M = floor(t d^2 N_in N_out / (d^2 N_in + t N_out)); 64->64 with 3x3x3 gives 144
    assert _mid_channels(64, 64, 3, 3) == 144
    conv = Conv2Plus1D(64, 64)
    full = 3 * 3 * 3 * 64 * 64
    factorised = sum(p.numel() for p in conv.parameters() if p.ndim == 5)
    assert abs(factorised - full) / full < 0.01


def test_paper_config_is_r2plus1d_18_sized():
    net = create_model("video_r2plus1d", "paper")
    n = sum(p.numel() for p in net.parameters())
    assert 30e6 < n < 35e6  # torchvision's r2plus1d_18 has 31.5M with a 400-way head
    assert [len(s) for s in net.stages] == [2, 2, 2, 2]


def test_accepts_channel_dim_and_rejects_bad_shape():
    net = R2Plus1DEncoder(widths=(4, 4, 8, 8), blocks=(1, 1, 1, 1)).eval()
    x = torch.rand(1, 8, 32, 32)
    torch.testing.assert_close(net(x), net(x.unsqueeze(1)))
    with pytest.raises(ValueError, match="expects"):
        net(torch.rand(2, 3, 8, 32, 32))


def test_gradients_reach_the_stem():
    net = R2Plus1DEncoder(widths=(4, 4, 8, 8), blocks=(1, 1, 1, 1))
    net(torch.rand(2, 4, 32, 32)).sum().backward()
    assert net.stem[0].weight.grad.abs().sum() > 0


def test_spatial_strides_give_a_finer_feature_map():
    import torch

    from sonotell.models.video import R2Plus1DEncoder

    kw = dict(widths=(4, 8, 8, 8), blocks=(1, 1, 1, 1))
    x = torch.rand(1, 4, 64, 64)
    # stem /2, then each stage after the first divides by its spatial stride
    assert R2Plus1DEncoder(**kw).feature_map(x).shape[-2:] == (4, 4)
    assert R2Plus1DEncoder(**kw, spatial_strides=(2, 2, 1)).feature_map(x).shape[-2:] == (8, 8)
    assert R2Plus1DEncoder(**kw, spatial_strides=(2, 1, 1)).feature_map(x).shape[-2:] == (16, 16)
    with pytest.raises(ValueError, match="spatial_strides"):
        R2Plus1DEncoder(**kw, spatial_strides=(2, 2))

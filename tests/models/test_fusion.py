import pytest
import torch

from sonotell.errors import ConfigError
from sonotell.models.fusion import ConcatFusion, SpatialFusion, build_fusion

torch.set_num_threads(1)


def test_spatial_fusion_against_a_loop():
    torch.manual_seed(0)
    fuse = SpatialFusion(visual_dim=3, other_dim=2, out_dim=4, pool="max")
    head = torch.nn.Linear(4, 1)
    v, a = torch.randn(2, 3, 4, 5), torch.randn(2, 2)
    proj = fuse.project(a)
    dot = torch.empty(2, 4, 5)
    feats = torch.empty(2, 4, 4, 5)
    for b in range(2):
        for y in range(4):
            for x in range(5):
                fused = torch.stack([v[b, c, y, x] * proj[b, c] for c in range(3)])
                dot[b, y, x] = fused.sum()
                feats[b, :, y, x] = fuse.mlp(fused)  # FC -> ReLU -> FC at every position
    torch.testing.assert_close(fuse.response_map(v, a), dot)
    torch.testing.assert_close(fuse.position_features(v, a), feats)
    torch.testing.assert_close(fuse(v, a), feats.amax(dim=(2, 3)))
    torch.testing.assert_close(fuse.response_map(v, a, head=head), head(feats.permute(0, 2, 3, 1)).squeeze(-1))
    mean_fuse = SpatialFusion(3, 2, 4, pool="mean")
    torch.testing.assert_close(mean_fuse(v, a), mean_fuse.position_features(v, a).mean(dim=(2, 3)))


def test_spatial_response_peaks_where_the_visual_feature_matches():
    fuse = SpatialFusion(visual_dim=2, other_dim=2, out_dim=2)
    with torch.no_grad():
        fuse.project.weight.copy_(torch.eye(2))
        fuse.project.bias.zero_()
    v = torch.zeros(1, 2, 3, 3)
    v[0, 0, 1, 2] = 1.0  # channel 0 active at (1, 2)
    v[0, 1, 0, 0] = 1.0  # channel 1 active at (0, 0)
    r = fuse.response_map(v, torch.tensor([[1.0, 0.0]]))
    assert divmod(int(r.argmax()), 3) == (1, 2)


def test_concat_fusion_pools_maps_and_concatenates():
    fuse = ConcatFusion(3, 2, 4)
    v, a = torch.randn(2, 3, 4, 4), torch.randn(2, 2)
    torch.testing.assert_close(fuse(v, a), fuse.mlp(torch.cat([v.mean(dim=(2, 3)), a], 1)))


def test_factory_errors():
    with pytest.raises(ConfigError, match="unknown fusion"):
        build_fusion("sum", 2, 2, 2)
    with pytest.raises(ValueError, match="feature map"):
        SpatialFusion(2, 2, 2)(torch.randn(2, 2), torch.randn(2, 2))


def test_matrix_fusion_adapter_matches_the_outer_product_by_hand():
    pytest.importorskip("sonotell.models.matrix_fusion")
    torch.manual_seed(0)
    fuse = build_fusion("matrix", visual_dim=3, other_dim=2, out_dim=4)
    v, a = torch.randn(2, 3, 5, 5), torch.randn(2, 2)
    q = fuse.project(a)  # (2, 3): one voice "step" per channel
    joint = v * q[:, :, None, None]  # q_r p_r^T with a length-1 q is the map scaled by q_r
    torch.testing.assert_close(fuse(v, a), fuse.inner.head(joint.flatten(2).unsqueeze(2)).mean(dim=(2, 3)))
    assert fuse(v.mean(dim=(2, 3)), a).shape == (2, 4)  # pooled vectors work too


def test_smooth_max_matches_a_naive_loop():
    import math

    from sonotell.models.fusion import smooth_max

    torch.manual_seed(0)
    s = torch.randn(2, 3, 4, 5)
    for r in (0.5, 5.0):
        got = smooth_max(s, "lse", r=r)
        for b in range(2):
            for c in range(3):
                vals = [float(s[b, c, y, x]) for y in range(4) for x in range(5)]
                naive = math.log(sum(math.exp(r * v) for v in vals) / len(vals)) / r
                assert float(got[b, c]) == pytest.approx(naive, abs=1e-5)
    got = smooth_max(s, "topk", k=0.15)  # 15 % of 20 positions = 3
    for b in range(2):
        for c in range(3):
            vals = sorted((float(v) for v in s[b, c].flatten()), reverse=True)
            assert float(got[b, c]) == pytest.approx(sum(vals[:3]) / 3, abs=1e-6)
    torch.testing.assert_close(smooth_max(s, "max"), s.amax(dim=(2, 3)))
    torch.testing.assert_close(smooth_max(s, "mean"), s.mean(dim=(2, 3)))
    # the two ends of log-sum-exp pooling
    d = s.double()  # float64: (1/r) log(...) at r = 1e-4 loses float32's digits
    torch.testing.assert_close(smooth_max(d, "lse", r=1e4), d.amax(dim=(2, 3)), atol=1e-3, rtol=0)
    torch.testing.assert_close(smooth_max(d, "lse", r=1e-4), d.mean(dim=(2, 3)), atol=1e-3, rtol=0)


def test_smooth_max_passes_gradient_to_every_position_and_rejects_unknown_kinds():
    from sonotell.errors import ConfigError
    from sonotell.models.fusion import smooth_max

    s = torch.tensor([[0.0, 1.0], [2.0, 3.0]], requires_grad=True)
    smooth_max(s, "lse", r=1.0).backward()
    assert torch.all(s.grad > 0) and s.grad[1, 1] == s.grad.max()  # softmax weights: the highest most
    with pytest.raises(ConfigError, match="unknown smooth max"):
        smooth_max(s, "median")

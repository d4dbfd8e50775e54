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

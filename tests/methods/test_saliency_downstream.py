"""Saliency prediction downstream: ground truth from spoken organs' masks, CV of a saliency head."""

import numpy as np
import pytest
import torch
from torch import nn

from sonotell.errors import ConfigError
from sonotell.methods import saliency_downstream as S
from tests.methods.test_localise import _FakeBench


def test_ground_truth_is_the_region_of_what_was_said(tmp_path):
    bench = _FakeBench(tmp_path)
    data = S.saliency_data_from_benchmark(bench, size=(32, 32), window_s=0.0)
    # masks on even frames at 10 fps; kidney said 0.2-0.5 s -> frames 2, 4; liver 1.0-1.4 s -> 10, 12, 14
    assert sorted(data.frame_indices.tolist()) == [2, 4, 10, 12, 14]
    for j, fix, dens in zip(data.frame_indices, data.fixations, data.densities):
        region = (slice(4, 12), slice(4, 12)) if j >= 10 else (slice(20, 28), slice(20, 28))  # liver / kidney at 32x32
        assert fix[region].all() and fix.sum() == 64
        assert dens.sum() == pytest.approx(1.0, abs=1e-5) and dens[region].sum() > 0.5
    assert data.images.shape == (5, 32, 32) and data.images.dtype == np.uint8


class _Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, stride=2, padding=1)

    def feature_map(self, x):
        return torch.relu(self.conv(x[:, None]))


def _blobs(n_subjects=3, per=6, size=24, seed=0) -> S.SaliencyData:
    from sonotell.eval.saliency import mask_to_density

    rng = np.random.default_rng(seed)
    imgs, dens, fixs, subs = [], [], [], []
    for s in range(n_subjects):
        for _ in range(per):
            y, x = rng.integers(2, size - 8, 2)
            img = rng.normal(40, 10, (size, size))
            img[y : y + 6, x : x + 6] += 150
            mask = np.zeros((size, size), np.uint8)
            mask[y : y + 6, x : x + 6] = 1
            imgs.append(np.clip(img, 0, 255).astype(np.uint8))
            fixs.append(mask.astype(bool))
            dens.append(mask_to_density(mask, 1, sigma_px=1.0).astype(np.float32))
            subs.append(f"p{s}")
    n = len(imgs)
    return S.SaliencyData(np.stack(imgs), np.stack(dens), np.stack(fixs), np.array(subs), np.array(subs), np.arange(n))


def test_saliency_cv_learns_blobs_and_reports_every_metric(tmp_path):
    data = _blobs()
    folds = S.subject_folds(data)
    assert len(folds) == 3
    cfg = {"epochs": 25, "batch_size": 6, "hidden": 8, "optimizer": {"name": "adam", "lr": 0.02}}
    res = S.saliency_cv(_Tiny, data, folds, cfg, tmp_path / "sal", seed=0)
    assert set(S.METRICS) <= set(res["per_fold"][0])
    assert res["auc_judd_mean"] > 0.8 and res["cc_mean"] > 0.3 and res["nss_mean"] > 1.0
    assert res["comp_mean"] == pytest.approx(np.mean([f["comp"] for f in res["per_fold"]]))
    again = S.saliency_cv(_Tiny, data, folds, cfg, tmp_path / "sal", seed=0)  # cached
    assert again == res


def test_video_and_recipe_encoders_give_frame_feature_maps():
    from sonotell.models.video import R2Plus1DEncoder

    video = R2Plus1DEncoder(widths=(4, 8, 8, 8), blocks=(1, 1, 1, 1))
    recipe_like = nn.Module()
    recipe_like.video = video
    for m in (video, recipe_like):
        assert S.FrameFeatures(m).feature_map(torch.rand(2, 32, 32)).shape == (2, 8, 2, 2)
    with pytest.raises(ConfigError, match="no feature map"):
        S.FrameFeatures(nn.Linear(2, 2))

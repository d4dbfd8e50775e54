"""Saliency metrics against worked examples (computed by hand) and a naive AUC-Judd loop."""

import math

import numpy as np
import pytest

from sonotell.eval import saliency as S


def test_kl_worked_examples():
    uniform = np.ones((2, 2))
    point = np.array([[1.0, 0.0], [0.0, 0.0]])
    assert S.kl_divergence(uniform, point) == pytest.approx(math.log(4), rel=1e-9)
    # q = [.5, .5, 0, 0], p = [.75, .25, 0, 0]: .5 log(.5/.75) + .5 log(.5/.25) = .5 log(4/3)
    pred = np.array([[3.0, 1.0], [0.0, 0.0]])
    gt = np.array([[2.0, 2.0], [0.0, 0.0]])
    assert S.kl_divergence(pred, gt) == pytest.approx(0.5 * math.log(4 / 3), rel=1e-9)
    assert S.kl_divergence(gt, gt) == pytest.approx(0.0, abs=1e-12)


def test_cc_worked_examples():
    p = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert S.cc(p, np.array([[4.0, 3.0], [2.0, 1.0]])) == pytest.approx(-1.0)
    # deviations (-1.5,-.5,.5,1.5) vs (-1.5,.5,-.5,1.5): cov 4, variances 5 -> 0.8
    assert S.cc(p, np.array([[1.0, 3.0], [2.0, 4.0]])) == pytest.approx(0.8)
    assert S.cc(np.ones((2, 2)), p) == 0.0  # flat prediction: no information


def test_sim_worked_examples():
    # [0,1,2,3] -> [0,1/6,1/3,1/2]; [3,2,1,0] -> [1/2,1/3,1/6,0]; sum of minima = 1/3
    assert S.sim(np.array([[0.0, 1.0, 2.0, 3.0]]), np.array([[3.0, 2.0, 1.0, 0.0]])) == pytest.approx(1 / 3)
    m = np.array([[0.2, 0.9], [0.4, 0.1]])
    assert S.sim(m, m) == pytest.approx(1.0)
    assert S.sim(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])) == pytest.approx(0.0)


def test_nss_worked_examples():
    p = np.array([[1.0, 2.0], [3.0, 4.0]])  # mean 2.5, sample std sqrt(5/3)
    sd = math.sqrt(5 / 3)
    assert S.nss(p, np.array([[0, 0], [0, 1]])) == pytest.approx(1.5 / sd)
    assert S.nss(p, np.array([[0, 0], [1, 1]])) == pytest.approx(1.0 / sd)
    assert math.isnan(S.nss(p, np.zeros((2, 2))))


def _auc_judd_naive(pred, fix):
    """Slow, obvious reference: loop over thresholds and pixels."""
    p = [float(v) for v in pred.ravel()]
    f = [bool(v) for v in fix.ravel()]
    lo, hi = min(p), max(p)
    p = [(v - lo) / (hi - lo) for v in p]
    threshes = sorted([v for v, is_f in zip(p, f) if is_f], reverse=True)
    n_fix, n_pix = len(threshes), len(p)
    tp, fp = [0.0], [0.0]
    for i, t in enumerate(threshes, start=1):
        above = sum(1 for v in p if v >= t)
        tp.append(i / n_fix)
        fp.append((above - i) / (n_pix - n_fix))
    tp.append(1.0)
    fp.append(1.0)
    return sum((fp[k] - fp[k - 1]) * (tp[k] + tp[k - 1]) / 2 for k in range(1, len(tp)))


def test_auc_judd_worked_example_and_naive_loop():
    # normalised [0, 3/7, 5/7, 1]; fixations at 3/7 and 1:
    # ROC points (0,0) (0,.5) (.5,1) (1,1) -> area .375 + .5 = .875
    pred = np.array([[0.1, 0.4, 0.6, 0.8]])
    fix = np.array([[0, 1, 0, 1]])
    assert S.auc_judd(pred, fix) == pytest.approx(0.875)
    assert S.auc_judd(np.array([[0.9, 0.1, 0.5, 0.3]]), np.array([[1, 0, 0, 0]])) == pytest.approx(1.0)
    rng = np.random.default_rng(3)
    for _ in range(5):
        pred = rng.random((6, 7))
        fix = rng.random((6, 7)) > 0.8
        fix[0, 0] = True
        assert S.auc_judd(pred, fix) == pytest.approx(_auc_judd_naive(pred, fix), abs=1e-12)


def test_auc_judd_ties_and_random_is_near_chance():
    rng = np.random.default_rng(0)
    fix = rng.random((64, 64)) > 0.9
    scores = [S.auc_judd(rng.random((64, 64)), fix) for _ in range(20)]
    assert abs(np.mean(scores) - 0.5) < 0.03
    quantised = np.round(rng.random((8, 8)) * 3)  # many ties
    f = rng.random((8, 8)) > 0.7
    assert S.auc_judd(quantised, f) == pytest.approx(_auc_judd_naive(quantised, f), abs=1e-12)


def test_comp_and_all_metrics_on_a_perfect_and_a_wrong_map():
    mask = np.zeros((32, 32), np.int64)
    mask[8:16, 8:16] = 2
    fix = S.mask_to_fixations(mask, 2)
    dens = S.mask_to_density(mask, 2, sigma_px=2.0)
    good = S.saliency_metrics(dens, dens, fix)
    bad = S.saliency_metrics(np.roll(dens, 16, axis=1), dens, fix)
    assert good["comp"] == pytest.approx(good["nss"] + good["cc"] + good["sim"] + good["auc_judd"] - good["kl"])
    assert good["cc"] == pytest.approx(1.0) and good["sim"] == pytest.approx(1.0)
    assert good["kl"] == pytest.approx(0.0, abs=1e-9)
    assert good["comp"] > bad["comp"] and bad["auc_judd"] < 0.6 < good["auc_judd"]
    assert S.comp({"kl": 0.5, "nss": 2.0, "auc_judd": 0.9, "cc": 0.6, "sim": 0.5}) == pytest.approx(3.5)


def test_small_prediction_is_upsampled_to_ground_truth():
    gt = np.zeros((8, 8))
    gt[:4, :4] = 1
    pred = np.array([[1.0, 0.0], [0.0, 0.0]])
    assert S.cc(pred, gt) > 0.7
    assert S.auc_judd(pred, gt) > 0.9


def test_density_from_mask_sums_to_one_and_peaks_inside():
    mask = np.zeros((20, 20), np.uint8)
    mask[5:10, 12:18] = 3
    d = S.mask_to_density(mask, [3], sigma_px=3.0)
    assert d.sum() == pytest.approx(1.0)
    y, x = np.unravel_index(np.argmax(d), d.shape)
    assert mask[y, x] == 3
    mean = S.mean_saliency_metrics([d, d], [d, d], [S.mask_to_fixations(mask, 3), np.zeros_like(d)])
    assert mean["cc"] == pytest.approx(1.0) and np.isfinite(mean["nss"])

"""Saliency metrics: KL, NSS, AUC (Judd), CC, SIM and the composite ``comp``.

Definitions follow the MIT saliency benchmark (Bylinskii et al., "What do different
evaluation metrics tell us about saliency models?", TPAMI 2019) and its reference MATLAB
code, which is what the ultrasound gaze papers (Droste et al. 2019; Jiao et al. 2020, 2023)
report. Two kinds of ground truth:

* a *density* map (continuous, e.g. blurred gaze or a blurred organ mask) for KL, CC, SIM;
* a *fixation* map (binary: where people looked / the organ's pixels) for NSS and AUC-Judd.

No gaze data exist for sonotell's benchmarks, so :func:`mask_to_fixations` and
:func:`mask_to_density` turn a benchmark's organ mask (or a spoken-term region) into both.

``comp`` (the Show from Tell tables' "Comp."): one number that summarises the five metrics.
The paper's text was not available to us offline, so we define it as the direction-corrected
sum ``NSS + CC + SIM + AUC - KL`` (every term "higher is better" after the sign flip of KL);
see docs/downstream.md. It is a convenience for ranking, never a replacement for the five.

Example:
    >>> import numpy as np
    >>> gt = np.zeros((4, 4)); gt[1, 1] = 1
    >>> pred = np.zeros((4, 4)); pred[1, 1] = 1
    >>> round(cc(pred, gt), 3)
    1.0
"""

from __future__ import annotations

import numpy as np

EPS = float(np.finfo(np.float64).eps)  # the reference code's ``eps``


def _as_map(x, like: np.ndarray | None = None) -> np.ndarray:
    arr = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"a saliency map must be 2-D (H, W), got shape {arr.shape}")
    if like is not None and arr.shape != like.shape:
        from sonotell.eval.localisation import upsample_map

        arr = upsample_map(arr, like.shape).astype(np.float64)
    return arr


def _as_distribution(m: np.ndarray) -> np.ndarray:
    total = m.sum()
    return m / total if total > 0 else m


def kl_divergence(pred, gt_density) -> float:
    """KL(gt || pred) of the two maps seen as distributions; 0 is perfect, lower is better.

    ``sum(gt * log(eps + gt / (pred + eps)))`` after each map is scaled to sum to 1.

    Example:
        >>> round(kl_divergence(np.array([[1.0, 1.0]]), np.array([[1.0, 0.0]])), 4)  # log(2)
        0.6931
    """
    g = _as_map(gt_density)
    p = _as_distribution(_as_map(pred, g))
    q = _as_distribution(g)
    return float(np.sum(q * np.log(EPS + q / (p + EPS))))


def cc(pred, gt_density) -> float:
    """Pearson linear correlation between the two maps, in [-1, 1]; higher is better.

    Example:
        >>> cc(np.array([[0.0, 1.0, 2.0]]), np.array([[0.0, 2.0, 4.0]]))
        1.0
    """
    g = _as_map(gt_density)
    p = _as_map(pred, g)
    ps, gs = p.std(), g.std()
    if ps == 0 or gs == 0:
        return 0.0  # a flat map carries no information about where to look
    return float(np.mean((p - p.mean()) / ps * (g - g.mean()) / gs))


def sim(pred, gt_density) -> float:
    """Similarity (histogram intersection) of the min-max normalised distributions, in [0, 1].

    Example:
        >>> sim(np.array([[1.0, 0.0]]), np.array([[1.0, 1.0]]))  # gt stays flat: [0.5, 0.5]
        0.5
    """
    g = _as_map(gt_density)
    p = _as_map(pred, g)
    return float(np.minimum(_minmax_distribution(p), _minmax_distribution(g)).sum())


def _minmax_distribution(m: np.ndarray) -> np.ndarray:
    # The reference code min-max scales a non-zero map, then makes it sum to 1; a flat non-zero
    # map would divide by zero there, so we keep it flat (uniform) instead.
    if not np.any(m):
        return m
    span = m.max() - m.min()
    m = (m - m.min()) / span if span > 0 else np.ones_like(m)
    return m / m.sum()


def nss(pred, gt_fixations) -> float:
    """Normalised scanpath saliency: mean of the standardised prediction at fixated pixels.

    The prediction is standardised with the sample standard deviation (N - 1), like the
    reference code (MATLAB ``std``). 0 is chance; higher is better.

    Example:
        >>> nss(np.array([[0.0, 0.0, 0.0, 4.0]]), np.array([[0, 0, 0, 1]]))  # (4-1)/2
        1.5
    """
    f = _as_map(gt_fixations) > 0
    if not f.any():
        return float("nan")
    p = _as_map(pred, f.astype(np.float64))
    s = p.std(ddof=1) if p.size > 1 else 0.0
    if s == 0:
        return 0.0
    return float(((p - p.mean()) / s)[f].mean())


def auc_judd(pred, gt_fixations, jitter: bool = False, seed: int = 0) -> float:
    """Area under the ROC curve (Judd): thresholds at the prediction's values on fixations.

    True-positive rate: fraction of fixated pixels at or above a threshold; false-positive
    rate: fraction of the other pixels at or above it. 0.5 is chance, 1 perfect.
    ``jitter`` adds the reference code's tiny noise to break ties in flat regions.

    Example:
        >>> auc_judd(np.array([[0.9, 0.1, 0.5, 0.3]]), np.array([[1, 0, 0, 0]]))
        1.0
    """
    f = (_as_map(gt_fixations) > 0).ravel()
    if not f.any():
        return float("nan")
    p = _as_map(pred, f.reshape(np.shape(gt_fixations)).astype(np.float64)).ravel()
    if jitter:
        p = p + np.random.default_rng(seed).random(p.shape) / 1e7
    span = p.max() - p.min()
    p = (p - p.min()) / span if span > 0 else np.zeros_like(p)
    at_fix = np.sort(p[f])[::-1]
    n_fix, n_pix = len(at_fix), len(p)
    if n_fix == n_pix:
        return float("nan")  # every pixel fixated: no negatives, no ROC
    sorted_all = np.sort(p)
    # number of pixels >= each threshold, via one binary search per threshold
    above = n_pix - np.searchsorted(sorted_all, at_fix, side="left")
    tp = np.concatenate([[0.0], np.arange(1, n_fix + 1) / n_fix, [1.0]])
    fp = np.concatenate([[0.0], (above - np.arange(1, n_fix + 1)) / (n_pix - n_fix), [1.0]])
    return float(np.trapezoid(tp, fp) if hasattr(np, "trapezoid") else np.trapz(tp, fp))


def comp(scores: dict) -> float:
    """Composite score ``NSS + CC + SIM + AUC - KL`` from a dict of the five metrics.

    Example:
        >>> comp({"kl": 0.5, "nss": 2.0, "auc_judd": 0.9, "cc": 0.6, "sim": 0.5})
        3.5
    """
    return float(scores["nss"] + scores["cc"] + scores["sim"] + scores["auc_judd"] - scores["kl"])


def saliency_metrics(pred, gt_density, gt_fixations) -> dict[str, float]:
    """All six metrics for one map: ``{"kl", "nss", "auc_judd", "cc", "sim", "comp"}``.

    Example:
        >>> gt = np.zeros((8, 8)); gt[2:4, 2:4] = 1
        >>> sorted(saliency_metrics(gt, gt, gt))
        ['auc_judd', 'cc', 'comp', 'kl', 'nss', 'sim']
    """
    out = {
        "kl": kl_divergence(pred, gt_density),
        "nss": nss(pred, gt_fixations),
        "auc_judd": auc_judd(pred, gt_fixations),
        "cc": cc(pred, gt_density),
        "sim": sim(pred, gt_density),
    }
    out["comp"] = comp(out)
    return out


def mean_saliency_metrics(preds, gt_densities, gt_fixations) -> dict[str, float]:
    """Average of :func:`saliency_metrics` over maps (NaNs, e.g. empty fixations, are skipped)."""
    rows = [saliency_metrics(p, d, f) for p, d, f in zip(preds, gt_densities, gt_fixations)]
    if not rows:
        return {}
    return {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]}


def mask_to_fixations(mask: np.ndarray, class_ids) -> np.ndarray:
    """Binary map of the pixels whose class is in ``class_ids`` (the "fixated" organ)."""
    mask = np.asarray(mask)
    return np.isin(mask, np.atleast_1d(class_ids)).astype(np.float64)


def mask_to_density(mask: np.ndarray, class_ids, sigma_px: float = 8.0) -> np.ndarray:
    """A gaze-like density: the organ's binary map blurred by a Gaussian, summing to 1.

    Blurring stands in for the spread of real gaze around a target; ``sigma_px`` = 0 keeps
    the binary region.
    """
    from scipy.ndimage import gaussian_filter

    fix = mask_to_fixations(mask, class_ids)
    dens = gaussian_filter(fix, sigma=sigma_px, mode="constant") if sigma_px > 0 else fix
    return _as_distribution(dens)

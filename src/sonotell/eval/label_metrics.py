"""Honest per-label metrics of a multi-label classifier: AUROC, average precision and F1, with baselines.

Targets are (N, K) with 1 present, 0 absent and -1 unknown; an unknown entry is left out of that
label's figures. Figures are given per label and as the macro mean over the labels where they are
defined, at frame level and at clip level (each clip counted once: its score is the **mean** of
its frames' probabilities; its target is present when any frame is present, else absent when any
frame is absent, else unknown).

- **AUROC** (rank statistic, ties count one half) and **average precision** (sklearn's step-wise
  AP, no interpolation) need no threshold.
- **F1** is taken at a per-label threshold chosen on the *training* split (``choose_thresholds``),
  the same one ``sonotell predict`` applies later.
- **Baselines** beside every figure: ``all_present`` (every entry said present: a constant score,
  AUROC 0.5, AP = prevalence p, F1 = 2p / (1 + p)) and ``prior`` (present at random with the
  training split's rate q: AUROC 0.5, AP = p in expectation, F1 = 2pq / (p + q) in expectation).
- A label with no positive in the training split is **not trainable**: its figures are None (never
  NaN), it is listed in ``not_trainable``, and the macro counts it at chance (the all-present
  baseline's AUROC and AP, F1 0) so a model does not gain by learning fewer labels; a label with no
  positive or no negative among the evaluated entries is listed in ``undefined`` with None for the
  figures that need both.

Example:
    >>> y = np.array([[1], [0], [1], [0]]); s = np.array([[0.9], [0.8], [0.7], [0.1]])
    >>> auroc(y[:, 0], s[:, 0]), round(average_precision(y[:, 0], s[:, 0]), 4)
    (0.75, 0.8333)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

CLIP_AGGREGATE = "mean"


def auroc(y: np.ndarray, s: np.ndarray) -> float | None:
    """Area under the ROC curve of binary targets ``y`` and scores ``s`` (ties count 1/2); None if one class."""
    from scipy.stats import rankdata

    t = np.asarray(y) == 1
    n1, n0 = int(t.sum()), int((~t).sum())
    if not n1 or not n0:
        return None
    r = rankdata(np.asarray(s, np.float64))
    return float((r[t].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def average_precision(y: np.ndarray, s: np.ndarray) -> float | None:
    """Average precision (sum over thresholds of precision x recall step, as sklearn); None without a positive."""
    from sklearn.metrics import average_precision_score

    t = np.asarray(y) == 1
    if not t.any():
        return None
    return float(average_precision_score(t.astype(int), np.asarray(s, np.float64)))


def f1_at(y: np.ndarray, s: np.ndarray, threshold: float | None) -> float | None:
    """Binary F1 of ``s >= threshold``; None without a threshold (not trainable) or a positive."""
    t = np.asarray(y) == 1
    if threshold is None or not t.any():
        return None
    p = np.asarray(s) >= threshold
    tp = float((t & p).sum())
    return 2 * tp / float(t.sum() + p.sum())


def best_threshold(y: np.ndarray, s: np.ndarray) -> float | None:
    """The threshold with the best F1 on (training) entries: midpoints between scores, ties to the highest.

    None when there is no positive. Candidates are 0 (all present), midpoints between sorted distinct
    scores, and just above the maximum, so the threshold never sits on a single training score.

    Example:
        >>> best_threshold(np.array([1, 1, 0]), np.array([0.9, 0.6, 0.3]))
        0.45
    """
    t = np.asarray(y) == 1
    if not t.any():
        return None
    s = np.asarray(s, np.float64)
    u = np.unique(s)
    cands = np.concatenate([[0.0], (u[:-1] + u[1:]) / 2, [u[-1] + 1e-6]])
    best, best_t = -1.0, 0.0
    for c in cands:  # ascending: ">=" keeps the highest threshold among ties
        f = f1_at(t, s, float(c))
        if f >= best:
            best, best_t = f, float(c)
    return round(best_t, 6)


def clip_level(probs: np.ndarray, targets: np.ndarray, clip_ids: Sequence) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(clip probabilities = mean of frames, clip targets = any present / else any absent / else unknown, ids)."""
    ids = np.asarray(clip_ids)
    uniq = np.array(sorted(set(ids.tolist()), key=str))
    p = np.zeros((len(uniq), probs.shape[1]), np.float64)
    y = np.full((len(uniq), probs.shape[1]), -1, np.int8)
    for i, c in enumerate(uniq):
        m = ids == c
        p[i] = probs[m].mean(0)
        t = targets[m]
        y[i] = np.where((t == 1).any(0), 1, np.where((t == 0).any(0), 0, -1))
    return p, y, uniq


def choose_thresholds(probs: np.ndarray, targets: np.ndarray, clip_ids: Sequence) -> dict:
    """Per-label thresholds at frame and clip level from the training split's probabilities and targets."""
    out = {"frame": [], "clip": []}
    cp, cy, _ = clip_level(probs, targets, clip_ids)
    for level, (p, y) in {"frame": (probs, targets), "clip": (cp, cy)}.items():
        for k in range(targets.shape[1]):
            m = y[:, k] >= 0
            out[level].append(best_threshold(y[m, k], p[m, k]))
    return out


def _macro(values: list[float | None]) -> float | None:
    v = [x for x in values if x is not None]
    return float(np.mean(v)) if v else None


def _level_scores(
    probs: np.ndarray,
    y: np.ndarray,
    classes: Sequence[str],
    thresholds: Sequence[float | None],
    train_prior: Sequence[float | None],
    trainable: Sequence[bool],
) -> dict:
    names = list(classes)
    fig = {m: {} for m in ("auroc", "average_precision", "f1")}
    base = {b: {m: {} for m in ("auroc", "average_precision", "f1")} for b in ("all_present", "prior")}
    support, undefined = {}, []
    for k, name in enumerate(names):
        m = y[:, k] >= 0
        t, s = y[m, k] == 1, probs[m, k]
        n_pos, n_neg = int(t.sum()), int((~t).sum())
        support[name] = {"present": n_pos, "absent": n_neg}
        if not n_pos or not n_neg:
            undefined.append(name)
        ok = bool(trainable[k])
        fig["auroc"][name] = auroc(t, s) if ok else None
        fig["average_precision"][name] = average_precision(t, s) if ok else None
        fig["f1"][name] = f1_at(t, s, thresholds[k]) if ok else None
        prev = n_pos / (n_pos + n_neg) if n_pos + n_neg else None
        q = train_prior[k]
        for b in base.values():
            b["auroc"][name] = 0.5 if n_pos and n_neg else None
            b["average_precision"][name] = prev if n_pos else None
        base["all_present"]["f1"][name] = 2 * prev / (1 + prev) if n_pos else None
        base["prior"]["f1"][name] = 2 * prev * q / (prev + q) if n_pos and q else (0.0 if n_pos else None)
    for metric, d in fig.items():
        # a not-trainable label counts in the macro at chance (the all-present baseline; F1 0), so a model
        # cannot look better by having learnt fewer labels; per label it stays None
        chance = [
            (0.0 if metric == "f1" and base["all_present"][metric][n] is not None else base["all_present"][metric][n])
            if not trainable[k]
            else d[n]
            for k, n in enumerate(names)
        ]
        d["macro"] = _macro(chance)
    for b in base.values():
        for d in b.values():
            d["macro"] = _macro([d[n] for n in names])
    return {"n": int(len(y)), **fig, "baselines": base, "support": support, "undefined": undefined}


def score_labels(
    probs: np.ndarray,
    targets: np.ndarray,
    clip_ids: Sequence,
    classes: Sequence[str],
    thresholds: dict,
    train_prior: dict,
    trainable: Sequence[bool],
    truth: str,
) -> dict:
    """Frame- and clip-level figures of one reference (``truth``: truth | reviewed | speech), JSON-ready.

    ``thresholds`` and ``train_prior`` are ``{"frame": [K], "clip": [K]}``. The figures are keyed
    ``<metric>.<level>.<label or "macro">``; baselines ``baselines.<name>.<metric>.<level>.<label>``.
    """
    probs = np.asarray(probs, np.float64)
    targets = np.asarray(targets)
    cp, cy, clips = clip_level(probs, targets, clip_ids)
    levels = {
        "frame": _level_scores(probs, targets, classes, thresholds["frame"], train_prior["frame"], trainable),
        "clip": _level_scores(cp, cy, classes, thresholds["clip"], train_prior["clip"], trainable),
    }
    out: dict = {"truth": truth, "frames": int(len(targets)), "clips": int(len(clips))}
    out["clip_aggregate"] = CLIP_AGGREGATE
    for metric in ("auroc", "average_precision", "f1"):
        out[metric] = {lv: levels[lv][metric] for lv in levels}
    out["baselines"] = {
        b: {
            metric: {lv: levels[lv]["baselines"][b][metric] for lv in levels}
            for metric in ("auroc", "average_precision", "f1")
        }
        for b in ("all_present", "prior")
    }
    out["support"] = {lv: levels[lv]["support"] for lv in levels}
    out["undefined"] = {lv: levels[lv]["undefined"] for lv in levels}
    out["not_trainable"] = [c for c, ok in zip(classes, trainable) if not ok]
    return out


def train_priors(targets: np.ndarray, clip_ids: Sequence) -> dict:
    """Per label the rate of present among known training entries, at frame and clip level (None: no entry)."""
    _, cy, _ = clip_level(np.zeros(targets.shape, np.float32), targets, clip_ids)
    out = {}
    for level, y in (("frame", np.asarray(targets)), ("clip", cy)):
        known = (y >= 0).sum(0)
        pos = (y == 1).sum(0)
        out[level] = [float(p / n) if n else None for p, n in zip(pos.tolist(), known.tolist())]
    return out

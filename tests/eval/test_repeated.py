"""Summaries of repeated splits: paired intervals and ratios over (seed, fold) units."""

from __future__ import annotations

import pytest

from sonotell.eval.repeated import paired_ratio, summarise_runs


def run(seed, fold, source, auroc, base=0.5):
    figs = {"clip": {"x": auroc, "macro": auroc}, "frame": {"x": auroc, "macro": auroc}}
    bl = {"clip": {"x": base, "macro": base}, "frame": {"x": base, "macro": base}}
    return {
        "seed": seed,
        "fold": fold,
        "trained_on": source,
        "metrics": {
            "auroc": figs,
            "average_precision": figs,
            "f1": figs,
            "baselines": {
                "all_present": {m: bl for m in ("auroc", "average_precision", "f1")},
                "prior": {m: bl for m in ("auroc", "average_precision", "f1")},
            },
        },
    }


def test_summary_pairs_by_seed_and_fold():
    sp = [0.8, 0.7, 0.9]
    tr = [0.9, 0.8, 1.0]
    runs = [run(s, 0, "speech", a) for s, a in enumerate(sp)] + [run(s, 0, "truth", a) for s, a in enumerate(tr)]
    out = summarise_runs(runs, ["x"], n_boot=500)
    cell = out["figures"]["auroc/clip/macro"]
    assert out["units"] == 3
    assert cell["speech"]["mean"] == pytest.approx(0.8) and cell["truth"]["mean"] == pytest.approx(0.9)
    d = cell["speech_vs_truth"]
    assert d["mean"] == pytest.approx(-0.1) and d["low"] == pytest.approx(-0.1) and d["high"] == pytest.approx(-0.1)
    assert cell["speech_over_truth"]["ratio"] == pytest.approx(0.8 / 0.9)
    assert (
        cell["speech"]["vs_prior"]["mean"] == pytest.approx(0.3) and cell["speech"]["vs_prior"]["verdict"] == "A better"
    )


def test_paired_ratio_interval_contains_the_ratio():
    r = paired_ratio([0.9, 0.8, 0.85, 0.7], [1.0, 0.9, 0.9, 0.8], n_boot=2000)
    assert r["low"] <= r["ratio"] <= r["high"] and r["n"] == 4

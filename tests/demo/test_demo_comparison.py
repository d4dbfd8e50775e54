"""The demo's side-by-side table: speech-trained, truth-trained and both baselines from metrics.json."""

from __future__ import annotations

from sonotell.demo import comparison_rows


def _metrics(v: float, base_ap: float) -> dict:
    level = {"macro": v}
    return {
        "truth": "truth",
        "auroc": {"clip": level, "frame": level},
        "average_precision": {"clip": level, "frame": level},
        "f1": {"clip": level, "frame": level},
        "baselines": {
            "all_present": {
                m: {"clip": {"macro": x}, "frame": {"macro": x}}
                for m, x in (("auroc", 0.5), ("average_precision", base_ap), ("f1", 0.6))
            },
            "prior": {
                m: {"clip": {"macro": x}, "frame": {"macro": x}}
                for m, x in (("auroc", 0.5), ("average_precision", base_ap), ("f1", 0.4))
            },
        },
    }


def test_comparison_rows_put_both_models_beside_both_baselines():
    rows = comparison_rows({"speech": _metrics(0.7, 0.3), "truth": _metrics(0.9, 0.3)})
    assert [r["model"] for r in rows] == ["speech-trained", "truth-trained", "all present", "prior"]
    assert rows[0]["clip AUROC"] == 0.7 and rows[1]["frame F1"] == 0.9
    assert rows[2]["clip AP"] == 0.3 and rows[2]["clip F1"] == 0.6 and rows[3]["clip F1"] == 0.4
    assert comparison_rows({}) == []

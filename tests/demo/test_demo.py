import json

import pytest

from sonotell.demo import run_demo


@pytest.mark.slow
def test_demo_runs_every_stage_and_writes_a_report(tmp_path):
    report = run_demo(tmp_path / "demo", seed=0, subjects=3, epochs=1)
    summary = json.loads((tmp_path / "demo" / "demo.json").read_text())
    statuses = {s["name"]: s["status"] for s in summary["stages"]}
    assert statuses == dict.fromkeys(
        ["benchmark", "ingest", "labels", "train", "predict", "evaluate", "localise"], "ok"
    ), summary["stages"]
    text = report.read_text()
    assert "| speech |" in text and "| truth |" in text and "pointing game" in text
    for name in (
        "confusion_speech.png",
        "confusion_truth.png",
        "localisation_overlay.png",
        "manifest.csv",
        "predictions/summary.csv",
        "train/speech/model.pt",
    ):
        assert (tmp_path / "demo" / name).stat().st_size > 0
    split = summary["results"]["split"]
    assert split["train_scans"] and split["test_scans"] and not set(split["train_scans"]) & set(split["test_scans"])
    rows = summary["results"]["classification"]
    assert all(0.0 <= r["accuracy"] <= 1.0 and r["test frames"] > 0 for r in rows)


def test_demo_reports_a_skipped_stage_instead_of_crashing(tmp_path, monkeypatch):
    import sonotell.demo as demo

    def no_benchmark(state):
        raise demo._Skip("no benchmark for this test")

    monkeypatch.setattr(demo, "_stage_benchmark", no_benchmark)
    report = demo.run_demo(tmp_path / "d", subjects=1, epochs=1)
    summary = json.loads((tmp_path / "d" / "demo.json").read_text())
    assert [s["status"] for s in summary["stages"]] == ["skipped"] * 7
    assert "no benchmark for this test" in report.read_text()

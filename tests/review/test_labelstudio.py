"""Label Studio round trip: our tasks/config checked by Label Studio's own SDK (if installed); its regions read back."""

from __future__ import annotations

import json

import pytest

from sonotell.review.labelstudio import export_label_studio, frames_to_seconds, import_label_studio, seconds_to_frames
from sonotell.review.store import export_reviewed, load_review


def test_frames_are_one_based_and_round_trip():
    # frame k (1-based) starts at (k-1)/fps: 1.0 s at 10 fps is frame 11
    # 1.0-1.5 s at 10 fps covers frames 11..15 (1.4-1.5 is frame 15): the end comes back as 1.5, not 1.4
    assert seconds_to_frames(1.0, 1.5, fps=10) == (11, 15)
    assert frames_to_seconds(11, 15, fps=10) == (1.0, 1.5)
    assert seconds_to_frames(0.0, 0.0, fps=25) == (1, 1)
    assert seconds_to_frames(2.02, 2.61, fps=10) == (21, 27)  # every frame the event touches
    for s, e in [(0.3, 0.9), (1.0, 1.5), (6.5, 6.9), (0.0, 8.0)]:
        assert frames_to_seconds(*seconds_to_frames(s, e, fps=10), fps=10) == (s, e)


def _annotate(tasks):
    """A person in Label Studio: keeps liver, relabels kidney -> pancreas, deletes the others, draws a new region."""
    task = tasks[0]
    regions = [dict(r) for r in task["predictions"][0]["result"]]
    keep = [r for r in regions if r["value"]["timelinelabels"] == ["liver"]]
    moved = next(r for r in regions if r["value"]["timelinelabels"] == ["kidney"])
    moved = {**moved, "value": {"ranges": moved["value"]["ranges"], "timelinelabels": ["pancreas"]}}
    new = {
        "id": "abc123",
        "from_name": "events",
        "to_name": "video",
        "type": "timelinelabels",
        "value": {"ranges": [{"start": 41, "end": 46}], "timelinelabels": ["no liver"]},
    }
    ann = {
        "id": 7,
        "completed_by": 1,
        "was_cancelled": False,
        "updated_at": "2026-12-01T10:00:00Z",
        "result": keep + [moved, new],
    }
    return [
        {"id": 1, "data": task["data"], "annotations": [ann], "predictions": task["predictions"]},
        {"id": 2, "data": tasks[1]["data"], "annotations": []},
    ]


def test_export_then_import_gives_review_files(labels_dir, manifest, tmp_path):
    info = export_label_studio(labels_dir, tmp_path / "ls", manifest=manifest)
    assert info["tasks"] == 2 and info["fps"] == 10
    tasks = json.loads((tmp_path / "ls" / "tasks.json").read_text())
    assert tasks[0]["data"]["video"] == "/data/local-files/?d=scan_a.webm"
    assert tasks[0]["data"]["audio"] == "/data/local-files/?d=scan_a.wav"  # the narration, synced with the video
    pred = tasks[0]["predictions"][0]
    labels = [r["value"]["timelinelabels"][0] for r in pred["result"]]
    assert labels == ["liver", "kidney", "no spleen", "bladder"]  # the negated mention as "no spleen"
    assert pred["result"][0]["value"]["ranges"] == [{"start": 11, "end": 15}] and pred["result"][1]["score"] == 0.4
    export_path = tmp_path / "export.json"
    export_path.write_text(json.dumps(_annotate(tasks)))
    counts = import_label_studio(export_path, labels_dir)
    assert counts == {"scans": 1, "accepted": 1, "edited": 1, "rejected": 2, "added": 1, "skipped_tasks": 1}
    review = load_review(labels_dir, "scan_a")
    assert review["reviewed"] is True
    by_status = {d["status"]: d for d in review["decisions"].values()}
    assert by_status["edited"]["label"] == "pancreas" and by_status["edited"]["base"]["label"] == "kidney"
    assert (by_status["added"]["label"], by_status["added"]["negated"], by_status["added"]["start_s"]) == (
        "liver",
        True,
        4.0,
    )
    export_reviewed(labels_dir, tmp_path / "reviewed")
    events = json.loads((tmp_path / "reviewed" / "scan_a.json").read_text())["events"]
    assert [(e["label"], e["negated"]) for e in events] == [("liver", False), ("pancreas", False), ("liver", True)]


def test_import_refuses_bad_exports(labels_dir, tmp_path):
    from sonotell.errors import InputError

    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(InputError, match="list of tasks"):
        import_label_studio(bad, labels_dir)
    bad.write_text(
        json.dumps(
            [
                {
                    "data": {"scan_id": "scan_a"},
                    "annotations": [
                        {
                            "result": [
                                {
                                    "type": "timelinelabels",
                                    "value": {"ranges": [{"start": 1, "end": 3}], "timelinelabels": ["heart"]},
                                }
                            ]
                        }
                    ],
                }
            ]
        )
    )
    with pytest.raises(InputError, match="not in the lexicon"):
        import_label_studio(bad, labels_dir)


def test_label_studio_sdk_accepts_our_config_and_predictions_and_we_read_its_regions(labels_dir, manifest, tmp_path):
    """Checked by Label Studio's own parser and validator (label-studio-sdk), not only by our reading of the format."""
    sdk = pytest.importorskip("label_studio_sdk.label_interface", reason="optional: label-studio-sdk not installed")
    export_label_studio(labels_dir, tmp_path / "ls", manifest=manifest)
    li = sdk.LabelInterface((tmp_path / "ls" / "config.xml").read_text())
    li.validate()  # the config's XML schema, unique names, toName targets, tag attributes
    assert set(li.get_control("events").labels) >= {"liver", "no liver", "vessels", "no vessels"}
    tasks = json.loads((tmp_path / "ls" / "tasks.json").read_text())
    for task in tasks:
        # every $variable of the config is in the task's data (the SDK's validate_task breaks on predictions: data only)
        assert li.validate_task({"data": task["data"]}) is True
        assert li.validate_prediction(task["predictions"][0], return_errors=True) == []
    # a region written by the SDK itself (as Label Studio would store it) comes back as a review decision
    region = li.get_control("events").label(label=["spleen"], ranges=[{"start": 21, "end": 26}])
    result = json.loads(region.to_json())  # the SDK serialises a region to a JSON string
    assert li.validate_annotation({"result": [result]})
    export = [{"id": 1, "data": tasks[1]["data"], "annotations": [{"id": 1, "completed_by": 1, "result": [result]}]}]
    (tmp_path / "export.json").write_text(json.dumps(export))
    import_label_studio(tmp_path / "export.json", labels_dir)
    decisions = load_review(labels_dir, "scan_b")["decisions"]
    added = [d for d in decisions.values() if d["status"] == "added"]
    assert [(d["label"], d["start_s"], d["end_s"]) for d in added] == [("spleen", 2.0, 2.6)]  # frame 26 ends at 2.6
    assert [d["status"] for d in decisions.values()].count("rejected") == 1  # the gallbladder the annotator removed


def test_media_url_prefix_and_previews_with_the_narration(labels_dir, manifest, tmp_path):
    from sonotell.io.manifest import read_manifest
    from sonotell.io.preview import cached_preview

    export_label_studio(
        labels_dir,
        tmp_path / "ls",
        manifest=manifest,
        media_url_prefix="https://files.example/ward 3/",
        previews=tmp_path / "cache",
    )
    tasks = json.loads((tmp_path / "ls" / "tasks.json").read_text())
    assert tasks[0]["data"]["video"] == "https://files.example/ward 3/previews/scan_a.mp4"
    assert tasks[0]["data"]["audio"] == "https://files.example/ward 3/scan_a.wav"
    assert cached_preview(read_manifest(manifest).scans[0], tmp_path / "cache") is not None
    config = (tmp_path / "ls" / "config.xml").read_text()
    assert '<Audio name="narration" value="$audio" sync="video"/>' in config and 'sync="narration"' in config

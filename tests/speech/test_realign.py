"""speech.realign / `sonotell labels upgrade`: a format-1 folder rebuilt as format 2 from its events, no ASR."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from sonotell import labels as L
from sonotell.cli import app
from sonotell.errors import InputError
from sonotell.io.manifest import write_manifest
from sonotell.speech.lexicon import load_lexicon
from sonotell.speech.realign import realign_folder
from sonotell.types import Scan
from tests.conftest import write_video

FPS, N = 10, 60
LUNG = load_lexicon("lung").labels


def v1_folder(root, with_video=True):
    """A format-1 folder of one lung scan: "B-lines" at 1.0-1.4 s, "no effusion" at 4.0-4.3 s, a cut at frame 30."""
    folder = root / "v1"
    folder.mkdir(parents=True)
    events = [
        {"label": "B-lines", "term": "b lines", "start_s": 1.0, "end_s": 1.4, "confidence": 0.9, "negated": False},
        {"label": "effusion", "term": "effusion", "start_s": 4.0, "end_s": 4.3, "confidence": 1.0, "negated": True},
    ]
    rows = [
        {
            "scan_id": "s1",
            "frame_index": i,
            "time_s": i / FPS,
            "label": "B-lines" if 7 <= i <= 17 else "unlabelled",
            "confidence": 0.9,
            "absent": "effusion" if 37 <= i <= 46 else "",
        }
        for i in range(N)
    ]
    pd.DataFrame(rows).to_csv(folder / "s1.labels.csv", index=False)
    doc = {"scan_id": "s1", "subject_id": "p1", "fingerprint": "old", "lexicon": "lung", "events": events}
    doc.update(words=[], segments=[], info={"fps": float(FPS), "n_frames": N})
    (folder / "s1.json").write_text(json.dumps(doc))
    config = {"align": {"before_s": 0.3, "after_s": 0.3, "edge_weight": 0.5, "conflict": "drop"}}
    (folder / "summary.json").write_text(json.dumps({"lexicon": "lung", "config": config, "fingerprint": "old"}))
    scans = []
    if with_video:
        frames = np.full((N, 32, 32), 40, np.uint8)
        frames[30:] = 200  # the view changes at frame 30
        video = write_video(root / "s1.mp4", frames, fps=FPS)
        scans = [Scan("s1", "p1", video, None, 0.0, float(FPS), N, 32, 32)]
    return folder, scans


def test_upgrade_uses_scopes_and_views_from_the_video(tmp_path):
    old, scans = v1_folder(tmp_path)
    summary = realign_folder(old, tmp_path / "v2", scans=scans, overrides={"max_view_s": 10.0})
    assert summary["n_done"] == 1 and summary["views"]["detected"] == 1 and summary["labels_format"] == 2
    st = L.read_frames(tmp_path / "v2", "s1", LUNG)
    b, eff = LUNG.index("B-lines"), LUNG.index("effusion")
    assert list(np.flatnonzero(st.state[:, b] == L.PRESENT)) == list(range(0, 30))  # its whole view (lung: view)
    assert list(np.flatnonzero(st.state[:, eff] == L.ABSENT)) == list(range(30, 60))  # "no effusion": its view
    assert (st.state[:, [k for k in range(len(LUNG)) if k not in (b, eff)]] == L.UNKNOWN).all()
    doc = L.read_scan_doc(tmp_path / "v2", "s1")
    assert doc["view_starts"] == [0, 30] and doc["labels_format"] == 2 and doc["fingerprint"] == summary["fingerprint"]
    assert L.read_summary(tmp_path / "v2")["config"]["align"]["max_view_s"] == 10.0
    assert (old / "s1.labels.csv").read_text().startswith("scan_id,frame_index,time_s,label")  # the input untouched


def test_upgrade_without_videos_bounds_views_by_max_view_s(tmp_path):
    old, _ = v1_folder(tmp_path, with_video=False)
    summary = realign_folder(old, tmp_path / "v2", overrides={"max_view_s": 1.0})
    assert summary["views"]["unknown"] == 1
    st = L.read_frames(tmp_path / "v2", "s1", LUNG)
    present = np.flatnonzero(st.state[:, LUNG.index("B-lines")] == L.PRESENT)
    assert (present.min(), present.max()) == (0, 24)  # 1.0 - 1.0 s .. 1.4 + 1.0 s


def test_upgrade_refuses_its_input_and_foreign_labels(tmp_path):
    old, _ = v1_folder(tmp_path, with_video=False)
    with pytest.raises(InputError, match="must not be the old one"):
        realign_folder(old, old)
    doc = json.loads((old / "s1.json").read_text())
    doc["events"][0]["label"] = "liver"
    (old / "s1.json").write_text(json.dumps(doc))
    summary = realign_folder(old, tmp_path / "v2")
    assert (
        summary["n_failed"] == 1
        and "event label 'liver' is not in the lexicon's label set" in summary["failed"][0]["error"]
    )


def test_labels_upgrade_cli(tmp_path):
    old, scans = v1_folder(tmp_path)
    write_manifest(tmp_path / "manifest.csv", scans)
    out = tmp_path / "v2"
    r = CliRunner().invoke(
        app, ["labels", "upgrade", str(old), "--out", str(out), "--manifest", str(tmp_path / "manifest.csv")]
    )
    assert r.exit_code == 0, r.output
    assert "views: detected 1" in r.output and L.folder_format(out) == 2
    r = CliRunner().invoke(app, ["labels", "upgrade", str(old), "--out", str(out), "--set", "align.max_view_s=3"])
    assert r.exit_code != 0 and "holds outputs of another configuration" in str(r.exception or r.output)
    r = CliRunner().invoke(app, ["labels", "upgrade", str(old), "--out", str(old / "s1.labels.csv")])
    assert r.exit_code != 0

"""Issue 21 items 2, 3 and 8 (server): the review server serves only media, keeps every edit, lists broken scans."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from sonotell.review.app import create_app
from sonotell.review.store import load_review, review_path
from tests.review.conftest import _demo_set, labels_dir, manifest  # noqa: F401  (fixtures)

BASE = "http://127.0.0.1"


def _manifest_with(original, tmp_path, **paths):
    """A copy of the manifest whose scan_a row names other video/audio files."""
    table = pd.read_csv(original, keep_default_na=False)
    for column, value in paths.items():
        table.loc[table["scan_id"] == "scan_a", column] = str(value)
    out = original.parent / "evil_manifest.csv"  # beside the original: its relative paths still hold
    table.to_csv(out, index=False)
    return out


@pytest.mark.parametrize("kind", ["video", "audio"])
def test_a_manifest_naming_a_non_media_file_does_not_get_it_served(labels_dir, manifest, tmp_path, kind):  # noqa: F811
    secret = tmp_path / "secret.txt"
    secret.write_text("password=hunter2\n")
    disguised = tmp_path / ("key.webm" if kind == "video" else "key.wav")
    disguised.write_text("-----BEGIN PRIVATE KEY-----\nMIIE\n")
    from PIL import Image

    picture = tmp_path / "private_photo.mp4"  # ffmpeg reads a PNG as a one-frame "video", whatever its name
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(picture, format="PNG")
    for target in ("/etc/passwd", secret, disguised, picture):
        evil = _manifest_with(manifest, tmp_path, **{f"{kind}_path": target})
        client = TestClient(create_app(labels_dir, evil), base_url=BASE)
        r = client.get(f"/media/scan_a/{kind}")
        assert r.status_code == 404, (target, r.status_code)
        assert b"hunter2" not in r.content and b"PRIVATE" not in r.content and b"root:" not in r.content
        assert client.get("/api/scans/scan_a").json()[kind] is False
        assert client.get(f"/media/scan_b/{kind}").status_code == 200  # real media still play


def test_media_of_the_wrong_kind_is_not_served(labels_dir, manifest, tmp_path):  # noqa: F811
    wav = manifest.parent / "scan_a.wav"
    evil = _manifest_with(manifest, tmp_path, video_path=wav)  # audio only: no video stream
    client = TestClient(create_app(labels_dir, evil), base_url=BASE)
    assert client.get("/media/scan_a/video").status_code == 404
    assert client.get("/media/scan_a/audio").status_code == 200


def test_one_corrupt_review_file_fails_only_its_scan_in_the_list(labels_dir, manifest):  # noqa: F811
    client = TestClient(create_app(labels_dir, manifest), base_url=BASE)
    review_path(labels_dir, "scan_a").write_text(
        json.dumps({"format": "sonotell.review/1", "decisions": {"e1": {"status": "added", "label": 3}}})
    )
    r = client.get("/api/scans")
    assert r.status_code == 200
    rows = {row["scan_id"]: row for row in r.json()["scans"]}
    assert "scan_a.review.json: decision 'e1'" in rows["scan_a"]["error"] and "\n" not in rows["scan_a"]["error"]
    assert rows["scan_b"]["error"] is None and rows["scan_b"]["n_events"] == 1
    assert client.get("/api/scans/scan_a").status_code == 400  # the scan itself: its one-line error


# One review server in its own process: waits for GO, then posts/puts and prints each status.
SERVER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from fastapi.testclient import TestClient
    from sonotell.review.app import create_app

    labels, manifest, go, name, ids = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4], sys.argv[5:]
    client = TestClient(create_app(labels, manifest, reviewer=name), base_url="http://127.0.0.1")
    client.get("/api/scans")  # warm up before the start line
    while not go.exists():
        time.sleep(0.005)
    out = {"added": [], "edits": {}}
    for k in range(25):
        r = client.post("/api/scans/scan_a/events", json={"label": "liver", "start_s": 0.1 * k, "end_s": 0.1 * k + 0.2})
        out["added"].append([r.status_code, r.json().get("id")])
        if k < len(ids):  # each pipeline event once, with the rev 0 both servers saw
            r = client.put(f"/api/scans/scan_a/events/{ids[k]}", json={"status": "edited", "label": "spleen", "rev": 0})
            out["edits"][ids[k]] = r.status_code
    print(json.dumps(out))
    """
)


def test_two_review_servers_in_two_processes_lose_no_edit(labels_dir, manifest, tmp_path):  # noqa: F811
    client = TestClient(create_app(labels_dir, manifest), base_url=BASE)
    ids = [e["id"] for e in client.get("/api/scans/scan_a/events").json()["events"]]
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SERVER, str(labels_dir), str(manifest), str(go), name, *ids],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("ana", "ben")
    ]
    import time

    time.sleep(0.5)
    go.touch()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    review = load_review(labels_dir, "scan_a")
    added = [eid for res in results for status, eid in res["added"] if status == 201]
    assert len(added) == 50  # every post answered 201 ...
    assert all(review["decisions"][eid]["status"] == "added" for eid in added)  # ... and every one is saved
    for eid in ids:  # the same event edited through both servers with the rev both saw: one wins, one conflicts
        assert sorted(res["edits"][eid] for res in results) == [200, 409], eid
        assert review["decisions"][eid]["rev"] == 1
    # history: one entry per change that was answered with success, none twice
    assert len(review["history"]) == 50 + len(ids)

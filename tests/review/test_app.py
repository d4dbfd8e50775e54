"""The review app's API with FastAPI's TestClient: listing, paging, decisions, validation, concurrency, security."""

from __future__ import annotations

import json
import os
import threading

import pytest
from fastapi.testclient import TestClient

from sonotell.review.app import create_app
from sonotell.review.store import event_ids

BASE = "http://127.0.0.1"


@pytest.fixture
def client(labels_dir, manifest):
    return TestClient(create_app(labels_dir, manifest, reviewer="ana"), base_url=BASE)


def _events(client, scan="scan_a"):
    return client.get(f"/api/scans/{scan}/events").json()["events"]


def test_scan_list_orders_by_need_of_review_and_shows_progress(client):
    data = client.get("/api/scans").json()
    # scan_a has a negated event and the lowest confidence: it comes first; nothing reviewed yet
    assert [r["scan_id"] for r in data["scans"]] == ["scan_a", "scan_b"]
    assert data["progress"] == {"reviewed": 0, "total": 2, "events_decided": 0, "events_total": 5}
    assert client.put("/api/scans/scan_a/reviewed", json={"reviewed": True}).status_code == 200
    data = client.get("/api/scans").json()
    assert [r["scan_id"] for r in data["scans"]] == ["scan_b", "scan_a"]  # reviewed scans go last
    assert data["progress"] == {"reviewed": 1, "total": 2, "events_decided": 0, "events_total": 5}


def test_scan_page_data_paged_events_words_waveform(client):
    meta = client.get("/api/scans/scan_a").json()
    assert (meta["fps"], meta["n_frames"], meta["duration_s"]) == (10.0, 80, 8.0)
    assert meta["video"] and meta["audio"] and meta["labels"][0] == "liver"
    page = client.get("/api/scans/scan_a/events?offset=1&limit=2").json()
    assert page["total"] == 4 and [e["label"] for e in page["events"]] == ["kidney", "spleen"]
    assert page["events"][1]["negated"] is True and page["events"][0]["status"] == "speech"
    words = client.get("/api/scans/scan_a/words?limit=3").json()
    assert words["total"] == 12 and [w["text"] for w in words["words"]] == ["here", "is", "the"]
    wave = client.get("/api/scans/scan_a/waveform?bins=80").json()
    assert len(wave["peaks"]) == 80 and max(wave["peaks"]) == 1.0
    # the tone is gated on for 1 s, off for 1 s: the first second is loud, the second silent
    assert min(wave["peaks"][:9]) > 0.5 and max(wave["peaks"][11:19]) < 0.01


def test_accept_relabel_add_undo_are_saved_at_once(client, labels_dir):
    evs = _events(client)
    liver, kidney = evs[0]["id"], evs[1]["id"]
    r = client.put(f"/api/scans/scan_a/events/{liver}", json={"status": "accepted"})
    assert r.status_code == 200 and r.json()["rev"] == 1
    r = client.put(f"/api/scans/scan_a/events/{kidney}", json={"status": "edited", "label": "spleen", "rev": 0})
    assert r.json()["label"] == "spleen"
    r = client.post("/api/scans/scan_a/events", json={"label": "pancreas", "start_s": 4.0, "end_s": 4.5})
    assert r.status_code == 201
    added = r.json()["id"]
    review = json.loads((labels_dir / "scan_a.review.json").read_text())
    assert review["decisions"][liver]["status"] == "accepted" and review["decisions"][liver]["by"] == "ana"
    assert review["decisions"][kidney]["label"] == "spleen" and review["decisions"][kidney]["base"]["label"] == "kidney"
    assert review["decisions"][added]["status"] == "added" and len(review["history"]) == 3
    # undo: delete the added event, reset the relabel
    assert client.delete(f"/api/scans/scan_a/events/{added}").status_code == 200
    assert client.delete(f"/api/scans/scan_a/events/{kidney}").status_code == 200
    statuses = {e["id"]: e["status"] for e in _events(client)}
    assert statuses[kidney] == "speech" and added not in statuses and statuses[liver] == "accepted"
    # the pipeline's own files are untouched
    assert json.loads((labels_dir / "scan_a.json").read_text())["events"][1]["label"] == "kidney"


def test_rejected_events_are_listed_but_not_exported(client, labels_dir, tmp_path):
    from sonotell.review.store import export_reviewed

    kidney = _events(client)[1]["id"]
    client.put(f"/api/scans/scan_a/events/{kidney}", json={"status": "rejected"})
    assert {e["id"]: e["status"] for e in _events(client)}[kidney] == "rejected"
    export_reviewed(labels_dir, tmp_path / "out")
    exported = json.loads((tmp_path / "out" / "scan_a.json").read_text())["events"]
    assert "kidney" not in [e["label"] for e in exported]


@pytest.mark.parametrize(
    "body, problem",
    [
        ({"status": "edited", "label": "heart"}, "not in the lexicon"),
        ({"status": "edited", "start_s": -1.0}, "times must satisfy"),
        ({"status": "edited", "end_s": 99.0}, "times must satisfy"),
        ({"status": "edited", "start_s": 2.0, "end_s": 1.0}, "times must satisfy"),
        ({"status": "edited", "colour": "red"}, "colour"),
        ({"status": "maybe"}, "status"),
        ({"status": "added"}, "for new events"),
    ],
)
def test_bad_corrections_get_4xx_with_a_message(client, body, problem):
    eid = _events(client)[0]["id"]
    r = client.put(f"/api/scans/scan_a/events/{eid}", json=body)
    assert 400 <= r.status_code < 500 and problem in r.json()["detail"]
    assert "Traceback" not in r.text


def test_unknown_event_scan_and_non_json_are_refused(client):
    assert client.put("/api/scans/scan_a/events/e0000000000", json={"status": "accepted"}).status_code == 404
    assert client.get("/api/scans/nope/events").status_code == 404
    assert (
        client.post(
            "/api/scans/scan_a/events",
            content="label=liver",
            headers={"content-type": "application/x-www-form-urlencoded"},
        ).status_code
        == 415
    )
    assert client.get("/api/scans/scan_a/events?limit=999999").status_code == 422


def test_two_tabs_do_not_lose_each_others_changes(client, labels_dir, manifest):
    other_tab = TestClient(create_app(labels_dir, manifest, reviewer="ben"), base_url=BASE)
    evs = _events(client)
    a, b = evs[0]["id"], evs[1]["id"]
    # concurrent edits of different events from two "tabs" (two app instances on one folder) and many threads
    errors = []

    def edit(c, eid, label):
        r = c.put(f"/api/scans/scan_a/events/{eid}", json={"status": "edited", "label": label})
        if r.status_code != 200:
            errors.append(r.text)

    threads = [
        threading.Thread(target=edit, args=(client, a, "spleen")),
        threading.Thread(target=edit, args=(other_tab, b, "liver")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    decisions = json.loads((labels_dir / "scan_a.review.json").read_text())["decisions"]
    assert decisions[a]["label"] == "spleen" and decisions[b]["label"] == "liver"
    # the same event: a stale rev is refused (version check), a fresh one goes through
    assert (
        other_tab.put(
            f"/api/scans/scan_a/events/{a}", json={"status": "edited", "label": "kidney", "rev": 0}
        ).status_code
        == 409
    )
    assert (
        other_tab.put(
            f"/api/scans/scan_a/events/{a}", json={"status": "edited", "label": "kidney", "rev": 1}
        ).status_code
        == 200
    )


def test_large_scan_opens_fast_with_paged_events(tmp_path):
    """An hour of narration with 5,000 events: the scan page's first requests answer in well under a second."""
    import time

    import pandas as pd

    out = tmp_path / "big"
    out.mkdir()
    events = [
        {
            "label": "liver",
            "term": "liver",
            "start_s": i * 0.72,
            "end_s": i * 0.72 + 0.4,
            "confidence": 0.8,
            "negated": False,
            "speaker": "clinician",
        }
        for i in range(5000)
    ]
    words = [
        {"text": "liver", "start_s": e["start_s"], "end_s": e["end_s"], "confidence": 0.9, "speaker": "clinician"}
        for e in events
    ]
    n = 3600 * 25
    (out / "big.json").write_text(
        json.dumps(
            {
                "scan_id": "big",
                "subject_id": "p",
                "events": events,
                "words": words,
                "segments": [],
                "info": {"fps": 25.0, "n_frames": n, "duration_s": 3600.0},
            }
        )
    )
    pd.DataFrame(
        {
            "scan_id": "big",
            "frame_index": range(n),
            "time_s": [i / 25 for i in range(n)],
            "label": "unlabelled",
            "confidence": 0.0,
        }
    ).to_csv(out / "big.labels.csv", index=False)
    (out / "summary.json").write_text(json.dumps({"lexicon": "abdominal"}))
    client = TestClient(create_app(out), base_url=BASE)
    client.get("/api/meta")  # warm-up of the test client; the scan's label file is not read yet
    # CPU time of this process (the server's threads included): wall time on a shared 2-core CI box is noise
    t0, c0 = time.perf_counter(), time.process_time()
    meta = client.get("/api/scans/big").json()
    page = client.get("/api/scans/big/events?limit=1000").json()
    wpage = client.get("/api/scans/big/words?limit=5000").json()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert meta["n_events"] == 5000 and len(page["events"]) == 1000 and page["total"] == 5000 and wpage["total"] == 5000
    assert cpu < 1.0 and elapsed < 10.0, (cpu, elapsed)


# -- security -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/media/../../etc/passwd",
        "/media/%2e%2e/%2e%2e/etc/passwd",
        "/media/scan_a/..%2f..%2fmanifest.csv",
        "/static/..%2fapp.py",
        "/static/%2e%2e/app.py",
        "/static//etc/passwd",
        "/media//etc/passwd/video",
        "/media/scan_a/manifest",
        "/media/%2fetc%2fpasswd/video",
        "/api/scans/..%2f..%2fetc%2fpasswd",
        "/static/store.py",
        "/media/secret/video",
    ],
)
def test_only_manifest_media_and_package_static_files_are_served(client, url):
    r = client.get(url)
    assert r.status_code in (404, 405, 422), (url, r.status_code)
    assert "root:" not in r.text and "import" not in r.text


def test_symlink_beside_the_labels_is_not_served(client, labels_dir, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    os.symlink(secret, labels_dir / "secret.json")
    os.symlink(secret, labels_dir / "secret.labels.csv")  # looks like a scan, but its json is a symlink to text
    for url in ("/media/secret/video", "/static/secret.json", "/api/scans/secret"):
        r = client.get(url)
        assert "top secret" not in r.text and r.status_code >= 400


def test_video_is_served_with_range_requests(client, manifest):
    size = (manifest.parent / "scan_a.webm").stat().st_size
    r = client.get("/media/scan_a/video", headers={"Range": "bytes=100-199"})
    assert r.status_code == 206 and len(r.content) == 100
    assert r.headers["content-range"] == f"bytes 100-199/{size}" and r.headers["content-type"] == "video/webm"
    assert r.content == (manifest.parent / "scan_a.webm").read_bytes()[100:200]


def test_host_header_is_checked_against_dns_rebinding(client):
    assert client.get("/api/scans", headers={"host": "evil.example:8000"}).status_code == 403
    assert client.get("/api/scans", headers={"host": "127.0.0.1:8000"}).status_code == 200


def test_token_is_required_when_set(labels_dir, manifest):
    c = TestClient(create_app(labels_dir, manifest, token="s3cret", allowed_hosts=()), base_url="http://10.0.0.5")
    assert c.get("/api/scans").status_code == 403
    assert c.get("/?token=wrong").status_code == 403
    r = c.get("/?token=s3cret")
    assert r.status_code == 200 and "sonotell review" in r.text
    assert c.get("/api/scans").status_code == 200  # the cookie set by the first page carries the token


def test_server_errors_are_json_without_traceback(labels_dir, manifest):
    (labels_dir / "scan_b.json").write_text("{not json")
    c = TestClient(create_app(labels_dir, manifest), base_url=BASE, raise_server_exceptions=False)
    r = c.get("/api/scans/scan_b/events")
    assert r.status_code == 400 and "not valid JSON" in r.json()["detail"] and "Traceback" not in r.text


def test_event_ids_are_stable_across_reruns_and_orphans_are_kept(client, labels_dir):
    evs = _events(client)
    liver = evs[0]["id"]
    client.put(f"/api/scans/scan_a/events/{liver}", json={"status": "edited", "end_s": 1.8})
    doc = json.loads((labels_dir / "scan_a.json").read_text())
    assert event_ids(doc["events"])[0] == liver
    # a rerun of `label` that now hears the liver at another time: the old review is an orphan, not lost
    doc["events"][0]["start_s"] = 1.2
    (labels_dir / "scan_a.json").write_text(json.dumps(doc))
    evs = _events(client)
    orphan = [e for e in evs if e["id"] == liver]
    assert orphan and orphan[0]["orphan"] is True and orphan[0]["end_s"] == 1.8
    assert client.get("/api/scans/scan_a").json()["orphans"] == 1
    assert any(e["status"] == "speech" and e["label"] == "liver" for e in evs)


def test_an_orphan_can_still_be_accepted_or_rejected(client, labels_dir):
    liver = _events(client)[0]["id"]
    client.put(f"/api/scans/scan_a/events/{liver}", json={"status": "edited", "end_s": 1.8})
    doc = json.loads((labels_dir / "scan_a.json").read_text())
    doc["events"][0]["start_s"] = 1.2  # a rerun of `label` moved the event: the decision is an orphan
    (labels_dir / "scan_a.json").write_text(json.dumps(doc))
    r = client.put(f"/api/scans/scan_a/events/{liver}", json={"status": "accepted"})
    assert r.status_code == 200 and (r.json()["start_s"], r.json()["end_s"]) == (1.0, 1.5)  # the event it was made on
    assert client.put(f"/api/scans/scan_a/events/{liver}", json={"status": "rejected"}).status_code == 200
    kept = json.loads((labels_dir / "scan_a.review.json").read_text())["decisions"][liver]
    assert kept["status"] == "rejected" and kept["base"]["start_s"] == 1.0


def test_undo_walks_back_through_the_saved_history_including_mark_reviewed(labels_dir, manifest):
    client = TestClient(create_app(labels_dir, manifest, reviewer="ana"), base_url=BASE)
    eid = _events(client)[0]["id"]
    assert (
        client.put(f"/api/scans/scan_a/events/{eid}", json={"status": "edited", "label": "spleen"}).status_code == 200
    )
    assert client.put(f"/api/scans/scan_a/events/{eid}", json={"status": "rejected"}).status_code == 200
    assert client.put("/api/scans/scan_a/reviewed", json={"reviewed": True}).status_code == 200
    assert client.get("/api/scans/scan_a").json()["n_undo"] == 3
    # a new server (a reload, a restart): the undo comes from the file
    client = TestClient(create_app(labels_dir, manifest, reviewer="ana"), base_url=BASE)
    other = TestClient(create_app(labels_dir, manifest, reviewer="bo"), base_url=BASE)
    assert other.post("/api/scans/scan_a/undo", json={}).json()["nothing"] is True  # only your own changes
    r = client.post("/api/scans/scan_a/undo", json={}).json()
    assert (r["event_id"], r["reviewed"]) == (None, False)  # the mark first
    r = client.post("/api/scans/scan_a/undo", json={}).json()
    assert (r["event"]["status"], r["event"]["label"], r["event"]["rev"]) == ("edited", "spleen", 3)
    r = client.post("/api/scans/scan_a/undo", json={}).json()
    assert r["event"]["status"] == "speech" and r["event"]["label"] == "liver"
    assert json.loads((labels_dir / "scan_a.review.json").read_text())["decisions"] == {}
    assert client.post("/api/scans/scan_a/undo", json={}).json()["nothing"] is True


def test_zero_length_event_is_refused(client):
    eid = _events(client)[0]["id"]
    r = client.put(f"/api/scans/scan_a/events/{eid}", json={"status": "edited", "start_s": 1.0, "end_s": 1.0})
    assert r.status_code == 422 and "start_s < end_s" in r.json()["detail"]
    r = client.post("/api/scans/scan_a/events", json={"label": "liver", "start_s": 2.0, "end_s": 2.0})
    assert r.status_code == 422


def test_queue_counts_and_the_preview_route(client, labels_dir):
    eid = _events(client)[0]["id"]
    client.put(f"/api/scans/scan_a/events/{eid}", json={"status": "accepted"})
    row = next(r for r in client.get("/api/scans").json()["scans"] if r["scan_id"] == "scan_a")
    assert (row["n_decided"], row["n_listed"], row["speakers"]) == (1, 4, ["clinician", "other"])
    assert client.get("/api/scans/scan_a").json()["preview"] is False
    assert client.get("/media/scan_a/preview").status_code == 404
    assert client.get("/api/scans/scan_a/preview").status_code == 405  # a change: POST with JSON only
    assert client.post("/api/scans/scan_a/preview", content=b"{}").status_code == 415
    assert client.post("/api/scans/scan_a/preview", json={}).json() == {"scan_id": "scan_a", "preview": True}
    assert (labels_dir / "cache" / "previews" / "scan_a.mp4").is_file()
    assert client.get("/api/scans/scan_a").json()["preview"] is True
    r = client.get("/media/scan_a/preview", headers={"Range": "bytes=0-99"})
    assert r.status_code == 206 and len(r.content) == 100 and r.headers["content-type"] == "video/mp4"
    assert client.post("/api/scans/nope/preview", json={}).status_code == 404

"""The review commands end to end: serve (URL, loopback, token), export, eval labels --truth reviewed, lexicon suggest,
Label Studio export/import; bad input is one line and exit code 2."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from sonotell.cli import app
from sonotell.review.store import event_ids, load_review

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _mark(labels_dir, scan_id="scan_a", edits=None):
    review = load_review(labels_dir, scan_id)
    doc = json.loads((labels_dir / f"{scan_id}.json").read_text())
    ids = event_ids(doc["events"])
    for k, label in (edits or {}).items():
        e = doc["events"][k]
        review["decisions"][ids[k]] = {
            "status": "edited",
            "label": label,
            "start_s": e["start_s"],
            "end_s": e["end_s"],
            "negated": False,
            "base": e,
        }
    review["reviewed"] = True
    (labels_dir / f"{scan_id}.review.json").write_text(json.dumps(review))


def test_review_export_cli(labels_dir, tmp_path):
    _mark(labels_dir, edits={1: "pancreas"})
    r = CliRunner().invoke(app, ["review", "export", str(labels_dir), "--out", str(tmp_path / "rev")])
    assert r.exit_code == 0, r.output
    frames = pd.read_csv(tmp_path / "rev" / "scan_a.labels.csv", keep_default_na=False)
    assert frames["pancreas"][32] == "present" and frames["source"][32] == "reviewed"
    assert json.loads((tmp_path / "rev" / "summary.json").read_text())["n_reviewed"] == 1


def test_eval_labels_against_reviewed_truth(labels_dir):
    # pipeline (positive): liver, kidney, bladder (another speaker's); reviewed truth (clinician, positive): liver and
    # pancreas (the kidney relabelled) -> tp 1 (liver), fp 2, fn 1: precision 1/3, recall 1/2
    _mark(labels_dir, edits={1: "pancreas"})
    r = CliRunner().invoke(app, ["eval", "labels", str(labels_dir), "--truth", "reviewed"])
    assert r.exit_code == 0, r.output
    summary = json.loads((labels_dir / "eval_labels_reviewed.json").read_text())["summary"]
    assert (summary["n_scans"], summary["tp"], summary["fp"], summary["fn"]) == (1, 1, 2, 1)
    assert summary["precision"] == pytest.approx(1 / 3) and summary["recall"] == pytest.approx(0.5)
    # frames: the kidney frames (3.0-3.6 s +- 0.3 s) now disagree with the truth's pancreas
    assert summary["frame_accuracy"] < 1.0


def test_eval_labels_reviewed_without_reviews_is_an_input_error(labels_dir):
    from sonotell.errors import InputError

    r = CliRunner().invoke(app, ["eval", "labels", str(labels_dir), "--truth", "reviewed"])
    assert isinstance(r.exception, InputError) and "no scan is marked reviewed" in str(r.exception)


def test_lexicon_suggest_cli(labels_dir, tmp_path):
    review = load_review(labels_dir, "scan_a")
    review["decisions"]["u1"] = {
        "status": "added",
        "label": "gallbladder",
        "start_s": 6.3,
        "end_s": 6.9,
        "negated": False,
    }
    (labels_dir / "scan_a.review.json").write_text(json.dumps(review))
    r = CliRunner().invoke(
        app, ["lexicon", "suggest", str(labels_dir), "--out", str(tmp_path / "patch.yaml"), "--pad", "0"]
    )
    assert r.exit_code == 0, r.output
    import yaml

    assert "big" in yaml.safe_load((tmp_path / "patch.yaml").read_text())["labels"]["gallbladder"]["terms"]


def test_label_studio_cli_round_trip(labels_dir, manifest, tmp_path):
    r = CliRunner().invoke(
        app, ["export", "label-studio", str(labels_dir), "--out", str(tmp_path / "ls"), "--manifest", str(manifest)]
    )
    assert r.exit_code == 0, r.output
    tasks = json.loads((tmp_path / "ls" / "tasks.json").read_text())
    tasks[1]["annotations"] = [{"id": 1, "result": tasks[1]["predictions"][0]["result"]}]  # accept every prediction
    (tmp_path / "export.json").write_text(json.dumps(tasks))
    r = CliRunner().invoke(app, ["import", "label-studio", str(tmp_path / "export.json"), "--labels", str(labels_dir)])
    assert r.exit_code == 0, r.output
    review = load_review(labels_dir, "scan_b")
    assert review["reviewed"] and [d["status"] for d in review["decisions"].values()] == ["accepted"]


def _run_cli(*args, **kw):
    env = {**os.environ, "PYTHONPATH": SRC, "COLUMNS": "300"}  # rich wraps at the terminal width
    return subprocess.run(
        [sys.executable, "-m", "sonotell", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
        **kw,
    )


def test_bad_input_is_one_line_and_exit_code_2(tmp_path):
    r = _run_cli("review", "export", str(tmp_path / "missing"), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "labels folder not found" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "x.json").write_text("[")
    (tmp_path / "lab").mkdir()
    r = _run_cli("import", "label-studio", str(tmp_path / "x.json"), "--labels", str(tmp_path / "lab"))
    assert r.returncode == 2 and "not a Label Studio JSON export" in r.stderr and "Traceback" not in r.stderr


def _serve(labels_dir, manifest, *extra):
    env = {**os.environ, "PYTHONPATH": SRC, "COLUMNS": "300"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sonotell", "review", str(labels_dir), "--manifest", str(manifest), *extra],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    deadline, line = time.time() + 90, ""
    while time.time() < deadline:
        line = proc.stderr.readline()
        m = re.search(r"(http://\S+)", line)
        if m:
            return proc, m.group(1)
        if proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"no URL printed: {line!r}")


def _get(url):
    for _ in range(50):
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except urllib.error.URLError:
            time.sleep(0.1)
    raise AssertionError(f"server at {url} never answered")


def test_serve_on_loopback_prints_a_url_that_works(labels_dir, manifest):
    proc, url = _serve(labels_dir, manifest)
    try:
        assert url.startswith("http://127.0.0.1:") and "token" not in url
        status, body = _get(url.rstrip("/") + "/api/scans")
        assert status == 200 and json.loads(body)["progress"]["total"] == 2
    finally:
        proc.terminate()
        proc.wait(10)


def test_serve_on_another_host_requires_the_token(labels_dir, manifest):
    proc, url = _serve(labels_dir, manifest, "--host", "0.0.0.0")
    try:
        token = re.search(r"token=([\w-]+)", url).group(1)
        base = url.split("?")[0].replace("0.0.0.0", "127.0.0.1")
        assert _get(base + "api/scans")[0] == 403
        assert _get(base + "api/scans?token=wrong")[0] == 403
        assert _get(base + f"api/scans?token={token}")[0] == 200
    finally:
        proc.terminate()
        proc.wait(10)

"""Issue 21 item 8: a review file with wrong field types is one line for `lexicon suggest` and `review export`."""

from __future__ import annotations

import json

import pytest

from sonotell.review.store import event_ids
from tests.review.conftest import SCRIPT, _demo_set, labels_dir  # noqa: F401  (fixtures)
from tests.security.conftest import one_line_error, run_cli


def _events():
    return [
        {"label": a, "term": b, "start_s": s, "end_s": e, "confidence": c, "negated": n, "speaker": sp}
        for a, b, s, e, c, n, sp in SCRIPT["scan_a"][0]
    ]


def _decision(**fields):
    return {"status": "added", "label": "pancreas", "start_s": 1.0, "end_s": 1.5, "negated": False, **fields}


BAD = {
    "start_s text": ({"u1": _decision(start_s="1.0")}, "decision 'u1': start_s must be a finite number"),
    "label a number": ({"u1": _decision(label=3)}, "decision 'u1': label must be text"),
    "base a list": ({"u1": _decision(status="edited", base=[1])}, "decision 'u1': base must be an event"),
    "base label missing": ({"u1": _decision(status="edited", base={"start_s": 1})}, "base: missing label"),
    "end before start": ({"u1": _decision(start_s=3.0, end_s=1.0)}, "0 <= start_s <= end_s"),
    "negated text": ({"u1": _decision(negated="no")}, "negated must be true or false"),
    "rev text": ({"u1": _decision(rev="2")}, "rev must be a whole number"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_lexicon_suggest_and_review_export_refuse_a_bad_review_file(labels_dir, tmp_path, capsys, case):  # noqa: F811
    decisions, problem = BAD[case]
    eid = event_ids(_events())[1]  # a real pipeline event relabelled too: suggest has something to read
    decisions = {**decisions, eid: {**_decision(status="edited", label="spleen"), "base": _events()[1]}}
    path = labels_dir / "scan_a.review.json"
    path.write_text(json.dumps({"format": "sonotell.review/1", "scan_id": "scan_a", "decisions": decisions}))
    line = one_line_error(capsys, ["lexicon", "suggest", labels_dir])
    assert f"{path}: " in line and problem in line
    assert not (labels_dir / "lexicon_suggestions.yaml").exists()
    out = tmp_path / "exported"
    line = one_line_error(capsys, ["review", "export", labels_dir, "--out", out])
    assert f"{path}: " in line and problem in line
    assert not out.exists()  # a refused export leaves no folder behind


def test_a_good_review_file_still_exports_and_suggests(labels_dir, tmp_path, capsys):  # noqa: F811
    eid = event_ids(_events())[1]
    decisions = {eid: {**_decision(status="edited", label="spleen", rev=1), "base": _events()[1]}}
    (labels_dir / "scan_a.review.json").write_text(
        json.dumps({"format": "sonotell.review/1", "scan_id": "scan_a", "decisions": decisions})
    )
    assert run_cli(capsys, ["lexicon", "suggest", labels_dir])[0] == 0
    assert run_cli(capsys, ["review", "export", labels_dir, "--out", tmp_path / "exported"])[0] == 0
    assert (tmp_path / "exported" / "scan_a.labels.csv").exists()

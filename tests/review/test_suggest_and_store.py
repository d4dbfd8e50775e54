"""Review files -> reviewed events -> frame labels (hand-computed), lexicon suggestions."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from sonotell.errors import InputError
from sonotell.labels import ABSENT
from sonotell.review.store import (
    conflicting,
    event_ids,
    export_reviewed,
    load_review,
    reviewed_events,
    reviewed_truth,
)
from sonotell.review.suggest import candidate_phrases, patch_yaml, suggest
from sonotell.speech.align import align_states
from sonotell.types import TermEvent


def _ev(label, s, e, conf=0.5, negated=False):
    return {
        "label": label,
        "term": label,
        "start_s": s,
        "end_s": e,
        "confidence": conf,
        "negated": negated,
        "speaker": "clinician",
    }


def test_reviewed_events_apply_each_kind_of_decision():
    evs = [_ev("liver", 1.0, 1.5), _ev("kidney", 3.0, 3.5), _ev("spleen", 5.0, 5.5)]
    a, b, _ = event_ids(evs)
    review = {
        "decisions": {
            a: {"status": "accepted", "label": "liver", "start_s": 1.0, "end_s": 1.5},
            b: {"status": "rejected", "label": "kidney", "start_s": 3.0, "end_s": 3.5},
            "u1": {"status": "added", "label": "bladder", "start_s": 6.0, "end_s": 6.4, "negated": True},
        }
    }
    out = reviewed_events(evs, review)
    assert [(e["label"], e["status"], e["source"], e["confidence"]) for e in out] == [
        ("liver", "accepted", "reviewed", 1.0),
        ("spleen", "speech", "speech", 0.5),
        ("bladder", "added", "reviewed", 1.0),
    ]
    assert out[2]["negated"] is True
    assert len(reviewed_events(evs, review, keep_rejected=True)) == 4


def test_repeated_identical_events_get_distinct_ids():
    ids = event_ids([_ev("liver", 1, 2), _ev("liver", 1, 2)])
    assert ids[0] != ids[1] and ids[1] == ids[0] + "-2"


def test_conflicts():
    assert conflicting([_ev("liver", 1, 2), _ev("kidney", 1.5, 2.5)])
    assert conflicting([_ev("liver", 1, 2), _ev("liver", 1.5, 2.5, negated=True)])
    assert not conflicting([_ev("liver", 1, 2), _ev("kidney", 2.0, 2.5)])


def test_negation_uses_the_alignment_window():
    cfg = {"before_s": 0.25, "after_s": 0.25}
    # negated spleen 1.0-1.2 s at 10 fps: window 0.75-1.45 s -> frames 8..14 (positive liver: never absent)
    events = [TermEvent("spleen", "no spleen", 1.0, 1.2, 0.5, True), TermEvent("liver", "liver", 0.0, 0.1, 0.5)]
    out = align_states(events, ["liver", "spleen"], fps=10, n_frames=20, config=cfg)
    assert list(map(int, (out.state == ABSENT).any(1).nonzero()[0])) == list(range(8, 15))
    assert out.absent_labels(10) == ["spleen"]


def test_export_without_reviews_copies_the_speech_labels(labels_dir, tmp_path):
    summary = export_reviewed(labels_dir, tmp_path / "out")
    assert summary["n_scans"] == 2 and summary["n_reviewed"] == 0
    src = pd.read_csv(labels_dir / "scan_a.labels.csv", keep_default_na=False)
    out = pd.read_csv(tmp_path / "out" / "scan_a.labels.csv", keep_default_na=False)
    states = [c for c in src.columns if c not in ("scan_id", "frame_index", "time_s", "source")]
    assert "spleen" in states and "confidence:spleen" in states
    assert out[states].equals(src[states]) and set(out["source"]) == {"speech"}  # present, absent, confidence
    with pytest.raises(InputError, match="must not be the labels folder"):
        export_reviewed(labels_dir, labels_dir)


def test_export_marked_reviewed_scan_is_all_reviewed_and_matches_alignment(labels_dir, tmp_path):
    review = load_review(labels_dir, "scan_b")
    review["reviewed"] = True
    (labels_dir / "scan_b.review.json").write_text(json.dumps(review))
    export_reviewed(labels_dir, tmp_path / "out", only_reviewed=True)
    out = pd.read_csv(tmp_path / "out" / "scan_b.labels.csv", keep_default_na=False)
    assert not (tmp_path / "out" / "scan_a.labels.csv").exists()
    assert set(out["source"]) == {"reviewed"}
    # gallbladder 2.0-2.6 s, accepted by marking the scan reviewed (confidence 1.0): window 1.7-2.9 s at 10 fps,
    # edges included -> frames 17..29; frame 18 is 0.2 s before the start: 1 - 0.5 * 0.2 / 0.3 = 2/3
    labelled = [i for i, x in enumerate(out["gallbladder"]) if x == "present"]
    assert labelled == list(range(17, 30))
    conf = out["confidence:gallbladder"]
    assert conf[20] == 1.0 and conf[18] == pytest.approx(2 / 3, abs=1e-4) and conf[17] == pytest.approx(0.5)


def test_reviewed_truth_only_from_scans_marked_reviewed(labels_dir):
    assert reviewed_truth(labels_dir) == {}
    review = load_review(labels_dir, "scan_a")
    review["reviewed"] = True
    (labels_dir / "scan_a.review.json").write_text(json.dumps(review))
    truth = reviewed_truth(labels_dir)
    assert list(truth) == ["scan_a"] and truth["scan_a"]["n_frames"] == 80 and len(truth["scan_a"]["events"]) == 4


def test_broken_review_file_is_an_input_error(labels_dir):
    (labels_dir / "scan_a.review.json").write_text(
        '{"format": "sonotell.review/1", "decisions": {"x": {"status": "maybe"}}}'
    )
    with pytest.raises(InputError, match="scan_a.review.json: decision 'x': status"):
        load_review(labels_dir, "scan_a")
    (labels_dir / "scan_a.review.json").write_text("[1, 2")
    with pytest.raises(InputError, match="unreadable review file"):
        load_review(labels_dir, "scan_a")


def test_candidate_phrases_skip_stop_words():
    words = [{"text": t, "start_s": i, "end_s": i + 0.5} for i, t in enumerate(["the", "big", "sac", "is", "here"])]
    assert candidate_phrases(words, 1.0, 2.0, pad_s=0.0, max_words=2) == ["big", "sac", "big sac"]


def test_lexicon_suggest_counts_words_around_added_and_relabelled_events(labels_dir):
    doc = json.loads((labels_dir / "scan_a.json").read_text())
    words = doc["words"]
    big = next(w for w in words if w["text"] == "big")
    kid_id = event_ids(doc["events"])[1]
    review = load_review(labels_dir, "scan_a")
    review["decisions"] = {
        "u1": {
            "status": "added",
            "label": "gallbladder",
            "start_s": big["start_s"],
            "end_s": big["end_s"],
            "negated": False,
        },
        kid_id: {
            "status": "edited",
            "label": "pancreas",
            "start_s": 3.0,
            "end_s": 3.6,
            "negated": False,
            "base": doc["events"][1],
        },
    }
    (labels_dir / "scan_a.review.json").write_text(json.dumps(review))
    rows = suggest(labels_dir, pad_s=0.5, max_words=1)  # "kidney" is said at 4.0-4.47 s, 0.4 s after the event
    got = {(r["label"], r["phrase"]): r for r in rows}
    assert ("gallbladder", "big") in got and got[("gallbladder", "big")]["count"] == 1
    # "kidney" was said around the relabelled event: it is a form of another label, reported but not patched
    assert got[("pancreas", "kidney")]["known_as"] == "kidney"
    patch = patch_yaml(rows)
    import yaml

    data = yaml.safe_load(patch)
    assert "big" in data["labels"]["gallbladder"]["terms"] and "kidney" not in data["labels"].get("pancreas", {}).get(
        "terms", []
    )

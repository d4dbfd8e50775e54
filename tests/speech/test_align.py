import pytest

from sonotell.errors import ConfigError
from sonotell.speech.align import AlignConfig, align_events, event_weight
from sonotell.types import UNLABELLED, TermEvent


def naive_labels(events, fps, n, before, after):
    """Slow reference: a frame is labelled when exactly one label's window covers it."""
    out = []
    for i in range(n):
        t = i / fps
        labels = {e.label for e in events if not e.negated and e.start_s - before <= t <= e.end_s + after}
        out.append(labels.pop() if len(labels) == 1 else UNLABELLED)
    return out


def test_window_matches_naive_reference():
    events = [
        TermEvent("liver", "liver", 1.0, 1.4),
        TermEvent("spleen", "spleen", 3.0, 3.5),
        TermEvent("kidney", "kidney", 5.0, 5.2, negated=True),
    ]
    got = align_events(events, "s", fps=25, n_frames=175, config={"before_s": 0.3, "after_s": 0.3})
    assert [f.label for f in got] == naive_labels(events, 25, 175, 0.3, 0.3)
    assert got[30].label == "liver" and got[30].confidence == 1.0  # t = 1.2 s inside the span
    assert got[130].label == UNLABELLED  # the negated kidney labels nothing
    assert [f.frame_index for f in got[:3]] == [0, 1, 2] and got[25].time_s == 1.0


def test_confidence_decays_to_edge_weight():
    e = TermEvent("liver", "liver", 1.0, 1.4, confidence=0.8)
    cfg = AlignConfig(before_s=0.4, after_s=0.4, edge_weight=0.5)
    assert event_weight(e, 1.2, cfg) == pytest.approx(0.8)
    assert event_weight(e, 0.8, cfg) == pytest.approx(0.8 * 0.75)  # halfway out: 1 - 0.5 * 0.5
    assert event_weight(e, 1.79, cfg) == pytest.approx(0.8 * (1 - 0.5 * 0.39 / 0.4))
    assert event_weight(e, 1.81, cfg) == 0.0


def test_conflicts_drop_nearest_confidence():
    events = [
        TermEvent("liver", "liver", 1.0, 1.2, confidence=0.9),
        TermEvent("spleen", "spleen", 1.5, 1.7, confidence=0.9),
    ]
    t = 1.3  # 0.1 s after liver, 0.2 s before spleen: weights 0.9*(1-0.5*0.1/0.3) = 0.75 vs 0.6
    frames = {
        c: align_events(events, "s", fps=10, n_frames=20, config={"conflict": c, "conflict_margin": 0.2})[13]
        for c in ("drop", "nearest", "confidence")
    }
    assert frames["drop"].label == UNLABELLED
    assert frames["nearest"].label == "liver" and frames["nearest"].confidence == pytest.approx(0.75)
    assert frames["confidence"].label == "liver"
    assert t == pytest.approx(frames["drop"].time_s)


def test_min_confidence_and_bad_conflict():
    events = [TermEvent("liver", "liver", 0.0, 0.5, confidence=0.2)]
    assert all(
        f.label == UNLABELLED for f in align_events(events, "s", fps=10, n_frames=5, config={"min_confidence": 0.5})
    )
    with pytest.raises(ConfigError, match="align.conflict: 'vote' is not one of drop, nearest, confidence"):
        align_events(events, "s", fps=10, n_frames=5, config={"conflict": "vote"})


def test_negated_mentions_make_their_label_absent_over_the_window():
    events = [TermEvent("liver", "liver", 1.0, 1.4), TermEvent("effusion", "no effusion", 1.2, 1.6, negated=True)]
    got = align_events(events, "s", fps=10, n_frames=30, config={"before_s": 0.3, "after_s": 0.3, "edge_weight": 0.5})
    # frame 0.8 s: only liver's window (starts 0.7); 0.9-1.9 s: effusion absent (window 0.9-1.9); 2.0 s: neither
    assert [(f.label, f.absent) for f in got[8:21:2]] == [
        ("liver", ""),
        ("liver", "effusion"),
        ("liver", "effusion"),
        ("liver", "effusion"),
        ("liver", "effusion"),
        (UNLABELLED, "effusion"),
        (UNLABELLED, ""),
    ]
    assert got[12].absent_labels == ["effusion"] and got[0].absent_labels == []


def test_a_label_said_and_negated_alike_is_unknown_and_the_stronger_wins():
    cfg = {"before_s": 0.0, "after_s": 0.0, "conflict_margin": 0.1}
    alike = [
        TermEvent("effusion", "effusion", 1.0, 2.0, 0.9),
        TermEvent("effusion", "no effusion", 1.0, 2.0, 0.85, negated=True),
    ]
    f = align_events(alike, "s", fps=10, n_frames=20, config=cfg)[15]
    assert (f.label, f.absent) == (UNLABELLED, "")
    stronger_neg = [alike[0], TermEvent("effusion", "no effusion", 1.0, 2.0, 1.0, negated=True)]
    assert (
        align_events(stronger_neg, "s", fps=10, n_frames=20, config={**cfg, "conflict_margin": 0.05})[15].absent
        == "effusion"
    )

import numpy as np
import pytest

from sonotell.errors import ConfigError
from sonotell.labels import ABSENT, PRESENT, UNKNOWN
from sonotell.speech.align import AlignConfig, align_states, event_weight
from sonotell.types import TermEvent

NAMES = ["liver", "spleen", "kidney", "effusion"]


def naive_present(events, label, fps, n, before, after):
    """Slow reference: a label is present on a frame when one of its positive mentions' windows covers it."""
    eps = 1e-9  # a frame on a window's edge is in it
    return [
        any(
            e.label == label and not e.negated and e.start_s - before - eps <= i / fps <= e.end_s + after + eps
            for e in events
        )
        for i in range(n)
    ]


def test_window_matches_naive_reference_per_label():
    events = [
        TermEvent("liver", "liver", 1.0, 1.4),
        TermEvent("spleen", "spleen", 1.5, 1.9),  # overlaps liver's window: both present there
        TermEvent("spleen", "spleen", 3.0, 3.5),
        TermEvent("kidney", "kidney", 5.0, 5.2, negated=True),
    ]
    got = align_states(events, NAMES, fps=25, n_frames=175, config={"before_s": 0.3, "after_s": 0.3})
    for k, name in enumerate(NAMES):
        assert list(got.state[:, k] == PRESENT) == naive_present(events, name, 25, 175, 0.3, 0.3), name
    assert got.state[30, 0] == PRESENT and got.confidence[30, 0] == 1.0  # t = 1.2 s inside the span
    assert got.present_labels(40) == ["liver", "spleen"]  # t = 1.6 s: 0.2 s after liver, inside spleen
    assert got.state[130, 2] == ABSENT and got.present_labels(130) == []  # the negated kidney labels nothing
    assert list(got.frame_index[:3]) == [0, 1, 2] and got.time_s[25] == 1.0 and set(got.source) == {"speech"}


def test_confidence_decays_to_edge_weight():
    e = TermEvent("liver", "liver", 1.0, 1.4, confidence=0.8)
    cfg = AlignConfig(before_s=0.4, after_s=0.4, edge_weight=0.5)
    assert event_weight(e, 1.2, cfg) == pytest.approx(0.8)
    assert event_weight(e, 0.8, cfg) == pytest.approx(0.8 * 0.75)  # halfway out: 1 - 0.5 * 0.5
    assert event_weight(e, 1.79, cfg) == pytest.approx(0.8 * (1 - 0.5 * 0.39 / 0.4))
    assert event_weight(e, 1.81, cfg) == 0.0


def test_other_labels_never_conflict():
    events = [
        TermEvent("liver", "liver", 1.0, 1.2, confidence=0.9),
        TermEvent("spleen", "spleen", 1.5, 1.7, confidence=0.9),
    ]
    # t = 1.3 s: 0.1 s after liver, 0.2 s before spleen: weights 0.9*(1-0.5*0.1/0.3) = 0.75 and 0.6, both present
    f = align_states(events, NAMES, fps=10, n_frames=20, config={"conflict_margin": 0.2})
    assert f.present_labels(13) == ["liver", "spleen"]
    assert f.confidence[13, :2] == pytest.approx([0.75, 0.6])


def test_min_confidence_retired_conflict_key_and_bad_settings():
    events = [TermEvent("liver", "liver", 0.0, 0.5, confidence=0.2)]
    assert (align_states(events, NAMES, fps=10, n_frames=5, config={"min_confidence": 0.5}).state == UNKNOWN).all()
    assert AlignConfig.from_dict({"conflict": "drop"}) == AlignConfig.from_dict({})  # old folders' summaries
    with pytest.raises(ConfigError, match="align.max_view_s: 0.0 must be above 0"):
        align_states(events, NAMES, fps=10, n_frames=5, config={"max_view_s": 0.0})
    with pytest.raises(ValueError, match="event label 'pancreas' is not one of"):
        align_states([TermEvent("pancreas", "p", 0, 1)], NAMES, fps=10, n_frames=5)


def test_negated_mentions_make_their_label_absent_over_the_window():
    events = [TermEvent("liver", "liver", 1.0, 1.4), TermEvent("effusion", "no effusion", 1.2, 1.6, negated=True)]
    got = align_states(events, NAMES, fps=10, n_frames=30, config={"before_s": 0.3, "after_s": 0.3})
    # frame 0.8 s: only liver's window (starts 0.7); 0.9-1.9 s: effusion absent (window 0.9-1.9); 2.0 s: neither
    assert [(got.present_labels(i), got.absent_labels(i)) for i in range(8, 21, 2)] == [
        (["liver"], []),
        (["liver"], ["effusion"]),
        (["liver"], ["effusion"]),
        (["liver"], ["effusion"]),
        (["liver"], ["effusion"]),
        ([], ["effusion"]),
        ([], []),
    ]


def test_a_label_said_and_negated_alike_is_unknown_and_the_stronger_wins():
    cfg = {"before_s": 0.0, "after_s": 0.0, "conflict_margin": 0.1}
    alike = [
        TermEvent("effusion", "effusion", 1.0, 2.0, 0.9),
        TermEvent("effusion", "no effusion", 1.0, 2.0, 0.85, negated=True),
    ]
    assert align_states(alike, NAMES, fps=10, n_frames=20, config=cfg).state[15, 3] == UNKNOWN
    stronger_neg = [alike[0], TermEvent("effusion", "no effusion", 1.0, 2.0, 1.0, negated=True)]
    got = align_states(stronger_neg, NAMES, fps=10, n_frames=20, config={**cfg, "conflict_margin": 0.05})
    assert got.state[15, 3] == ABSENT and got.confidence[15, 3] == 1.0


def test_view_scope_holds_over_the_view_bounded_by_max_view_s():
    cfg = {"before_s": 0.3, "after_s": 0.3, "edge_weight": 0.5, "max_view_s": 2.0}
    scopes = {"effusion": "view", "liver": "view"}
    events = [
        TermEvent("effusion", "effusion", 3.0, 3.4),  # in the view of frames 20-49 (2.0-4.9 s)
        TermEvent("liver", "no liver", 6.0, 6.2, negated=True),  # in the view from frame 50 on
        TermEvent("spleen", "spleen", 3.0, 3.4),  # moment scope: its window only
    ]
    got = align_states(events, NAMES, fps=10, n_frames=100, config=cfg, scopes=scopes, view_starts=[0, 20, 50])
    eff = np.flatnonzero(got.state[:, 3] == PRESENT)
    assert (eff.min(), eff.max()) == (20, 49)  # the whole view; within max_view_s (1.0-5.4 s) of the mention
    assert got.confidence[25, 3] == pytest.approx(0.5) and got.confidence[32, 3] == 1.0  # edge weight, then inside
    liver = np.flatnonzero(got.state[:, 0] == ABSENT)
    assert (liver.min(), liver.max()) == (50, 82)  # "no liver": its view from frame 50, cut by max_view_s at 8.2 s
    spleen = np.flatnonzero(got.state[:, 1] == PRESENT)
    assert (spleen.min(), spleen.max()) == (27, 37)
    unknown_views = align_states(events, NAMES, fps=10, n_frames=100, config=cfg, scopes=scopes)
    eff = np.flatnonzero(unknown_views.state[:, 3] == PRESENT)
    assert (eff.min(), eff.max()) == (10, 54)  # no view information: max_view_s either side

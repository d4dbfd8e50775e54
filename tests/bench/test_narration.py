from sonotell.bench.narration import Line, parse_markup, render, word_times
from sonotell.bench.tts import EspeakTTS, Speech, Voice


def test_parse_markup_spans_and_negation():
    plain, terms = parse_markup("no [effusion](!effusion), lots of [B-lines](b_lines)")
    assert plain == "no effusion, lots of B lines"
    assert terms == [(3, 11, "effusion", True), (21, 28, "b_lines", False)]
    assert plain[21:28] == "B lines"


def test_word_times_match_tokens_after_sentence_end():
    # eSpeak points at the space before a word that follows a full stop: match by position
    speech = Speech(
        audio=None,
        sample_rate_hz=16000,
        words=[("no", 0.0, 0.2), ("effusion", 0.2, 0.6), (" ", 0.6, 1.2), ("take", 1.2, 1.5)],
        positions=[(0, 2), (3, 8), (12, 1), (18, 4)],
    )
    got = word_times("no effusion. okay, take", speech)
    assert [(w, s) for _, _, w, s, _ in got] == [("no", 0.0), ("effusion", 0.2), ("okay", 0.6), ("take", 1.2)]


def test_render_places_without_overlap_and_truth_inside_track():
    tts = EspeakTTS()
    v1, v2 = Voice("en-us", "m3"), Voice("en", "f2", 60, 150)
    lines = [
        Line("here is the [liver](liver)", "clinician", v1, 0.2),
        Line("now the [kidney](kidney)", "clinician", v1, 0.3),  # wants to overlap: pushed later
        Line("is that cold", "patient", v2, 0.0, filler=True, gain_db=-6),
        Line("this line cannot fit anywhere in such a short track I am afraid", "clinician", v1, 0.0, filler=True),
    ]
    n = render(lines, duration_s=6.0, sample_rate_hz=16000, tts=tts, min_gap_s=0.1)
    assert len(n.audio) == 6 * 16000
    segs = sorted(n.segments, key=lambda s: s["start_s"])
    for a, b in zip(segs, segs[1:]):
        assert a["end_s"] + 0.1 <= b["start_s"] + 1e-3
    assert [e["label"] for e in n.events] == ["liver", "kidney"]
    for e in n.events:
        assert 0 <= e["start_s"] < e["end_s"] <= 6.0
    assert len(n.dropped) == 1 and "cannot fit" in n.dropped[0]
    assert {s["speaker"] for s in n.segments} == {"clinician", "patient"}
    # the liver term starts after "here is the" and the audio there is not silent
    liver = n.events[0]
    i0, i1 = int(liver["start_s"] * 16000), int(liver["end_s"] * 16000)
    assert abs(n.audio[i0:i1]).max() > 0.05
    assert liver["start_s"] > segs[0]["start_s"] + 0.2

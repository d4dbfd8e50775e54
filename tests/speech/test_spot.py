import pytest

from sonotell.speech.lexicon import load_lexicon
from sonotell.speech.spot import Spotter, merge_repeats
from sonotell.types import TermEvent, Word


def words(text, step=0.3):
    return [Word(w, i * step, i * step + 0.25, 1.0, "clinician") for i, w in enumerate(text.split())]


@pytest.fixture(scope="module")
def lung():
    return Spotter(load_lexicon("lung"))


def spotted(spotter, text):
    return [(e.label, e.term, e.negated) for e in spotter.spot(words(text))]


def test_exact_synonym_and_times(lung):
    events = lung.spot(words("there is a pleural effusion"))
    assert [(e.label, e.term) for e in events] == [("effusion", "pleural effusion")]
    assert events[0].start_s == pytest.approx(0.9) and events[0].end_s == pytest.approx(1.45)
    assert events[0].speaker == "clinician"


def test_misspelling_phonetic_and_compound(lung):
    assert spotted(lung, "lots of bee lines") == [("B-lines", "bee lines", False)]
    assert spotted(lung, "an air broncho gram") == [("air bronchogram", "air broncho gram", False)]
    abdo = Spotter(load_lexicon("abdominal"))
    assert spotted(abdo, "the gall bladder") == [("gallbladder", "gall bladder", False)]


def test_fuzzy_match_scores_below_one(lung):
    events = lung.spot(words("some consolidaton here"))  # a recogniser's typo
    assert [e.label for e in events] == ["consolidation"]
    assert 0.85 <= events[0].confidence < 1.0


def test_fuzzy_does_not_swallow_neighbours_or_short_words(lung):
    assert spotted(lung, "the lines are fine") == []
    assert spotted(lung, "is no pleural effusion") == [("effusion", "pleural effusion", True)]


def test_negation_before_after_and_breakers(lung):
    assert spotted(lung, "no effusion") == [("effusion", "effusion", True)]
    assert spotted(lung, "no signs of any effusion") == [("effusion", "effusion", True)]
    assert spotted(lung, "effusion is absent") == [("effusion", "effusion", True)]
    assert spotted(lung, "no effusion or consolidation") == [
        ("effusion", "effusion", True),
        ("consolidation", "consolidation", True),
    ]
    assert spotted(lung, "no effusion but b lines") == [("effusion", "effusion", True), ("B-lines", "b lines", False)]


def test_exact_only_baseline_has_no_fuzzy_or_negation():
    plain = Spotter(load_lexicon("lung"), fuzzy_threshold=1.0, phonetic=False, negation=False)
    assert spotted(plain, "no consolidaton and no effusion") == [("effusion", "effusion", False)]


def test_short_words_are_not_matched_by_sound_alone():
    from sonotell.speech.lexicon import load_lexicon
    from sonotell.speech.spot import Spotter
    from sonotell.types import Word

    spotter = Spotter(load_lexicon("lung"))
    # metaphone("fold") == metaphone("fluid") == "FLT"; Whisper hears "hold it there" as "fold it there"
    assert spotter.spot([Word("fold", 0.0, 0.3), Word("it", 0.3, 0.4)]) == []
    # (with a finding context: "fluid" is a generic form of the lung lexicon)
    near = [Word("there", 0.0, 0.2), Word("is", 0.2, 0.3), Word("fold", 0.3, 0.6)]
    assert [e.label for e in Spotter(load_lexicon("lung"), min_phonetic_chars=3).spot(near)] == ["effusion"]
    assert [e.label for e in spotter.spot([Word("bee", 0.0, 0.2), Word("lines", 0.2, 0.5)])] == ["B-lines"]


def test_back_to_back_repeats_merge_within_the_gap():
    spotter = Spotter(load_lexicon("lung"), merge_gap_s=0.3)
    # "b_line b_line": words at 0.0-0.25 and 0.3-0.55 (gap 0.05 s) -> one event 0.0-0.55
    events = spotter.spot(words("b_line b_line effusion b_line"))
    assert [(e.label, round(e.start_s, 3), round(e.end_s, 3)) for e in events] == [
        ("B-lines", 0.0, 0.55),
        ("effusion", 0.6, 0.85),
        ("B-lines", 0.9, 1.15),
    ]
    # a wider gap, or opposite polarity, keeps two events
    far = [Word("b_line", 0.0, 0.25, 1.0), Word("b_line", 0.6, 0.85, 1.0)]
    assert len(spotter.spot(far)) == 2
    assert [e.negated for e in spotter.spot(words("b_line no b_line"))] == [False, True]
    # a negative gap keeps every event; the default is the pipeline YAML's gap (0.3 s), as in the CLI
    assert len(Spotter(load_lexicon("lung"), merge_gap_s=-1.0).spot(words("b_line b_line"))) == 2
    assert len(Spotter(load_lexicon("lung")).spot(words("b_line b_line"))) == 1


def test_merge_repeats_keeps_higher_confidence_and_shared_speaker():
    a = TermEvent("effusion", "effusion", 1.0, 1.4, 0.6, False, "clinician")
    b = TermEvent("effusion", "effusion", 1.5, 1.9, 0.9, False, "speaker_0")
    (m,) = merge_repeats([a, b], 0.2)
    assert (m.start_s, m.end_s, m.confidence, m.speaker, m.term) == (1.0, 1.9, 0.9, None, "effusion")
    assert merge_repeats([a, b], 0.05) == [a, b]
    assert merge_repeats([a, b], -1.0) == [a, b]


def test_nor_negates_what_follows(lung):
    # Whisper writes a clipped "no" as "Nor" ("Nor hepatisation here."); "neither A nor B" negates B
    assert spotted(lung, "nor hepatisation here") == [("consolidation", "hepatisation", True)]
    assert spotted(lung, "neither effusion nor consolidation") == [
        ("effusion", "effusion", False),
        ("consolidation", "consolidation", True),
    ]


@pytest.mark.parametrize(
    "text, negated",
    [
        ("no effusion", True),
        ("no evidence of effusion", True),
        ("I don't see any effusion", True),
        ("I can't see consolidation", True),
        ("I can\u2019t see consolidation", True),  # Whisper's typographic apostrophe
        ("there isn't any effusion", True),
        ("effusion is absent", True),
        ("consolidation is not seen", True),
        ("effusion not seen", True),
        ("effusion has been excluded", True),
        ("without effusion", True),
        ("no doubt there is effusion", False),
        ("not only consolidation", False),
        ("effusion cannot be ruled out", False),
        ("there is an effusion", False),
    ],
)
def test_negation_scope_for_how_people_talk(lung, text, negated):
    assert [(e.label, e.negated) for e in lung.spot(words(text))] == [
        ("consolidation" if "consolidation" in text else "effusion", negated)
    ]


def test_a_sentence_end_bounds_the_negation(lung):
    said = [Word("No.", 0.0, 0.2), Word("Effusion", 0.3, 0.8), Word("here.", 0.9, 1.1), Word("Absent", 1.2, 1.5)]
    assert [e.negated for e in lung.spot(said)] == [False]
    said = [Word("No", 0.0, 0.2), Word("effusion.", 0.3, 0.8)]
    assert [e.negated for e in lung.spot(said)] == [True]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("there is fluid at the left base", [("effusion", "fluid", False)]),
        ("no fluid", [("effusion", "fluid", True)]),
        ("i can see fluid.", [("effusion", "fluid", False)]),
        ("drink some fluid please", []),  # a veto word beside it
        ("is there any fluid intake", []),  # "there", "any" are near, but "intake" vetoes
        ("okay fluid", []),  # no finding word around it
        ("try to drink it. fluid", []),  # a sentence end bounds the context: nothing in its own sentence
        ("fluid, fluid, fluid then we stop here", [("effusion", "fluid", False)]),  # only the last has "here" near
        ("drink some water. pleural effusion", [("effusion", "pleural effusion", False)]),  # not generic: no rule
    ],
)
def test_a_generic_word_needs_a_finding_context(lung, text, expected):
    assert spotted(lung, text) == expected


def test_context_rules_are_checked_when_the_lexicon_is_read():
    from sonotell.errors import InputError
    from sonotell.speech.lexicon import ContextRule, Lexicon

    base = {"labels": {"effusion": ["fluid"]}}
    lex = Lexicon.from_dict({**base, "context": {"Fluid": {"near": ["There"], "veto": ["drink"], "window": 2}}})
    assert lex.context == {"fluid": ContextRule(frozenset({"there"}), frozenset({"drink"}), 2)}
    for context, problem in [
        ({"water": {"near": ["there"]}}, "'water' is not a form of any label"),
        ({"fluid": {"veto": ["drink"]}}, "needs a 'near' list"),
        ({"fluid": {"near": "there"}}, "'near' must be a list of words"),
        ({"fluid": {"near": ["there"], "window": 0}}, "'window' must be a whole number"),
        (["fluid"], "'context' must map generic forms"),
    ]:
        with pytest.raises(InputError, match=problem):
            Lexicon.from_dict({**base, "context": context}, source="lex.yaml")

import pytest

from sonotell.speech.lexicon import load_lexicon
from sonotell.speech.spot import Spotter
from sonotell.types import Word


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
    assert spotted(lung, "no effusion or consolidation") == [("effusion", "effusion", True), ("consolidation", "consolidation", True)]
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
    assert [e.label for e in Spotter(load_lexicon("lung"), min_phonetic_chars=3).spot([Word("fold", 0.0, 0.3)])] == ["effusion"]
    assert [e.label for e in spotter.spot([Word("bee", 0.0, 0.2), Word("lines", 0.2, 0.5)])] == ["B-lines"]

import pytest

from sonotell.errors import ConfigError
from sonotell.models.sig import SelectiveInformationGate, lexicon_terms
from sonotell.types import Word


def test_outlier_filtering_drops_unknown_tokens_and_low_confidence_words():
    gate = SelectiveInformationGate(
        "outlier", vocabulary=["<pad>", "<unk>", "liver", "the", "kidney"], min_confidence=0.5
    )
    assert gate.gate("umm the LIVER xqzt kidney") == "the liver kidney"
    words = [Word("the", 0, 0.1, 0.9), Word("liver", 0.1, 0.4, 0.3), Word("kidney", 0.5, 0.8, 0.8)]
    assert gate.gate(words) == "the kidney"


def test_keyword_spotting_matches_multiword_terms_longest_first():
    gate = SelectiveInformationGate(
        "keyword", lexicon={"effusion": ["pleural effusion", "effusion"], "b_lines": ["b-lines"]}
    )
    texts, has = gate(["so a pleural effusion and b-lines", "just an effusion", "nothing clinical here"])
    assert texts == ["pleural effusion b lines", "effusion", ""]
    assert has == [True, True, False]


def test_lexicon_terms_accepts_objects_with_terms():
    class Term:
        def __init__(self, term):
            self.term = term

    class Lex:
        terms = [Term("Portal Vein"), Term("liver")]

    assert lexicon_terms(Lex()) == ["portal vein", "liver"]


def test_none_mode_passes_through_and_bad_configs():
    assert SelectiveInformationGate("none").gate("Hello, there") == "hello there"
    with pytest.raises(ConfigError):
        SelectiveInformationGate("keyword", lexicon=[])
    with pytest.raises(ConfigError):
        SelectiveInformationGate("outlier")
    with pytest.raises(ConfigError):
        SelectiveInformationGate("magic")


def test_keyword_spotting_with_a_packaged_speech_lexicon():
    pytest.importorskip("sonotell.speech.lexicon")
    from sonotell.speech.lexicon import load_lexicon

    lex = load_lexicon("lung")
    gate = SelectiveInformationGate("keyword", lexicon=lex)
    assert gate.gate("okay so lots of B-lines here") == "b lines"
    assert SelectiveInformationGate("keyword", lexicon="lung").gate("no b-lines today") == "b lines"
    assert gate.gate("take a deep breath") == ""


def test_greedy_phrase_matches_prefers_the_first_listed_phrase_and_skips_matched_tokens():
    from sonotell.models.sig import greedy_phrase_matches

    phrases = [("portal", "vein"), ("vein",), ("portal",)]
    assert greedy_phrase_matches("the portal vein and a vein portal".split(), phrases) == [0, 1, 2]
    assert greedy_phrase_matches([], phrases) == []
    assert greedy_phrase_matches(["liver"], phrases) == []

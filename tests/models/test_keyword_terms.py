import pytest

from sonotell.errors import ConfigError
from sonotell.models.keyword_terms import KeywordTerms


def test_longest_phrase_first_and_labels_as_their_own_forms():
    terms = KeywordTerms(
        {"liver": ["right lobe of the liver"], "kidney": ["renal cortex"], "vessels": ["portal vein", "ivc"]}
    )
    assert terms.labels == ["liver", "kidney", "vessels"]
    said = terms(["the right lobe of the liver", "Renal cortex and the IVC", "portal hmm vein", "", "kidney, liver"])
    assert said.tolist() == [
        [True, False, False],
        [False, True, True],
        [False, False, False],
        [False, False, False],
        [True, True, False],
    ]
    assert terms.said("liver liver") == [0]


def test_packaged_lexicon_and_label_subset():
    terms = KeywordTerms("abdominal", labels=["kidney", "liver"])
    assert terms.labels == ["kidney", "liver"] and len(terms) == 2
    assert terms(["left kidney", "hepatic parenchyma", "spleen"]).tolist() == [
        [True, False],
        [False, True],
        [False, False],
    ]
    with pytest.raises(ConfigError, match="not in the lexicon"):
        KeywordTerms("abdominal", labels=["heart"])

import pytest

from sonotell.errors import InputError
from sonotell.speech.lexicon import Lexicon, load_lexicon, normalise, packaged_lexicons


def test_normalise_hyphens_case_digits():
    assert normalise("B-Lines, 4 Chamber!") == "b lines four chamber"


@pytest.mark.parametrize("name", ["lung", "eus", "abdominal", "fetal"])
def test_packaged_lexicons_load(name):
    lex = load_lexicon(name)
    assert name in packaged_lexicons()
    assert len(lex.labels) >= 5
    assert len({f.text for f in lex.forms}) == len(lex.forms)  # no duplicate forms


def test_seed_vocabularies():
    assert set(load_lexicon("lung").labels) == {
        "A-lines",
        "B-lines",
        "consolidation",
        "effusion",
        "pleural irregularity",
        "air bronchogram",
    }
    assert set(load_lexicon("eus").labels) == {
        "pancreas",
        "portal vein",
        "pancreatic duct",
        "portal venous confluence",
        "bile duct",
    }
    assert len(load_lexicon("fetal").labels) == 14
    eus = load_lexicon("eus")
    assert eus.label_of("PD") == eus.label_of("the duct") == "pancreatic duct"


def test_resolve_label_from_other_spellings():
    lung = load_lexicon("lung")
    assert lung.resolve_label("Consolidations") == "consolidation"
    assert lung.resolve_label("b_lines") == "B-lines"
    assert lung.resolve_label("Pleural line irregularities") == "pleural irregularity"
    assert lung.resolve_label("pneumothorax") is None


def test_duplicate_term_is_an_error_naming_the_file():
    data = {"labels": {"liver": ["liver edge"], "spleen": ["Liver-Edge"]}}
    with pytest.raises(InputError, match=r"my\.yaml: duplicate term 'liver edge' listed for both 'liver' and 'spleen'"):
        Lexicon.from_dict(data, source="my.yaml")


def test_empty_term_is_an_error():
    with pytest.raises(InputError, match="empty term"):
        Lexicon.from_dict({"labels": {"liver": ["", "hepar"]}}, source="x.yaml")
    with pytest.raises(InputError, match="non-empty 'labels'"):
        Lexicon.from_dict({"labels": {}}, source="x.yaml")


def test_unquoted_yaml_no_is_caught(tmp_path):
    p = tmp_path / "lex.yaml"
    p.write_text("labels:\n  liver: [liver edge]\nnegation:\n  before: [no, without]\n")
    with pytest.raises(InputError, match="quote"):
        load_lexicon(p)


def test_unknown_lexicon_name():
    with pytest.raises(InputError, match="packaged: abdominal"):
        load_lexicon("nonexistent")


def test_scope_per_lexicon_and_per_label():
    from sonotell.speech.lexicon import Lexicon, load_lexicon

    lex = Lexicon.from_dict({"scope": "view", "labels": {"a": ["aa"], "b": {"terms": ["bb"], "scope": "moment"}}})
    assert lex.scopes == {"a": "view", "b": "moment"}
    assert Lexicon.from_dict({"labels": {"a": ["aa"]}}).scopes == {"a": "moment"}  # default
    assert set(load_lexicon("lung").scopes.values()) == {"view"}
    assert set(load_lexicon("abdominal").scopes.values()) == {"moment"}
    with pytest.raises(InputError, match="label 'b': scope 'clip' is not one of moment, view"):
        Lexicon.from_dict({"labels": {"b": {"terms": ["bb"], "scope": "clip"}}})
    with pytest.raises(InputError, match="scope 'always' is not one of moment, view"):
        Lexicon.from_dict({"scope": "always", "labels": {"a": ["aa"]}})

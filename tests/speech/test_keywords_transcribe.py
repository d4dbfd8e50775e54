import numpy as np
import pytest

from sonotell.errors import ConfigError, InputError
from sonotell.speech import keywords
from sonotell.speech.lexicon import Lexicon, load_lexicon
from sonotell.speech.transcribe import (
    BACKENDS,
    PocketsphinxBackend,
    _drop_overlapping,
    cmudict,
    create_backend,
    register_backend,
)
from sonotell.types import Word


def test_split_into_known_fewest_parts():
    known = {"broncho", "gram", "bron", "cho"}.__contains__
    assert keywords.split_into_known("bronchogram", known) == ["broncho", "gram"]
    assert keywords.split_into_known("xyz", known) is None


def test_missing_pronunciations_from_lexicon_split_or_error():
    lex = Lexicon.from_dict(
        {"labels": {"x": ["zorbital", "qqqx"]}, "pronunciations": {"qqqx": "K Y UW"}}, source="lex.yaml"
    )
    table = {"zor": "Z AO R", "bital": "B IH T AH L"}
    added = keywords.missing_pronunciations(["zorbital", "qqqx"], table.get, lex)
    assert added == {"zorbital": "Z AO R B IH T AH L", "qqqx": "K Y UW"}
    with pytest.raises(InputError, match=r"lex\.yaml: the word 'blorp' is not in the ASR dictionary.*pronunciations"):
        keywords.missing_pronunciations(["blorp"], table.get, lex)


def test_packaged_lexicons_are_fully_pronounceable():
    cmu = cmudict()
    for name in ("lung", "eus", "abdominal", "fetal"):
        lex = load_lexicon(name)
        vocabulary = keywords.asr_vocabulary(lex)
        added = keywords.missing_pronunciations(vocabulary, lambda w: cmu[w][0] if w in cmu else None, lex)
        # every word the recogniser may output has phones: from the dictionary or made for it
        unpronounceable = [w for w in vocabulary if w not in cmu and not (added.get(w) or "").strip()]
        assert vocabulary and unpronounceable == [], (name, unpronounceable)


def test_grammar_and_corpus_cover_the_forms():
    lex = load_lexicon("lung")
    grammar = keywords.jsgf_grammar(lex)
    assert "public <utterance>" in grammar and "pleural effusion" in grammar
    corpus = keywords.domain_corpus(lex)
    assert "here is the b_lines" in corpus and "no effusion" in corpus  # multi-word forms are one LM token
    assert "\\data\\" in keywords.domain_arpa(lex)
    assert keywords.keyphrases(lex).splitlines()[0].endswith("/1e-20/")


class EchoBackend:
    sample_rate_hz = 8000

    def __init__(self, word="liver"):
        self.word = word

    def transcribe(self, audio, sample_rate_hz):
        return [Word(self.word, 0.0, len(audio) / sample_rate_hz)]


def test_backend_interface_plugs_a_user_backend():
    register_backend("echo_test")(EchoBackend)
    try:
        backend = create_backend({"name": "echo_test", "word": "spleen"}, load_lexicon("abdominal"))
        assert backend.transcribe(np.zeros(800, np.float32), 8000) == [Word("spleen", 0.0, 0.1)]
        with pytest.raises(ConfigError, match="unknown ASR backend"):  # configs never import code by path
            create_backend({"name": "tests.speech.test_keywords_transcribe:EchoBackend"})
    finally:
        BACKENDS.pop("echo_test")
    with pytest.raises(ConfigError, match="unknown ASR backend"):
        create_backend({"name": "nope"})
    with pytest.raises(ConfigError, match="openai/whisper-base: not a folder.*local CTranslate2"):
        create_backend({"name": "faster_whisper", "model_path": "openai/whisper-base"})


def test_keyphrase_hits_keep_the_longest_overlap():
    hits = [Word("b line", 1.0, 1.4), Word("b lines", 1.0, 1.5), Word("a line", 1.2, 1.5), Word("effusion", 2.0, 2.4)]
    assert [w.text for w in _drop_overlapping(hits)] == ["b lines", "effusion"]


@pytest.fixture(scope="module")
def phrase():
    from sonotell.bench.tts import EspeakTTS, Voice
    from sonotell.io.audio import resample

    speech = EspeakTTS().synthesize("there is a small pleural effusion and lots of b lines", Voice())
    return resample(speech.audio, speech.sample_rate_hz, 16000), speech.words


@pytest.mark.parametrize("mode", ["domain_lm", "keyphrase"])
def test_pocketsphinx_recognises_terms_with_timestamps(mode, phrase):
    audio, truth = phrase
    backend = PocketsphinxBackend(load_lexicon("lung"), mode=mode)
    words = backend.transcribe(audio, 16000)
    assert words and all(0 <= w.start_s < w.end_s <= len(audio) / 16000 + 0.02 for w in words)
    text = " ".join(w.text for w in words)
    assert "lines" in text
    start_of_b = next(s for w, s, _ in truth if w == "b")
    b_word = next(w for w in words if w.text.startswith("b"))
    assert abs(b_word.start_s - start_of_b) < 0.15
    assert backend.transcribe(audio, 16000) == words  # deterministic


def test_pocketsphinx_rejects_wrong_rate_and_mode():
    with pytest.raises(ConfigError, match="mode"):
        PocketsphinxBackend(load_lexicon("lung"), mode="nbest")
    with pytest.raises(ConfigError, match="needs a lexicon"):
        PocketsphinxBackend(None, mode="jsgf")
    backend = PocketsphinxBackend(load_lexicon("lung"), mode="keyphrase")
    with pytest.raises(ValueError, match="16000"):
        backend.transcribe(np.zeros(800, np.float32), 8000)


def test_compound_tokens_and_their_pronunciations():
    lex = load_lexicon("lung")
    assert "a_lines" in keywords.compound_forms(lex) and "effusion" not in keywords.compound_forms(lex)
    table = {"a": ["AH", "EY"], "lines": ["L AY N Z"]}
    assert keywords.compound_pronunciations(["a_lines"], table.__getitem__) == {
        "a_lines": ["AH L AY N Z", "EY L AY N Z"]
    }


def test_a_compound_word_is_spotted_as_its_term():
    from sonotell.speech.spot import Spotter

    events = Spotter(load_lexicon("lung")).spot([Word("no", 0.0, 0.2), Word("a_lines", 0.2, 0.8)])
    assert [(e.label, e.start_s, e.end_s, e.negated) for e in events] == [("A-lines", 0.2, 0.8, True)]


def test_accent_variants_follow_the_rules():
    # monophthongs: every diphthong of the rule at once; non-rhotic: r only after a vowel goes
    assert keywords.accent_variants("L AY N Z") == ["L AA N Z"]
    assert keywords.accent_variants("P L UH R AH L") == ["P L UH AH L"]
    assert keywords.accent_variants("R EY N") == ["R EH N"]  # initial r stays; no r dropped -> one variant
    assert keywords.accent_variants("K AH M B ER") == ["K AH M B AH"]
    assert keywords.accent_variants("F L UW AH D") == []


def test_pocketsphinx_accent_variants_still_recognise_terms(phrase):
    audio, _ = phrase
    words = PocketsphinxBackend(load_lexicon("lung"), mode="domain_lm", accent_variants=True).transcribe(audio, 16000)
    text = " ".join(w.text for w in words)
    assert "effusion" in text and "lines" in text  # a variant is named word(2): the text is the word itself
    assert not any("(" in w.text for w in words)


def test_whisper_vocabulary_prompt_styles():
    from sonotell.errors import ConfigError
    from sonotell.speech.lexicon import load_lexicon
    from sonotell.speech.transcribe import vocabulary_prompt

    lex = load_lexicon("lung")
    terms = vocabulary_prompt(lex, "terms")
    assert terms.startswith("Ultrasound narration: a lines, a line,") and "bee lines" not in terms
    labels = vocabulary_prompt(lex, "labels")
    head, tail = labels.split("; ")
    assert head == "Lung ultrasound: A-lines, B-lines, consolidation, effusion, pleural irregularity, air bronchogram"
    assert "als" not in tail.split(", ") and "a lines" not in tail and tail.endswith("static air bronchogram.")
    with pytest.raises(ConfigError, match="prompt_style"):
        vocabulary_prompt(lex, "poem")


def fake_model_dir(folder):
    """What ``check_model_dir`` looks for; the fake WhisperModel never reads it."""
    for name in ("model.bin", "config.json", "tokenizer.json"):
        (folder / name).write_text("{}")
    return folder


def test_faster_whisper_backend_passes_its_options_and_reads_word_times(tmp_path, monkeypatch):
    """A fake ``faster_whisper`` module: no weights needed."""
    import sys
    import types as pytypes

    from sonotell.speech.lexicon import load_lexicon
    from sonotell.speech.transcribe import create_backend

    calls = {}

    class FakeModel:
        def __init__(self, path, **kwargs):
            calls["init"] = (path, kwargs)

        def transcribe(self, audio, **kwargs):
            calls["transcribe"] = kwargs
            W = pytypes.SimpleNamespace
            seg = W(
                words=[
                    W(word=" Here", start=0.3, end=0.5, probability=0.9),
                    W(word=" A-lines.", start=0.6, end=1.1, probability=0.8),
                    W(word=" ", start=1.1, end=1.2, probability=0.1),
                ]
            )
            return iter([seg]), None

    monkeypatch.setitem(sys.modules, "faster_whisper", pytypes.SimpleNamespace(WhisperModel=FakeModel))
    fake_model_dir(tmp_path)
    backend = create_backend(
        {
            "name": "faster_whisper",
            "model_path": str(tmp_path),
            "beam_size": 5,
            "prompt_style": "labels",
            "temperature": 0.0,
        },
        load_lexicon("lung"),
    )
    words = backend.transcribe(np.zeros(16000, np.float32), 16000)
    assert [(w.text, w.start_s, w.end_s, w.confidence) for w in words] == [
        ("Here", 0.3, 0.5, 0.9),
        ("A-lines.", 0.6, 1.1, 0.8),
    ]
    assert calls["init"][1]["local_files_only"] is True
    opts = calls["transcribe"]
    assert opts["beam_size"] == 5 and opts["temperature"] == 0.0 and opts["word_timestamps"] is True
    assert (
        opts["initial_prompt"].startswith("Lung ultrasound: A-lines, B-lines,")
        and opts["condition_on_previous_text"] is False
    )
    default = create_backend({"name": "faster_whisper", "model_path": str(tmp_path)}, load_lexicon("lung"))
    default.transcribe(np.zeros(16000, np.float32), 16000)
    assert "temperature" not in calls["transcribe"]  # faster-whisper's own fallback ladder


def test_max_phone_rate_drops_compounds_said_too_fast():
    class Seg:
        def __init__(self, word, start_frame, end_frame):
            self.word, self.start_frame, self.end_frame, self.prob = word, start_frame, end_frame, 0

    class FakeDecoder:  # the decoder's part of the pocketsphinx API that transcribe() uses
        def start_utt(self):
            pass

        def process_raw(self, pcm, full_utt):
            pass

        def end_utt(self):
            pass

        def get_logmath(self):
            return None

        def seg(self):
            return [
                Seg("here", 0, 29),
                Seg("pleural_thickening", 30, 99),
                Seg("<sil>", 100, 109),
                Seg("pleural_thickening(2)", 110, 159),
                Seg("a_lines", 160, 199),
            ]

    backend = PocketsphinxBackend.__new__(PocketsphinxBackend)
    backend.mode, backend.dither, backend.seed, backend.decoder = "domain_lm", 0.0, 0, FakeDecoder()
    backend.n_phones = {"here": 3, "pleural_thickening": 13, "pleural_thickening(2)": 12, "a_lines": 5}
    backend.max_phone_rate = None
    assert [w.text for w in backend.transcribe(np.zeros(32000, np.float32), 16000)] == [
        "here",
        "pleural_thickening",
        "pleural_thickening",
        "a_lines",
    ]
    # 13 phones in 0.70 s = 18.6/s; the variant 12 in 0.50 s = 24/s; a_lines 5 in 0.40 s = 12.5/s;
    # single words never dropped
    backend.max_phone_rate = 18.0
    words = backend.transcribe(np.zeros(32000, np.float32), 16000)
    assert [(w.text, w.start_s, w.end_s) for w in words] == [("here", 0.0, 0.3), ("a_lines", 1.6, 2.0)]
    backend.max_phone_rate = 20.0
    assert [w.text for w in backend.transcribe(np.zeros(32000, np.float32), 16000)] == [
        "here",
        "pleural_thickening",
        "a_lines",
    ]


def test_faster_whisper_seeds_ctranslate2_before_every_call(tmp_path, monkeypatch):
    """The fallback ladder samples above temperature 0: the seed is set again before each call."""
    import sys
    import types as pytypes

    seeds, order = [], []

    class FakeModel:
        def __init__(self, path, **kwargs):
            pass

        def transcribe(self, audio, **kwargs):
            order.append("transcribe")
            return iter([]), None

    monkeypatch.setitem(sys.modules, "faster_whisper", pytypes.SimpleNamespace(WhisperModel=FakeModel))
    monkeypatch.setitem(
        sys.modules,
        "ctranslate2",
        pytypes.SimpleNamespace(set_random_seed=lambda s: (seeds.append(s), order.append("seed"))),
    )
    fake_model_dir(tmp_path)
    backend = create_backend({"name": "faster_whisper", "model_path": str(tmp_path), "seed": 7}, load_lexicon("lung"))
    backend.transcribe(np.zeros(1600, np.float32), 16000)
    backend.transcribe(np.zeros(1600, np.float32), 16000)
    assert seeds == [7, 7] and order == ["seed", "transcribe", "seed", "transcribe"]

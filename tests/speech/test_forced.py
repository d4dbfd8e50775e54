"""Forced alignment of recognised words (pocketsphinx alignment mode) against eSpeak's own word times."""

import numpy as np
import pytest

from sonotell.bench.tts import EspeakTTS
from sonotell.speech.forced import ForcedAligner, WordAlignConfig
from sonotell.speech.lexicon import load_lexicon
from sonotell.types import Word


@pytest.fixture(scope="module")
def said():
    from sonotell.io.audio import resample

    speech = EspeakTTS().synthesize("here is the liver and now the gallbladder")
    lead = np.zeros(16000, np.float32)  # 1 s of silence first: where Whisper's starts come out early
    wav = resample(speech.audio, speech.sample_rate_hz, 16000)
    return np.concatenate([lead, wav, lead[:8000]]), [(w, a + 1.0, b + 1.0) for w, a, b in speech.words]


def test_aligned_starts_land_on_the_spoken_words(said):
    audio, truth = said
    # a recogniser's words, every start 0.5 s early (the drift issue 11 measured on real voices)
    words = [Word(w, max(0.0, a - 0.5), b - 0.5, 0.9) for w, a, b in truth]
    got = ForcedAligner(load_lexicon("abdominal")).align(audio, 16000, words)
    assert [w.text for w in got] == [w for w, _, _ in truth] and all(w.aligned for w in got)
    errors = [abs(g.start_s - a) for g, (_, a, _) in zip(got, truth)]
    assert np.median(errors) <= 0.05 and max(errors) <= 0.15, errors
    assert all(g.confidence == 0.9 for g in got)


def test_unpronounceable_or_far_off_words_keep_the_recogniser_times_flagged(said):
    audio, truth = said
    words = [Word(w, a, b) for w, a, b in truth]
    garbled = [*words[:2], Word("xqzkw", words[2].start_s - 0.4, words[2].end_s), *words[3:]]
    aligner = ForcedAligner(load_lexicon("abdominal"))
    got = aligner.align(audio, 16000, garbled)
    # the unpronounceable word keeps its time, flagged; the others are still aligned
    assert (got[2].start_s, got[2].aligned) == (garbled[2].start_s, False)
    assert all(w.aligned for k, w in enumerate(got) if k != 2)
    assert abs(got[3].start_s - truth[3][1]) <= 0.15  # the next word absorbs some of the skipped word
    assert aligner.stats == {"words": len(words), "aligned": len(words) - 1}
    strict = ForcedAligner(config=WordAlignConfig(max_shift_s=0.2))
    shifted = [Word(w.text, w.start_s + 0.8, w.end_s + 0.8) for w in words]  # the recogniser 0.8 s late
    assert all(
        w.aligned is False and w.start_s == s.start_s for w, s in zip(strict.align(audio, 16000, shifted), shifted)
    )


def test_a_failed_alignment_is_retried_with_wide_beams(said, monkeypatch):
    audio, truth = said
    aligner = ForcedAligner(load_lexicon("abdominal"))
    real, tried = ForcedAligner._decode, []

    def first_fails(d, pcm, flat):
        tried.append(d)
        return None if d is aligner.decoder else real(d, pcm, flat)

    monkeypatch.setattr(ForcedAligner, "_decode", staticmethod(first_fails))
    got = aligner.align(audio, 16000, [Word(w, a, b) for w, a, b in truth])
    assert all(w.aligned for w in got) and len(tried) == 2 and tried[1] is aligner._wide
    assert abs(got[-1].start_s - truth[-1][1]) <= 0.1  # "gallbladder": from the lexicon, added to the wide decoder too


def test_a_span_that_fails_whole_is_cut_at_its_longest_pause_and_aligned_in_halves(said, monkeypatch):
    audio, truth = said
    # a 0.6 s pause after "liver" (the 4th word): the cut goes in its middle
    cut = int(truth[4][1] * 16000)
    audio = np.concatenate([audio[:cut], np.zeros(9600, np.float32), audio[cut:]])
    truth = [(w, a + (0.6 if k >= 4 else 0), b + (0.6 if k >= 4 else 0)) for k, (w, a, b) in enumerate(truth)]
    words = [Word(w, a, b) for w, a, b in truth]
    aligner = ForcedAligner(load_lexicon("abdominal"))
    real, calls = ForcedAligner._align, []

    def whole_fails(self, audio, sr, tokens):
        calls.append(len(tokens))
        return None if len(tokens) == len(words) else real(self, audio, sr, tokens)

    monkeypatch.setattr(ForcedAligner, "_align", whole_fails)
    got = aligner.align(audio, 16000, words)
    assert calls == [len(words), 4, len(words) - 4]  # the whole, then the two halves
    assert all(w.aligned for w in got)
    errors = [abs(g.start_s - a) for g, (_, a, _) in zip(got, truth)]
    assert np.median(errors) <= 0.05 and max(errors) <= 0.15, errors
    # without a pause there is no cut: the words keep the recogniser's times
    calls.clear()
    monkeypatch.setattr(ForcedAligner, "_align", lambda self, audio, sr, tokens: calls.append(len(tokens)))
    assert not any(w.aligned for w in aligner.align(audio[:cut], 16000, words[:4])) and calls == [4]


def test_aligned_times_do_not_depend_on_what_the_aligner_aligned_before(said):
    # pocketsphinx carried its cepstral mean from one utterance to the next: the same words in the same
    # audio came out a frame (10 ms) apart depending on the scans a worker had aligned before (issue 25);
    # here a 2 s hum aligned first moved a word boundary
    audio, truth = said
    words = [Word(w, a, b) for w, a, b in truth]
    fresh = ForcedAligner(load_lexicon("abdominal")).align(audio, 16000, words)
    used = ForcedAligner(load_lexicon("abdominal"))
    hum = (0.5 * np.sin(2 * np.pi * 200 * np.arange(32000) / 16000)).astype(np.float32)
    used.align(hum, 16000, words[:2])
    again = used.align(audio, 16000, words)
    assert all(w.aligned for w in fresh) and again == fresh

"""Whisper's words for a recording do not depend on what the same backend decoded before (issue 25).

faster-whisper re-decodes by *sampling* when a greedy pass looks wrong (its temperature ladder).
CTranslate2 seeds its random generator once per decoding thread, at the first sample, so
``set_random_seed`` before a call did not rewind a generator that had sampled: the same scan got
other words depending on the scans its worker had decoded before (local pool vs Ray order).
"""

import numpy as np
import pytest

from sonotell.bench.tts import EspeakTTS
from sonotell.speech.transcribe import create_backend
from tests.speech.test_whisper_default import needs_weights


@needs_weights
@pytest.mark.slow
def test_sampled_whisper_words_do_not_depend_on_the_calls_before():
    tts = EspeakTTS()
    said = tts.synthesize("down the gallbladder, take a look at the liver").audio
    other = tts.synthesize("there is a small effusion next to the right kidney").audio
    said = said + np.random.default_rng(0).normal(0, 0.05, len(said)).astype(np.float32)
    spec = {"name": "faster_whisper", "cpu_threads": 2, "temperature": [0.9]}  # every call samples

    def words(backend, audio):
        return [(w.text, w.start_s, w.end_s, w.confidence) for w in backend.transcribe(audio, 16000)]

    fresh = words(create_backend(spec), said)
    used = create_backend(spec)
    words(used, other)
    words(used, said[::-1].copy())
    assert fresh and words(used, said) == fresh


def test_a_call_that_sampled_gets_a_fresh_model_even_when_the_greedy_result_was_kept(tmp_path, monkeypatch):
    # faster-whisper samples when a greedy pass looks wrong, then may keep the greedy result after all:
    # the generator has moved on either way, so what counts is that CTranslate2 was asked to sample
    import sys
    import types as pytypes

    from tests.speech.test_keywords_transcribe import fake_model_dir

    loads, generated = [], []

    class FakeCT2:
        def generate(self, *args, **kwargs):
            generated.append(kwargs)

    class FakeModel:
        def __init__(self, path, **kwargs):
            loads.append(path)
            self.model = FakeCT2()

        def transcribe(self, audio, **kwargs):
            self.model.generate(beam_size=5)  # the greedy pass
            if audio[0] > 0:  # "looks wrong": re-decoded by sampling, the greedy result kept
                self.model.generate(beam_size=1, num_hypotheses=5, sampling_topk=0, sampling_temperature=0.2)
            return iter([]), None

    monkeypatch.setitem(sys.modules, "faster_whisper", pytypes.SimpleNamespace(WhisperModel=FakeModel))
    fake_model_dir(tmp_path)
    backend = create_backend({"name": "faster_whisper", "model_path": str(tmp_path)})
    greedy, doubtful = np.zeros(1600, np.float32), np.ones(1600, np.float32)
    for audio in (greedy, greedy, doubtful, greedy, greedy):
        backend.transcribe(audio, 16000)
    assert len(generated) == 6 and generated[3]["sampling_temperature"] == 0.2
    assert len(loads) == 2  # loaded once, then again only before the call after the one that sampled

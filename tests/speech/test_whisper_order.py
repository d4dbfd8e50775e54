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

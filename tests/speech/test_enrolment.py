"""Enrolment steers diarization: enrol speaker B and B's terms are kept, A's rejected (and the other way)."""

import numpy as np
import pytest

from sonotell.config import load_config
from sonotell.speech.pipeline import SpeechPipeline

from .conftest import ScriptedBackend

A_LINES = ["here is the liver", "now the spleen", "and the right kidney", "this is the portal vein"]
B_LINE = "is that the gallbladder"


@pytest.fixture(scope="module")
def two_voices():
    from sonotell.bench.tts import EspeakTTS, Voice
    from sonotell.io.audio import resample

    tts = EspeakTTS()
    a, b = Voice("en-us", "m3", pitch=40), Voice("en", "f2", pitch=70)

    def say(text, voice):
        s = tts.synthesize(text, voice)
        return resample(s.audio, s.sample_rate_hz, 16000)

    gap = np.zeros(int(0.8 * 16000), np.float32)
    order = [(A_LINES[0], a), (B_LINE, b), (A_LINES[1], a), (A_LINES[2], a), (A_LINES[3], a)]
    wav = np.concatenate([gap] + [x for text, v in order for x in (say(text, v), gap)])
    return (
        wav,
        [text for text, _ in order],
        say("how long will this take, is it cold", b),
        say("let me move the probe a little", a),
    )


def labels_heard(wav, script, enrol):
    cfg = load_config(
        "pipelines", "speech_light", ["vad.name=energy", "transcribe.scope=span", "word_times.enabled=false"]
    )
    pipe = SpeechPipeline(cfg, "abdominal", backend=ScriptedBackend(script), enrolment=enrol)
    return {e.label for e in pipe.process_audio(wav, 16000).events}


def test_enrolling_either_voice_keeps_that_voice_only(two_voices):
    wav, script, b_sample, a_sample = two_voices
    assert labels_heard(wav, script, b_sample) == {"gallbladder"}
    assert labels_heard(wav, script, a_sample) == {"liver", "spleen", "kidney", "vessels"}  # portal vein: vessels

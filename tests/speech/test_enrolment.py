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


def pipeline(script, enrol=None, **cfg_over):
    cfg = load_config(
        "pipelines", "speech_light", ["vad.name=energy", "transcribe.scope=span", "word_times.enabled=false"]
    )
    if cfg_over.get("enrol_wav"):
        cfg["diarize"]["enrol_wav"] = str(cfg_over["enrol_wav"])
    return SpeechPipeline(cfg, "abdominal", backend=ScriptedBackend(script), enrolment=enrol)


def test_info_says_whether_enrolment_was_used_whom_it_kept_and_the_score(two_voices):
    wav, script, b_sample, _ = two_voices
    plain = pipeline(script).process_audio(wav, 16000).info
    assert plain["enrolment_used"] is False and "enrolment_score" not in plain
    info = pipeline(script, b_sample).process_audio(wav, 16000).info
    assert info["enrolment_used"] is True and info["kept_speaker"] == "clinician"
    assert info["kept_side"] == "minority"  # B says one line of five
    assert info["enrolment_threshold"] <= info["enrolment_score"] <= 1.0


def test_nobody_matching_the_enrolled_voice_is_a_note_and_no_events(two_voices):
    wav, script, _, _ = two_voices
    rng = np.random.default_rng(0)
    t = np.arange(2 * 16000) / 16000
    # a "voice" that is a slow chirp over noise: no speaker of the recording resembles it
    stranger = (0.3 * np.sin(2 * np.pi * (900 + 600 * t) * t) + rng.normal(0, 0.05, len(t))).astype(np.float32)
    result = pipeline(script, stranger).process_audio(wav, 16000)
    assert result.events == []
    assert result.info["kept_speaker"] is None and "no speaker resembles the enrolled voice" in result.info["note"]


def test_bad_enrolment_samples_are_one_line_errors_and_other_rates_are_resampled(two_voices, tmp_path):
    from sonotell.errors import InputError
    from sonotell.io.audio import resample, save_audio

    wav, script, b_sample, _ = two_voices
    with pytest.raises(InputError, match="<enrolment sample>: the enrolment sample is silent"):
        pipeline(script, np.zeros(32000, np.float32))
    with pytest.raises(InputError, match=r"the enrolment sample is too short \(0\.5 s of sound; at least 1\.0 s\)"):
        pipeline(script, b_sample[:8000] + 0.1)  # half a second of sound
    save_audio(tmp_path / "b48k.wav", resample(b_sample, 16000, 48000), 48000)
    assert {e.label for e in pipeline(script, enrol_wav=tmp_path / "b48k.wav").process_audio(wav, 16000).events} == {
        "gallbladder"
    }
    save_audio(tmp_path / "quiet.wav", np.zeros(16000, np.float32), 16000)
    with pytest.raises(InputError, match="quiet.wav: .*silent"):
        pipeline(script, enrol_wav=tmp_path / "quiet.wav")

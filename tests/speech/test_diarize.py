import numpy as np
import pytest

from sonotell.speech.diarize import CLINICIAN, DiarizeConfig, assign_speakers, cluster_embeddings


def unit(v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


def test_clusters_by_cosine_distance():
    emb = np.stack([unit([1, 0, 0]), unit([0.95, 0.05, 0]), unit([0, 1, 0]), unit([0.05, 1, 0])])
    assert cluster_embeddings(emb, 0.3).tolist() == [0, 0, 1, 1]
    assert cluster_embeddings(emb[:1], 0.3).tolist() == [0]


def test_clinician_is_the_speaker_with_most_speech():
    spans = [(0.0, 3.0), (3.5, 4.2), (5.0, 8.0), (8.5, 8.7)]
    emb = np.stack([unit([1, 0]), unit([0, 1]), unit([1, 0.02]), unit([0, 1])])
    speakers = assign_speakers(spans, emb, DiarizeConfig(distance_threshold=0.3, min_span_s=0.4))
    # the 0.2 s span is too short to embed reliably: it takes the nearest long span's speaker
    assert speakers == [CLINICIAN, "speaker_0", CLINICIAN, CLINICIAN]


def test_enrolment_picks_the_enrolled_voice_even_if_quieter():
    spans = [(0.0, 3.0), (3.5, 4.5), (5.0, 8.0)]
    emb = np.stack([unit([1, 0]), unit([0, 1]), unit([1, 0])])
    assert assign_speakers(spans, emb, DiarizeConfig(distance_threshold=0.3), enrolment=unit([0.1, 1])) == ["speaker_0", CLINICIAN, "speaker_0"]
    nobody = assign_speakers(spans, emb, DiarizeConfig(distance_threshold=0.3, enrol_min_similarity=0.99), enrolment=unit([1, 1]))
    assert CLINICIAN not in nobody


def test_resemblyzer_separates_two_tts_voices():
    from sonotell.bench.tts import EspeakTTS, Voice
    from sonotell.io.audio import resample
    from sonotell.speech.diarize import embed

    tts = EspeakTTS()
    def say(text, voice):
        s = tts.synthesize(text, voice)
        return embed(resample(s.audio, s.sample_rate_hz, 16000))
    a1, a2 = say("here is the liver and the right kidney", Voice("en-us", "m3")), say("now the spleen and the gallbladder", Voice("en-us", "m3"))
    b1 = say("is that cold, how long will this take", Voice("en", "f2", 70))
    assert float(a1 @ a2) > float(a1 @ b1)
    assert np.linalg.norm(a1) == pytest.approx(1.0, abs=1e-3)

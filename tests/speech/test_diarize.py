import numpy as np
import pytest

from sonotell.speech.diarize import (
    CLINICIAN,
    DiarizeConfig,
    assign_speakers,
    cluster_embeddings,
    dominant_speaker,
    windows_to_turns,
)


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
    assert assign_speakers(spans, emb, DiarizeConfig(distance_threshold=0.3), enrolment=unit([0.1, 1])) == [
        "speaker_0",
        CLINICIAN,
        "speaker_0",
    ]
    nobody = assign_speakers(
        spans, emb, DiarizeConfig(distance_threshold=0.3, enrol_min_similarity=0.99), enrolment=unit([1, 1])
    )
    assert CLINICIAN not in nobody


def test_resemblyzer_separates_two_tts_voices():
    from sonotell.bench.tts import EspeakTTS, Voice
    from sonotell.io.audio import resample
    from sonotell.speech.diarize import embed

    tts = EspeakTTS()

    def say(text, voice):
        s = tts.synthesize(text, voice)
        return embed(resample(s.audio, s.sample_rate_hz, 16000))

    a1, a2 = (
        say("here is the liver and the right kidney", Voice("en-us", "m3")),
        say("now the spleen and the gallbladder", Voice("en-us", "m3")),
    )
    b1 = say("is that cold, how long will this take", Voice("en", "f2", 70))
    assert float(a1 @ a2) > float(a1 @ b1)
    assert np.linalg.norm(a1) == pytest.approx(1.0, abs=1e-3)


# -- windows mode (issue 3 follow-up 2) ------------------------------------------------------


def test_windows_to_turns_cuts_between_window_centres():
    # windows 0.8 s long every 0.2 s: centres 0.4, 0.6, 0.8, 1.0, 1.2; labels change between 0.6 and 0.8
    t = np.array([[0.0, 0.8], [0.2, 1.0], [0.4, 1.2], [0.6, 1.4], [0.8, 1.6]])
    assert windows_to_turns(t, [0, 0, 1, 1, 1], (0.0, 1.6), min_turn_s=0.1) == [(0.0, 0.7, 0), (0.7, 1.6, 1)]


def test_windows_to_turns_folds_a_lone_window_into_its_longer_neighbour():
    t = np.array([[0.0, 1.0], [0.25, 1.25], [0.5, 1.5], [0.75, 1.75], [1.0, 2.0]])
    # centres 0.5 .. 1.5; window 2 alone owns 0.875-1.125 (0.25 s < 0.3 s): it joins the longer
    # neighbour (the first run, 0.875 s)
    assert windows_to_turns(t, [0, 0, 1, 0, 0], (0.0, 2.0), min_turn_s=0.3) == [(0.0, 2.0, 0)]
    # a 0.5 s run of speaker 1 stays a turn
    assert windows_to_turns(t, [0, 0, 1, 1, 0], (0.0, 2.0), min_turn_s=0.3) == [
        (0.0, 0.875, 0),
        (0.875, 1.375, 1),
        (1.375, 2.0, 0),
    ]


def test_dominant_speaker_rejects_the_minority_voice():
    a, b = unit([1.0, 0.0, 0.0]), unit([0.0, 1.0, 0.0])
    rng = np.random.default_rng(0)
    main = [unit(a + 0.05 * rng.normal(size=3)) for _ in range(8)]
    emb = np.stack(main + [unit(b + 0.05 * rng.normal(size=3)) for _ in range(2)])
    mask, centroid = dominant_speaker(emb, other_below=0.1)
    assert mask.tolist() == [True] * 8 + [False] * 2
    assert float(centroid @ a) > 0.99
    # started from an enrolled voice, the centroid stays on the main voice (the threshold is
    # relative to the median window)
    mask2, _ = dominant_speaker(emb, other_below=0.1, initial=b)
    assert mask2.tolist() == mask.tolist()


def test_window_embeddings_cover_the_span():
    from sonotell.speech.diarize import window_embeddings

    rng = np.random.default_rng(0)
    wav = (0.1 * rng.normal(size=int(2.3 * 16000))).astype(np.float32)
    times, emb = window_embeddings(wav, window_s=1.0, hop_s=0.25)
    # 231 mel frames: windows start at 0, 0.25, ..., 1.25 s and one more ending at the last frame (1.31 s)
    assert times[:, 0].tolist() == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.31])
    assert times[-1, 1] == pytest.approx(2.31)
    assert emb.shape == (7, 256) and np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)
    short_times, short_emb = window_embeddings(wav[:8000], window_s=1.0, hop_s=0.25)
    assert short_times.shape == (1, 2) and short_times[0, 0] == 0.0 and short_emb.shape == (1, 256)


def test_cluster_windows_beyond_the_cap_assigns_to_the_nearest_centroid():
    from sonotell.speech.diarize import cluster_windows

    rng = np.random.default_rng(1)
    a, b = unit([1.0, 0.0, 0.0]), unit([0.0, 0.0, 1.0])
    labels = np.array([0] * 30 + [1] * 10 + [0] * 20)
    emb = np.stack([unit((a if k == 0 else b) + 0.05 * rng.normal(size=3)) for k in labels])
    full = cluster_windows(emb, 0.3, max_windows=1000)
    capped = cluster_windows(emb, 0.3, max_windows=12)  # 12 evenly spaced windows clustered, 48 assigned
    assert full.tolist() == labels.tolist() and capped.tolist() == labels.tolist()


def test_numpy_voice_encoder_matches_resemblyzer(tmp_path):
    # the encoder runs in numpy so that a labelling process needs no torch (issue 20); same numbers as resemblyzer's
    torch = pytest.importorskip("torch")
    librosa = pytest.importorskip("librosa")
    from resemblyzer import VoiceEncoder as TorchEncoder
    from resemblyzer import audio as rz_audio

    from sonotell.speech.diarize import VoiceEncoder, mel_filters, mel_spectrogram, voice_encoder_weights

    assert np.allclose(mel_filters(), librosa.filters.mel(sr=16000, n_fft=400, n_mels=40), atol=1e-6)
    rng = np.random.default_rng(0)
    t = np.arange(int(2.3 * 16000)) / 16000
    wav = (0.3 * np.sin(2 * np.pi * (150 + 40 * np.sin(2 * np.pi * 2 * t)) * t) + rng.normal(0, 0.02, len(t))).astype(
        np.float32
    )
    mel = mel_spectrogram(wav)
    reference_mel = rz_audio.wav_to_mel_spectrogram(wav)
    assert mel.shape == reference_mel.shape
    assert np.allclose(mel, reference_mel, rtol=1e-4, atol=1e-4)
    ours = VoiceEncoder(voice_encoder_weights(tmp_path))
    theirs = TorchEncoder("cpu", verbose=False)
    batch = np.stack([mel[:100], mel[60:160]])
    with torch.no_grad():
        expected = theirs(torch.from_numpy(batch)).numpy()
    assert np.allclose(ours(batch), expected, atol=1e-5)
    assert np.allclose(ours.embed_utterance(wav), theirs.embed_utterance(wav), atol=1e-5)
    assert (tmp_path / "voice-encoder.npz").is_file()  # converted once; the next load reads the npz
    first, again = voice_encoder_weights(tmp_path), voice_encoder_weights(tmp_path)
    assert sorted(again) == sorted(first) and all(np.array_equal(again[k], first[k]) for k in first)

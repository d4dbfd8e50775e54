import numpy as np
import pytest

from sonotell.speech import clean
from sonotell.speech.vad import create_vad, flags_to_spans, spans_to_mask


def test_loudness_target_and_peak_limit():
    wav = np.full(1000, 0.01, np.float32)
    out = clean.normalise_loudness(wav, -20.0)
    assert 20 * np.log10(np.sqrt(np.mean(out.astype(np.float64) ** 2))) == pytest.approx(-20.0, abs=1e-3)
    spiky = np.zeros(1000, np.float32)
    spiky[0] = 0.5
    spiky[1:] = 0.001
    assert np.max(np.abs(clean.normalise_loudness(spiky, -3.0))) == pytest.approx(0.99, abs=1e-6)


def test_snr_estimate_against_hand_computed():
    wav = np.ones(1000, np.float32) * 0.1
    mask = np.zeros(1000, bool)
    mask[:500] = True
    wav[:500] = np.sqrt(0.01 + 0.1**2)  # speech power 0.02 = signal 0.01 + noise 0.01
    assert clean.estimate_snr_db(wav, mask) == pytest.approx(0.0, abs=1e-4)
    assert clean.estimate_snr_db(wav, np.ones(1000, bool)) is None


def test_denoise_switch():
    cfg = clean.CleanConfig(denoise="auto", denoise_below_snr_db=5.0)
    assert (
        clean.should_denoise(cfg, 0.0) and not clean.should_denoise(cfg, 10.0) and not clean.should_denoise(cfg, None)
    )
    assert clean.should_denoise(clean.CleanConfig(denoise=True), 30.0)
    assert not clean.should_denoise(clean.CleanConfig(denoise=False), -5.0)


def test_denoise_lowers_noise_floor(bursts):
    wav, sr, _ = bursts
    noisy = wav + np.random.default_rng(1).normal(0, 0.02, len(wav)).astype(np.float32)
    out = clean.denoise(noisy, sr, noisy[: sr // 4])
    assert np.std(out[: sr // 4]) < 0.5 * np.std(noisy[: sr // 4])


def test_clipped_fraction():
    assert clean.clipped_fraction(np.array([1.0, -1.0, 0.2, 0.3], np.float32)) == 0.5


def test_flags_to_spans_merges_gaps_and_drops_bursts():
    flags = np.array([0, 1, 1, 1, 0, 1, 1, 0, 0, 0, 0, 1, 0], bool)  # frames of 0.1 s
    got = flags_to_spans(flags, 0.1, 1.3, min_speech_s=0.2, min_silence_s=0.15, pad_s=0.0)
    assert [(round(s, 6), round(e, 6)) for s, e in got] == [(0.1, 0.7)]
    mask = spans_to_mask([(0.1, 0.2)], 10, 10)
    assert mask.tolist() == [False, True] + [False] * 8


@pytest.mark.parametrize("name", ["energy", "webrtc", "silero"])
def test_vads_find_the_bursts(name, bursts):
    wav, sr, spans = bursts
    if name == "silero":  # a model of speech, not tones: check it runs and finds real speech below
        pytest.importorskip("silero_vad")
    found = create_vad(name, pad_s=0.0)(wav, sr)
    if name != "silero":
        assert len(found) == 2
        for (s, e), (ts, te) in zip(found, spans):
            assert abs(s - ts) < 0.15 and abs(e - te) < 0.15  # webrtc holds on ~0.1 s


def test_silero_on_synthetic_speech():
    from sonotell.bench.tts import EspeakTTS, Voice
    from sonotell.io.audio import resample

    speech = EspeakTTS().synthesize("here is the portal vein", Voice())
    audio = resample(speech.audio, speech.sample_rate_hz, 16000)
    wav = np.concatenate([np.zeros(16000, np.float32), audio, np.zeros(16000, np.float32)])
    spans = create_vad("silero")(wav, 16000)
    assert len(spans) == 1
    assert spans[0][0] == pytest.approx(1.0, abs=0.15) and spans[0][1] == pytest.approx(
        1.0 + speech.words[-1][2], abs=0.3
    )

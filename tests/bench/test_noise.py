import numpy as np
import pytest

from sonotell.bench.noise import (
    active_mask,
    active_power,
    coloured_noise,
    exponential_rir,
    fit_length,
    mix_at_snr,
    reverberate,
    snr_db,
)


def test_mix_at_snr_matches_hand_computation():
    sr = 1000
    # speech: 0.5 s of a constant 0.2 (power 0.04) inside 2 s of silence; noise: +-0.1 (power 0.01)
    speech = np.zeros(2 * sr)
    speech[500:1000] = 0.2
    noise = np.tile([0.1, -0.1], sr)
    mixed, scaled = mix_at_snr(speech, noise, 10.0, sr)
    # active speech power 0.04 (the silence must not count); 10 dB -> noise power 0.004
    gain = np.sqrt(0.04 / (0.01 * 10.0))
    np.testing.assert_allclose(scaled, noise * gain, rtol=1e-6)
    np.testing.assert_allclose(mixed, speech + noise * gain, rtol=1e-6, atol=1e-7)
    assert snr_db(speech, scaled, sr) == pytest.approx(10.0, abs=1e-4)
    # the naive whole-track SNR would be 6 dB lower here (speech active a quarter of the time)
    naive = 10 * np.log10(np.mean(speech**2) / np.mean(scaled.astype(np.float64) ** 2))
    assert naive == pytest.approx(10.0 + 10 * np.log10(0.25), abs=1e-3)


def test_active_mask_frames():
    sr = 100  # 20 ms frames = 2 samples
    x = np.zeros(10)
    x[4:6] = 1.0
    x[8] = 0.001  # -60 dB: below the -40 dB threshold
    assert active_mask(x, sr).tolist() == [False] * 4 + [True] * 2 + [False] * 4
    assert active_power(x, sr) == pytest.approx(1.0)
    assert active_power(np.zeros(10), sr) == 0.0


def test_fit_length_tiles_and_cuts():
    assert fit_length(np.array([1.0, 2.0, 3.0]), 7).tolist() == [1, 2, 3, 1, 2, 3, 1]
    assert fit_length(np.arange(10.0), 3).tolist() == [0, 1, 2]


def test_pink_noise_slope():
    x = coloured_noise(2**16, np.random.default_rng(0), exponent=1.0)
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.arange(len(spec))
    low, high = spec[(f > 100) & (f < 200)].mean(), spec[(f > 1000) & (f < 2000)].mean()
    assert 10 * np.log10(low / high) == pytest.approx(10.0, abs=1.5)  # 1/f: 10 dB per decade


def test_rir_decays_60db_in_rt60():
    sr, rt60 = 8000, 0.4
    h = exponential_rir(sr, rt60, np.random.default_rng(0))
    assert h[0] == 1.0 and len(h) == int(rt60 * sr)
    tail = h[int(0.01 * sr) :] ** 2
    first, last = tail[: sr // 20].mean(), tail[-sr // 20 :].mean()
    assert 10 * np.log10(first / last) > 40
    y = reverberate(np.random.default_rng(1).standard_normal(sr), sr, rt60, np.random.default_rng(2))
    assert len(y) == sr

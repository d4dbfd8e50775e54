import numpy as np
import pytest

from sonotell.data.spectrogram import PRESETS, spectrogram


@pytest.mark.parametrize("preset,shape", [("bonmati", (1024, 66)), ("show_from_tell", (256, 256)), ("dual", (64, 98))])
def test_preset_shapes_are_the_papers(preset, shape, tone):
    wav, sr = tone
    assert spectrogram(wav, sr, preset).shape == shape
    assert PRESETS[preset].shape() == shape
    # a shorter or longer waveform, or another rate, is fitted to the preset's duration
    assert spectrogram(wav[:3000], sr, preset).shape == shape
    assert spectrogram(np.tile(wav, 3), sr, preset).shape == shape
    assert spectrogram(np.zeros(44100, np.float32), 44100, preset).shape == shape


def test_bonmati_matches_a_naive_dft(tone):
    wav, sr = tone
    spec = spectrogram(wav, sr, "bonmati")
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)
    for j in (0, 33, 65):  # frame j starts at j * 240 samples (15 ms hop, 25 ms window)
        x = wav[j * 240 : j * 240 + 400].astype(np.float64) * hann
        for k in (0, 56, 300):
            X = sum(x[n] * np.exp(-2j * np.pi * k * n / 2046) for n in range(400))
            assert spec[k, j] == pytest.approx(np.log(abs(X) ** 2 + 1e-6), rel=1e-4, abs=1e-4)
    assert int(np.argmax(spec[:, 10])) == round(440 * 2046 / 16000)  # the tone's bin


def test_show_from_tell_columns_cover_the_whole_window():
    sr = 16000
    wav = np.zeros(9600, np.float32)
    wav[-100:] = 1.0  # energy only in the last 100 samples of the 0.6 s
    spec = spectrogram(wav, sr, "show_from_tell")
    assert spec[:, -1].max() > 0 and spec[:, 0].max() < np.log(1e-6) + 1e-3


def test_dual_log_mel_matches_librosa(tone):
    import librosa

    wav, sr = tone
    ours = spectrogram(wav, sr, "dual")
    # librosa centres a 400-sample window in a 512-sample frame: shift by 56 to align frames
    ref = librosa.feature.melspectrogram(
        y=np.pad(wav, 56),
        sr=sr,
        n_fft=512,
        win_length=400,
        hop_length=160,
        center=False,
        n_mels=64,
        fmin=0,
        fmax=8000,
        power=2.0,
    )
    np.testing.assert_allclose(ours, np.log(ref + 1e-6), rtol=1e-3, atol=1e-3)


def test_unknown_preset():
    with pytest.raises(ValueError, match="unknown spectrogram preset 'x'"):
        spectrogram(np.zeros(10), 16000, "x")

import numpy as np
import pytest
import torch

from sonotell.models import create_model
from sonotell.models.audio import AudioCNN14, LogSpectrogram

torch.set_num_threads(1)


def test_log_spectrogram_matches_numpy_reference(tone):
    wav, sr = tone
    fe = LogSpectrogram(sr, n_fft=256, hop_length=128, n_mels=None)
    spec = fe(torch.from_numpy(wav)[None])[0].numpy()
    # naive reference: centred frames (reflect pad), hann window, |rfft|^2, log
    pad = np.pad(wav, 128, mode="reflect")
    win = np.hanning(257)[:-1]  # periodic Hann, as torch.hann_window
    frames = [pad[i : i + 256] * win for i in range(0, len(pad) - 256 + 1, 128)]
    ref = np.log(np.abs(np.fft.rfft(frames, axis=1)) ** 2 + 1e-6).T
    assert spec.shape == ref.shape
    np.testing.assert_allclose(spec, ref, atol=2e-3, rtol=1e-3)
    # the tone's bin (440 Hz at 62.5 Hz/bin -> bin 7) dominates
    assert int(np.argmax(spec[:, 10])) == 7


def test_mel_frontend_shape(tone):
    wav, sr = tone
    fe = LogSpectrogram(sr, n_fft=512, hop_length=160, n_mels=32)
    assert fe(torch.from_numpy(wav)[None]).shape == (1, 32, sr // 160 + 1)


@pytest.mark.parametrize("name", ["audio_cnn14", "audio_spec2d"])
def test_small_configs_on_waveform_and_spectrogram(name):
    net = create_model(name, "small").eval()
    wav = torch.randn(2, 9600)
    emb = net(wav)
    assert emb.shape == (2, net.out_dim)
    spec = net.frontend(wav)
    torch.testing.assert_close(net(spec), emb)


def test_cnn14_paper_size_and_bad_input():
    n = sum(p.numel() for p in create_model("audio_cnn14", "paper").parameters())
    assert 78e6 < n < 82e6  # PANNs CNN14: 80.7M with its 527-way head
    with pytest.raises(ValueError, match="waveform"):
        AudioCNN14(widths=(4, 8))(torch.randn(2, 2, 10, 10))

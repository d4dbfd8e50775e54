"""Audio encoders: CNN14-style on log-mel (Kong et al. 2020, PANNs) and a 2D CNN on log-spectrogram.

Both take a raw waveform batch (B, S) and compute their time-frequency input with a torch
front end (so a batch is transformed in one call, and a localisation query can pass a speech
clip as it is), or take a precomputed spectrogram (B, F, T) / (B, 1, F, T) directly, e.g.
from ``sonotell.data.spectrogram``.

Example:
    >>> import torch
    >>> net = AudioCNN14(sample_rate_hz=16000, n_mels=32, widths=(8, 16, 32, 64))
    >>> net(torch.randn(2, 9600)).shape
    torch.Size([2, 64])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sonotell.models.registry import register_model


class LogSpectrogram(nn.Module):
    """Waveform (B, S) -> log power spectrogram (B, F, T), mel-scaled when ``n_mels`` is set.

    Args:
        sample_rate_hz: input sample rate.
        n_fft: FFT size; ``hop_length`` and ``win_length`` in samples.
        n_mels: mel bands (None: linear-frequency spectrogram with n_fft // 2 + 1 bins).
        f_min_hz, f_max_hz: mel band edges.
    """

    def __init__(
        self,
        sample_rate_hz: int = 16000,
        n_fft: int = 512,
        hop_length: int = 160,
        win_length: int | None = None,
        n_mels: int | None = 64,
        f_min_hz: float = 50.0,
        f_max_hz: float | None = None,
    ):
        super().__init__()
        self.n_fft, self.hop_length = n_fft, hop_length
        self.win_length = win_length or n_fft
        self.register_buffer("window", torch.hann_window(self.win_length), persistent=False)
        if n_mels:
            import librosa

            fb = librosa.filters.mel(
                sr=sample_rate_hz, n_fft=n_fft, n_mels=n_mels, fmin=f_min_hz, fmax=f_max_hz or sample_rate_hz / 2
            )
            self.register_buffer("mel", torch.as_tensor(fb, dtype=torch.float32), persistent=False)
        else:
            self.mel = None
        self.n_bins = n_mels or n_fft // 2 + 1

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(
            wav, self.n_fft, self.hop_length, self.win_length, self.window, center=True, return_complex=True
        )
        power = spec.real**2 + spec.imag**2
        if self.mel is not None:
            power = torch.einsum("mf,bft->bmt", self.mel, power)
        return torch.log(power + 1e-6)


def _as_spectrogram(frontend: LogSpectrogram, x: torch.Tensor) -> torch.Tensor:
    if x.ndim == 2:  # waveform
        x = frontend(x)
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(
            f"audio encoder expects a waveform (B, S) or spectrogram (B, F, T) / (B, 1, F, T), got {tuple(x.shape)}"
        )
    return x


class _ConvBlock(nn.Module):
    """CNN14's block: two 3x3 conv-BN-ReLU, then 2x2 average pooling."""

    def __init__(self, c_in: int, c_out: int, pool: tuple[int, int] = (2, 2)):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        )
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.body(x)
        # Small inputs run out of rows/columns before the last block: pool only what is left.
        k = (min(self.pool[0], x.shape[2]), min(self.pool[1], x.shape[3]))
        return F.avg_pool2d(x, k) if k != (1, 1) else x


class AudioCNN14(nn.Module):
    """CNN14-style log-mel encoder (PANNs): conv blocks, mean over frequency, max + mean over time, FC.

    Args:
        sample_rate_hz, n_fft, hop_length, win_length, n_mels: the log-mel front end.
        widths: channels per block (CNN14: 64, 128, 256, 512, 1024, 2048).
        embed_dim: output size of the final FC (CNN14: 2048); defaults to the last width.
        dropout: dropout before the FC (CNN14 uses 0.5 during training).
    """

    def __init__(
        self,
        sample_rate_hz: int = 16000,
        n_fft: int = 512,
        hop_length: int = 160,
        n_mels: int = 64,
        widths: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048),
        embed_dim: int | None = None,
        dropout: float = 0.2,
        win_length: int | None = None,
    ):
        super().__init__()
        self.frontend = LogSpectrogram(sample_rate_hz, n_fft, hop_length, win_length, n_mels=n_mels)
        self.bn0 = nn.BatchNorm2d(1)  # CNN14 normalises each mel band; one channel here keeps any n_mels
        blocks, c_in = [], 1
        for i, c in enumerate(widths):
            blocks.append(_ConvBlock(c_in, c, (1, 1) if i == len(widths) - 1 else (2, 2)))
            c_in = c
        self.blocks = nn.Sequential(*blocks)
        self.out_dim = embed_dim or widths[-1]
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(widths[-1], self.out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.bn0(_as_spectrogram(self.frontend, x)))  # (B, C, F', T')
        x = x.mean(dim=2)
        x = x.max(dim=2).values + x.mean(dim=2)
        return F.relu(self.fc(self.dropout(x)))


class AudioSpec2D(nn.Module):
    """2D CNN on the log (linear-frequency) spectrogram, as the speech branch of Jiao et al. 2020.

    Args:
        sample_rate_hz, n_fft, hop_length, win_length: the spectrogram front end (``n_mels=None``).
        widths: channels of the conv-BN-ReLU-maxpool stages.
    """

    def __init__(
        self,
        sample_rate_hz: int = 16000,
        n_fft: int = 512,
        hop_length: int = 160,
        n_mels: int | None = None,
        widths: tuple[int, ...] = (64, 128, 256, 512),
        win_length: int | None = None,
    ):
        super().__init__()
        self.frontend = LogSpectrogram(sample_rate_hz, n_fft, hop_length, win_length, n_mels=n_mels)
        layers, c_in = [nn.BatchNorm2d(1)], 1
        for c in widths:
            layers += [
                nn.Conv2d(c_in, c, 3, padding=1, bias=False),
                nn.BatchNorm2d(c),
                nn.ReLU(inplace=True),
                nn.Conv2d(c, c, 3, padding=1, bias=False),
                nn.BatchNorm2d(c),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2, ceil_mode=True),
            ]
            c_in = c
        self.net = nn.Sequential(*layers)
        self.out_dim = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(_as_spectrogram(self.frontend, x)).amax(dim=(2, 3))


@register_model("audio_cnn14")
def audio_cnn14(**kwargs) -> AudioCNN14:
    """CNN14-style log-mel encoder; ``paper`` is CNN14's widths, ``small`` is CPU-sized."""
    return AudioCNN14(**kwargs)


@register_model("audio_spec2d")
def audio_spec2d(**kwargs) -> AudioSpec2D:
    """2D CNN on the log-spectrogram; ``paper`` and ``small`` configs."""
    return AudioSpec2D(**kwargs)

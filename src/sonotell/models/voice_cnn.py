"""Voice branch: six 1D convolutions (kernel 3) with batch norm and ReLU, 1D max pooling (stride 2).

The input is a spectrogram (B, F, T): frequency bins are the channels and the convolution
runs along time, so the output (B, C, T') keeps a time axis for the matrix fusion.
Pooling follows every ``pool_every``-th convolution: the paper's 66 spectrogram frames
would vanish after six halvings, so by default three poolings leave 8 time steps.

Example:
    >>> import torch
    >>> net = VoiceCNN(in_channels=1024, widths=(16, 16, 32, 32, 64, 64))
    >>> net(torch.zeros(2, 1024, 66)).shape
    torch.Size([2, 64, 8])
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class VoiceCNN(nn.Module):
    def __init__(
        self,
        in_channels: int = 1024,
        widths: Sequence[int] = (128, 128, 256, 256, 512, 1024),
        kernel_size: int = 3,
        pool_every: int = 2,
    ):
        super().__init__()
        if len(widths) != 6:
            raise ValueError(f"the voice branch has six convolutions; got {len(widths)} widths")
        layers: list[nn.Module] = []
        c = in_channels
        for i, w in enumerate(widths, start=1):
            layers += [
                nn.Conv1d(c, w, kernel_size, padding=kernel_size // 2, bias=False),
                nn.BatchNorm1d(w),
                nn.ReLU(inplace=True),
            ]
            if pool_every and i % pool_every == 0:
                layers.append(nn.MaxPool1d(2, stride=2))
            c = w
        self.features = nn.Sequential(*layers)
        self.in_channels = in_channels
        self.out_channels = c

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        return self.features(spec)


class KeywordNet(nn.Module):
    """A voice branch plus average pooling and a linear layer: classifies single spoken words.

    sonotell pre-trains it on words synthesised by its own TTS, standing in for the paper's
    Speech Commands model; its ``voice`` branch is then loaded, frozen, into ``VoiceLabelNet``.
    """

    def __init__(self, n_words: int, **voice_kwargs):
        super().__init__()
        self.voice = VoiceCNN(**voice_kwargs)
        self.classifier = nn.Linear(self.voice.out_channels, n_words)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.voice(spec).mean(dim=2))

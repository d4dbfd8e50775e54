"""Fixtures of the speech tests: a fake ASR backend and tone-burst "speech"."""

from __future__ import annotations

import numpy as np
import pytest

from sonotell.types import Word


class ScriptedBackend:
    """A fake recogniser: the n-th call returns the n-th scripted utterance, spread over the audio."""

    sample_rate_hz = 16000

    def __init__(self, script: list[str], lexicon=None):
        self.script = list(script)
        self.calls: list[int] = []

    def transcribe(self, audio: np.ndarray, sample_rate_hz: int) -> list[Word]:
        self.calls.append(len(audio))
        text = self.script[len(self.calls) - 1] if len(self.calls) <= len(self.script) else ""
        words = text.split()
        dur = len(audio) / sample_rate_hz
        step = dur / max(1, len(words))
        return [Word(w, i * step, (i + 1) * step, 0.9) for i, w in enumerate(words)]


@pytest.fixture
def bursts() -> tuple[np.ndarray, int, list[tuple[float, float]]]:
    """4 s at 16 kHz: tone bursts at 0.5-1.5 s and 2.5-3.2 s over a faint noise floor."""
    sr = 16000
    rng = np.random.default_rng(0)
    wav = rng.normal(0, 1e-3, 4 * sr).astype(np.float32)
    spans = [(0.5, 1.5), (2.5, 3.2)]
    for s, e in spans:
        t = np.arange(int((e - s) * sr)) / sr
        wav[int(s * sr) : int(s * sr) + len(t)] += 0.3 * np.sin(2 * np.pi * 300 * t).astype(np.float32)
    return wav, sr, spans


@pytest.fixture(autouse=True)
def keyword_test_backend():
    """``test_keyword``: the fake "hears liver" backend, registered by name as a config may only name backends."""
    from sonotell.speech.transcribe import BACKENDS, register_backend
    from tests.speech.test_pipeline import KeywordBackend

    register_backend("test_keyword")(KeywordBackend)
    yield
    BACKENDS.pop("test_keyword", None)

"""Item 5: ``stream.chunk_s`` of zero or less is refused instead of looping forever."""

from __future__ import annotations

import pytest

from sonotell.config import load_config
from sonotell.errors import ConfigError
from sonotell.io.audio import save_audio
from sonotell.speech.pipeline import SpeechPipeline
from sonotell.speech.stream import iter_audio_chunks


@pytest.mark.parametrize("value", [0, -1, 0.0, "abc", float("nan"), 1e-9])
def test_bad_chunk_s_is_a_config_error(value, tmp_path, bursts):
    wav, sr, _ = bursts
    audio = save_audio(tmp_path / "a.wav", wav, sr)
    with pytest.raises(ConfigError, match="chunk_s"):
        next(iter_audio_chunks(audio, 16000, chunk_s=value))
    cfg = load_config("pipelines", "speech", ["vad.name=energy", "transcribe.backend={name: test_keyword}"])
    cfg["stream"]["chunk_s"] = value
    with pytest.raises(ConfigError, match="stream.chunk_s"):
        SpeechPipeline(cfg, "lung")

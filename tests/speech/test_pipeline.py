import json

import numpy as np
import pytest

from sonotell.config import load_config
from sonotell.errors import ConfigError, InputError
from sonotell.io.audio import save_audio
from sonotell.speech.batch import label_scans, labels_paths
from sonotell.speech.lexicon import load_lexicon
from sonotell.speech.pipeline import SpeechPipeline
from sonotell.speech.spot import merge_events
from sonotell.types import Scan, TermEvent

from .conftest import ScriptedBackend


def small_config(**over):
    cfg = load_config(
        "pipelines",
        "speech",
        [
            "vad.name=energy",
            "vad.pad_s=0.0",
            "diarize.enabled=false",
            "diarize.keep=all",
            "clean.denoise=false",
            "transcribe.scope=span",
            "word_times.enabled=false",
        ],
    )
    cfg.update(over)
    return cfg


def test_words_and_events_land_on_the_video_clock(bursts):
    wav, sr, spans = bursts
    backend = ScriptedBackend(["here is the liver", "no spleen"])
    pipe = SpeechPipeline(small_config(), "abdominal", backend=backend)
    result = pipe.process_audio(wav, sr, audio_offset_s=2.0)
    assert len(backend.calls) == 2  # one ASR call per speech span
    assert [(e.label, e.negated) for e in result.events] == [("liver", False), ("spleen", True)]
    liver = result.events[0]
    # span 0.5-1.5 s of audio (+0.1 s ASR padding each side), 4 words: "liver" is the 4th quarter
    assert liver.start_s == pytest.approx(2.0 + 0.5 - 0.1 + 0.75 * 1.2, abs=0.03)
    assert [s["text"] for s in result.segments] == ["here is the liver", "no spleen"]
    assert result.info["duration_s"] == pytest.approx(4.0)


def test_streaming_in_small_chunks_gives_the_same_result(bursts, tmp_path):
    wav, sr, _ = bursts
    path = save_audio(tmp_path / "a.wav", wav, sr)
    whole = SpeechPipeline(small_config(), "abdominal", backend=ScriptedBackend(["liver", "spleen"])).process_file(path)
    chunked_cfg = small_config(stream={"chunk_s": 0.7, "max_segment_s": 20.0, "guard_s": 0.3})
    chunked = SpeechPipeline(chunked_cfg, "abdominal", backend=ScriptedBackend(["liver", "spleen"])).process_file(path)
    assert [(e.label, round(e.start_s, 2)) for e in chunked.events] == [
        (e.label, round(e.start_s, 2)) for e in whole.events
    ]


def test_stereo_48k_file_is_mixed_and_resampled(bursts, tmp_path):
    import soundfile as sf

    from sonotell.io.audio import resample

    wav, sr, _ = bursts
    stereo = np.stack([resample(wav, sr, 48000)] * 2, axis=1)
    sf.write(str(tmp_path / "st.wav"), stereo, 48000)
    result = SpeechPipeline(small_config(), "abdominal", backend=ScriptedBackend(["liver", "spleen"])).process_file(
        tmp_path / "st.wav"
    )
    assert result.info["channels"] == 2 and result.info["native_rate_hz"] == 48000
    assert len(result.events) == 2


def test_silence_is_a_clear_error_and_noise_gives_no_events(tmp_path):
    save_audio(tmp_path / "silent.wav", np.zeros(16000, np.float32), 16000)
    pipe = SpeechPipeline(small_config(), "abdominal", backend=ScriptedBackend([]))
    with pytest.raises(InputError, match="silent.wav: audio is silent"):
        pipe.process_file(tmp_path / "silent.wav")
    with pytest.raises(InputError, match="not found"):
        pipe.process_file(tmp_path / "missing.wav")
    (tmp_path / "junk.wav").write_bytes(b"RIFF not really")
    with pytest.raises(InputError, match="junk.wav: unreadable audio"):
        pipe.process_file(tmp_path / "junk.wav")


def test_long_speech_without_pause_is_split(bursts):
    sr = 16000
    tone = (0.3 * np.sin(2 * np.pi * 300 * np.arange(5 * sr) / sr)).astype(np.float32)
    backend = ScriptedBackend(["liver"] * 10)
    cfg = small_config(stream={"chunk_s": 1.0, "max_segment_s": 1.5, "guard_s": 0.3})
    SpeechPipeline(cfg, "abdominal", backend=backend).process_audio(tone, sr)
    assert max(backend.calls) <= int((1.5 + 0.2) * sr)  # no ASR call longer than a max segment + padding
    assert sum(backend.calls) >= 5 * sr


def test_merge_events_unions_by_label_and_overlap():
    a = [TermEvent("liver", "liver", 1.0, 1.4)]
    b = [
        TermEvent("liver", "liver", 1.1, 1.5),
        TermEvent("spleen", "spleen", 1.1, 1.5),
        TermEvent("liver", "liver", 3.0, 3.2),
    ]
    merged = merge_events([a, b])
    assert [(e.label, e.start_s) for e in merged] == [("liver", 1.0), ("spleen", 1.1), ("liver", 3.0)]


class KeywordBackend:
    """Hears "liver" in every span (for CLI / labelling tests)."""

    sample_rate_hz = 16000

    def __init__(self, lexicon=None, word="liver"):
        self.word = word

    def transcribe(self, audio, sample_rate_hz):
        from sonotell.types import Word

        return [Word(self.word, 0.1, len(audio) / sample_rate_hz - 0.1, 1.0)]


def test_label_scans_writes_resumes_and_reports_bad_scans(bursts, tmp_path):
    wav, sr, _ = bursts
    good = Scan("good", "p1", tmp_path / "v.mp4", save_audio(tmp_path / "good.wav", wav, sr), fps=10.0, n_frames=40)
    bad = Scan(
        "bad",
        "p2",
        tmp_path / "v.mp4",
        save_audio(tmp_path / "bad.wav", np.zeros(sr, np.float32), sr),
        fps=10.0,
        n_frames=40,
    )
    cfg = small_config(transcribe={"backend": {"name": "test_keyword"}, "combine": [], "pad_s": 0.1})
    out = tmp_path / "labels"
    summary = json.loads(label_scans([good, bad], out, config=cfg, lexicon="abdominal").read_text())
    assert (
        summary["n_done"] == 1
        and summary["n_failed"] == 1
        and "bad.wav: audio is silent" in summary["failed"][0]["error"]
    )
    assert not any(p.exists() for p in labels_paths(out, "bad"))  # nothing partial of a failed scan
    csv_path, json_path = labels_paths(out, "good")
    rows = csv_path.read_text().splitlines()
    names = load_lexicon("abdominal").labels
    assert rows[0].split(",")[: 3 + len(names)] == ["scan_id", "frame_index", "time_s", *names] and len(rows) == 41
    liver = [r.split(",")[3 + names.index("liver")] for r in rows[1:]]
    assert liver[10] == "present" and liver[0] == "unknown"  # speech at 0.5-1.5 s, word at 0.5-1.5 s
    doc = json.loads(json_path.read_text())
    assert doc["events"][0]["label"] == "liver" and doc["fingerprint"] == summary["fingerprint"]
    assert doc["labels_format"] == 2 and summary["labels_format"] == 2
    mtime = json_path.stat().st_mtime_ns
    label_scans([good], out, config=cfg, lexicon="abdominal")
    assert json_path.stat().st_mtime_ns == mtime  # resumed: not redone
    json_path.write_text(json.dumps({k: v for k, v in doc.items() if k != "labels_format"}))  # as format 1 wrote it
    label_scans([good], out, config=cfg, lexicon="abdominal")
    assert json.loads(json_path.read_text())["labels_format"] == 2  # a format-1 scan is labelled again
    mtime = json_path.stat().st_mtime_ns
    cfg2 = {**cfg, "align": {"before_s": 0.0, "after_s": 0.0}}
    label_scans([good], out, config=cfg2, lexicon="abdominal")
    assert json_path.stat().st_mtime_ns != mtime  # another recipe: relabelled


def test_noise_and_music_give_no_speech_with_silero():
    sr = 16000
    t = np.arange(4 * sr) / sr
    noise = (0.1 * np.random.default_rng(0).normal(size=len(t))).astype(np.float32)
    music = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (262, 330, 392)).astype(np.float32)
    cfg = load_config("pipelines", "speech", ["diarize.enabled=false"])
    for wav in (noise, music):
        backend = ScriptedBackend(["liver"])
        result = SpeechPipeline(cfg, "abdominal", backend=backend).process_audio(wav, sr)
        assert result.events == [] and backend.calls == []  # the recogniser never hears it


@pytest.mark.parametrize("name", ["speech", "speech_light", "speech_small", "speech_paper", "baseline"])
def test_packaged_pipeline_configs_build(name):
    pipe = SpeechPipeline.from_config(name, "lung")
    assert pipe.backend.sample_rate_hz == 16000
    if name == "baseline":
        assert pipe.vad is None and not pipe.spotter.negation and pipe.spotter.fuzzy_threshold == 1.0


def test_speaker_of_word_takes_the_turn_it_overlaps_most():
    from sonotell.speech.pipeline import speaker_of_word

    turns, who = [(0.0, 1.0), (1.0, 2.0), (2.0, 2.4)], ["clinician", "speaker_0", "clinician"]
    assert speaker_of_word(turns, who, 0.8, 1.5) == "speaker_0"  # 0.2 s vs 0.5 s
    assert speaker_of_word(turns, who, 1.7, 2.4) == "clinician"  # 0.3 s vs 0.4 s
    assert speaker_of_word(turns, who, 2.5, 2.6) == "clinician"  # outside every turn: the nearest


def test_windows_diarization_drops_the_second_speakers_words(bursts, monkeypatch):
    """Fake window embeddings: voice A before 2.8 s, voice B after; the backend hears one word per 0.25 s."""
    import sonotell.speech.pipeline as pipeline_module

    wav, sr, _ = bursts  # speech spans 0.5-1.5 s and 2.5-3.2 s

    def fake_windows(audio, window_s, hop_s):
        n = max(1, round((len(audio) / sr - window_s) / hop_s) + 1)
        times = np.array([(k * hop_s, k * hop_s + window_s) for k in range(n)])
        return times, np.zeros((n, 4), np.float32)

    real_process = SpeechPipeline._process_span

    def process(self, audio, start_s, end_s, **kwargs):
        span = real_process(self, audio, start_s, end_s, **kwargs)
        centres = span.windows.mean(1)
        span.embeddings = [
            np.array([1, 0, 0, 0], np.float32) if c < 2.8 else np.array([0, 1, 0, 0], np.float32) for c in centres
        ]
        return span

    monkeypatch.setattr(pipeline_module, "window_embeddings", fake_windows)
    monkeypatch.setattr(SpeechPipeline, "_process_span", process)
    cfg = small_config(
        diarize={
            "enabled": True,
            "keep": "clinician",
            "mode": "windows",
            "window_s": 0.4,
            "hop_s": 0.1,
            "other_below": 0.2,
            "min_turn_s": 0.15,
        }
    )
    backend = ScriptedBackend(["here is the liver", "spleen and the kidney"])
    result = SpeechPipeline(cfg, "abdominal", backend=backend).process_audio(wav, sr)
    # span 2 (2.5-3.2 s): windows at 2.5-2.9 ... 2.8-3.2, centres 2.7 .. 3.0; the turn changes at 2.75 s
    assert [(s["speaker"], s["start_s"], s["end_s"]) for s in result.segments] == [
        ("clinician", 0.5, 1.5),
        ("clinician", 2.5, 2.75),
        ("speaker_0", 2.75, 3.2),
    ]
    # span 2's words (0.9 s of padded audio, 0.225 s a word, from 2.4 s): spleen 2.4-2.625, and 2.625-2.85
    # (0.125 s clinician vs 0.1 s speaker_0), the 2.85-3.075, kidney 3.075-3.3 (only 3.075-3.2 overlaps a turn)
    assert [w.speaker for w in result.words] == ["clinician"] * 4 + ["clinician", "clinician", "speaker_0", "speaker_0"]
    assert [e.label for e in result.events] == ["liver", "spleen"]  # "kidney" was the second speaker's


def test_region_scope_transcribes_spans_together_and_returns_each_word_to_its_span():
    from sonotell.speech.pipeline import assign_to_spans, group_spans

    sr = 16000
    rng = np.random.default_rng(0)
    wav = rng.normal(0, 1e-3, 4 * sr).astype(np.float32)
    for s, e in [(0.5, 1.5), (2.5, 3.3)]:
        t = np.arange(int((e - s) * sr)) / sr
        wav[int(s * sr) : int(s * sr) + len(t)] += 0.3 * np.sin(2 * np.pi * 300 * t).astype(np.float32)
    backend = ScriptedBackend(["liver here spleen kidney no gallbladder"])
    result = SpeechPipeline(
        small_config(transcribe={"scope": "region", "pad_s": 0.1}), "abdominal", backend=backend
    ).process_audio(wav, sr)
    # one call over 0.4-3.4 s (spans 0.5-1.5 and 2.5-3.3, 0.1 s padding, silence between): 6 words of 0.5 s
    assert len(backend.calls) == 1 and backend.calls[0] == pytest.approx(3.0 * sr, abs=0.05 * sr)
    # "spleen" (1.4-1.9) overlaps only the first span (widened to 1.6 s); "kidney" (1.9-2.4) lies in the gap: dropped
    assert [s["text"] for s in result.segments] == ["liver here spleen", "no gallbladder"]
    assert [(e.label, e.negated) for e in result.events] == [("liver", False), ("spleen", False), ("gallbladder", True)]
    assert group_spans([(0, 10), (20, 40), (45, 70)], 40) == [[0, 1], [2]]
    assert assign_to_spans([(1.9, 2.4)], [(0.5, 1.5), (2.5, 3.3)], 0.1) == [None]


def test_unknown_asr_scope_is_an_error():
    with pytest.raises(ConfigError, match="transcribe.scope: 'sentence' is not one of span, region"):
        SpeechPipeline(small_config(transcribe={"scope": "sentence"}), "abdominal", backend=ScriptedBackend([]))


def test_label_scans_finds_views_for_view_scope_labels(bursts, tmp_path):
    from sonotell import labels as labels_io
    from tests.conftest import write_video

    wav, sr, _ = bursts  # the keyword backend hears "liver" once, in the first speech span (0.5-1.5 s)
    frames = np.full((40, 32, 32), 30, np.uint8)
    frames[20:] = 220  # a cut at frame 20 (2.0 s)
    video = write_video(tmp_path / "v.mp4", frames, fps=10)
    scan = Scan("s", "p", video, save_audio(tmp_path / "s.wav", wav, sr), fps=10.0, n_frames=40)
    lexicon = tmp_path / "lex.yaml"
    lexicon.write_text("name: views\nscope: view\nlabels:\n  liver: [hepatic]\n  spleen: [splenic]\n")
    cfg = small_config(transcribe={"backend": {"name": "test_keyword"}, "combine": [], "pad_s": 0.1})
    label_scans([scan], tmp_path / "out", config=cfg, lexicon=str(lexicon))
    doc = labels_io.read_scan_doc(tmp_path / "out", "s")
    assert doc["view_starts"] == [0, 20] and doc["label_names"] == ["liver", "spleen"]
    states = labels_io.read_frames(tmp_path / "out", "s", ["liver", "spleen"])
    assert [(e["start_s"], e["end_s"]) for e in doc["events"]] == [(0.5, 1.5)]
    # the mention holds over its whole view (frames 0-19, also before it is said) and stops at the cut
    assert (states.state[:20, 0] == labels_io.PRESENT).all() and (states.state[20:, 0] == labels_io.UNKNOWN).all()
    assert (states.state[:, 1] == labels_io.UNKNOWN).all()

import json

import numpy as np
from typer.testing import CliRunner

from sonotell.bench.format import write_bench_json, write_manifest
from sonotell.cli import app
from sonotell.files import write_json
from sonotell.io.audio import save_audio

BACKEND = "transcribe.backend={name: 'tests.speech.test_pipeline:KeywordBackend'}"
FAST = ["--set", "word_times.enabled=false", "--set", "vad.name=energy", "--set", "transcribe.scope=span", "--set", "diarize.enabled=false", "--set", "diarize.keep=all", "--set", BACKEND]


def tiny_bench(root, bursts):
    wav, sr, spans = bursts
    rows = []
    for k in range(2):
        save_audio(root / "audio" / f"s{k}.wav", wav, sr)
        (root / "videos").mkdir(parents=True, exist_ok=True)
        (root / "videos" / f"s{k}.mp4").write_bytes(b"")  # never decoded: fps and n_frames are given
        rows.append({"scan_id": f"s{k}", "subject_id": f"p{k}", "video_path": f"videos/s{k}.mp4", "audio_path": f"audio/s{k}.wav", "audio_offset_s": 0, "fps": 10, "n_frames": 40, "label": "liver", "labels": "liver", "voice": "v", "voice_split": "test"})
        events = [{"label": "liver", "term": "liver", "start_s": 0.6, "end_s": 1.4, "speaker": "clinician", "negated": False}]
        segments = [{"speaker": "clinician", "start_s": s, "end_s": e, "text": "the liver"} for s, e in spans]
        write_json(root / "truth" / f"s{k}.json", {"scan_id": f"s{k}", "subject_id": f"p{k}", "label": "liver", "labels": ["liver"], "events": events, "segments": segments, "masks": {}})
    write_manifest(root / "manifest.csv", rows)
    write_bench_json(root, name="tiny", classes=["liver"], label_names=["liver"], mask_classes=[], config={}, seed=0)
    return root


def test_label_then_eval_labels(tmp_path, bursts):
    bench = tiny_bench(tmp_path / "bench", bursts)
    runner = CliRunner()
    res = runner.invoke(app, ["label", str(bench), "--lexicon", "abdominal", "--out", str(tmp_path / "lab"), *FAST])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "lab" / "summary.json").read_text())
    assert summary["n_done"] == 2
    res = runner.invoke(app, ["eval", "labels", str(tmp_path / "lab"), "--benchmark", str(bench), "--lexicon", "abdominal"])
    assert res.exit_code == 0, res.output
    metrics = json.loads((tmp_path / "lab" / "eval_labels.json").read_text())["summary"]
    # the fake backend hears "liver" in both speech spans: one hit and one false alarm per scan
    assert (metrics["tp"], metrics["fp"], metrics["fn"]) == (2, 2, 0)
    assert metrics["clinician_recall"] > 0.9


def test_label_with_a_bad_lexicon_fails_cleanly(tmp_path, bursts):
    bench = tiny_bench(tmp_path / "bench", bursts)
    lex = tmp_path / "dup.yaml"
    lex.write_text("labels:\n  liver: [hepar]\n  spleen: [hepar]\n")
    res = CliRunner().invoke(app, ["label", str(bench), "--lexicon", str(lex), "--out", str(tmp_path / "lab"), *FAST])
    assert res.exit_code != 0
    assert "duplicate term 'hepar'" in str(res.exception)
    assert not (tmp_path / "lab").exists()


def test_transcribe_writes_json(tmp_path, bursts):
    wav, sr, _ = bursts
    save_audio(tmp_path / "a.wav", wav, sr)
    res = CliRunner().invoke(app, ["transcribe", str(tmp_path / "a.wav"), "--lexicon", "abdominal", "--out", str(tmp_path / "t.json"), *FAST])
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "t.json").read_text())
    assert [e["label"] for e in doc["events"]] == ["liver", "liver"] and len(doc["segments"]) == 2


def test_help_texts():
    for cmd in (["label", "--help"], ["transcribe", "--help"], ["eval", "labels", "--help"]):
        res = CliRunner().invoke(app, cmd)
        assert res.exit_code == 0 and "--seed" in res.output

import json

from typer.testing import CliRunner

from sonotell.cli import app
from sonotell.data.format import write_bench_json, write_manifest
from sonotell.files import write_json
from sonotell.io.audio import save_audio

BACKEND = "transcribe.backend={name: test_keyword}"
FAST = [
    "--set",
    "word_times.enabled=false",
    "--set",
    "vad.name=energy",
    "--set",
    "transcribe.scope=span",
    "--set",
    "diarize.enabled=false",
    "--set",
    "diarize.keep=all",
    "--set",
    BACKEND,
]


def tiny_bench(root, bursts):
    wav, sr, spans = bursts
    rows = []
    for k in range(2):
        save_audio(root / "audio" / f"s{k}.wav", wav, sr)
        (root / "videos").mkdir(parents=True, exist_ok=True)
        (root / "videos" / f"s{k}.mp4").write_bytes(b"")  # never decoded: fps and n_frames are given
        rows.append(
            {
                "scan_id": f"s{k}",
                "subject_id": f"p{k}",
                "video_path": f"videos/s{k}.mp4",
                "audio_path": f"audio/s{k}.wav",
                "audio_offset_s": 0,
                "fps": 10,
                "n_frames": 40,
                "label": "liver",
                "labels": "liver",
                "voice": "v",
                "voice_split": "test",
            }
        )
        events = [
            {"label": "liver", "term": "liver", "start_s": 0.6, "end_s": 1.4, "speaker": "clinician", "negated": False}
        ]
        segments = [{"speaker": "clinician", "start_s": s, "end_s": e, "text": "the liver"} for s, e in spans]
        write_json(
            root / "truth" / f"s{k}.json",
            {
                "scan_id": f"s{k}",
                "subject_id": f"p{k}",
                "label": "liver",
                "labels": ["liver"],
                "events": events,
                "segments": segments,
                "masks": {},
            },
        )
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
    res = runner.invoke(
        app, ["eval", "labels", str(tmp_path / "lab"), "--benchmark", str(bench), "--lexicon", "abdominal"]
    )
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
    res = CliRunner().invoke(
        app, ["transcribe", str(tmp_path / "a.wav"), "--lexicon", "abdominal", "--out", str(tmp_path / "t.json"), *FAST]
    )
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "t.json").read_text())
    assert [e["label"] for e in doc["events"]] == ["liver", "liver"] and len(doc["segments"]) == 2


def test_help_texts():
    for cmd in (["label", "--help"], ["transcribe", "--help"], ["eval", "labels", "--help"]):
        res = CliRunner().invoke(app, cmd)
        assert res.exit_code == 0 and "--seed" in res.output


def test_eval_labels_reads_a_hand_written_truth_file_and_checks_its_options(tmp_path, bursts):
    bench = tiny_bench(tmp_path / "bench", bursts)
    runner = CliRunner()
    assert (
        runner.invoke(
            app, ["label", str(bench), "--lexicon", "abdominal", "--out", str(tmp_path / "lab"), *FAST]
        ).exit_code
        == 0
    )
    # the fake backend says "liver" over both speech spans of each scan (starting ~0.5 s and ~2.5 s: see bursts)
    events = json.loads((tmp_path / "lab" / "s0.json").read_text())["events"]
    first, second = (round(e["start_s"], 2) for e in events)
    truth = tmp_path / "truth.csv"
    truth.write_text(
        "scan_id,label,start_s,end_s,negated,speaker,voice\n"
        f"s0,liver,{first + 0.7},{first + 1.0},false,clinician,anna\n"  # 0.7 s late: a hit at 1 s, not at 0.5 s
        f"s0,liver,{second},{second + 0.4},true,,anna\n"  # said negated, heard positive: never a hit
        f"s1,liver,{first},{first + 0.4},false,patient,bob\n"  # another speaker's mention: not a target
    )
    res = runner.invoke(
        app, ["eval", "labels", str(tmp_path / "lab"), "--events", str(truth), "--out", str(tmp_path / "m.json")]
    )
    assert res.exit_code == 0, res.output
    s = json.loads((tmp_path / "m.json").read_text())["summary"]
    pol = s["by_polarity"]
    # s0 predicted 2 positives, s1 2 positives: 4 predictions; targets: 1 positive + 1 negated
    counts = {tol: {kind: (c["tp"], c["fp"], c["fn"]) for kind, c in row.items()} for tol, row in pol.items()}
    assert counts == {
        "0.5": {"positive": (0, 4, 1), "negated": (0, 0, 1), "all": (0, 4, 2)},
        "1": {"positive": (1, 3, 0), "negated": (0, 0, 1), "all": (1, 3, 1)},
    }
    assert pol["1"]["all"]["f1"] == round(2 * 0.25 * 0.5 / 0.75, 4)
    assert s["by_speaker"] == {
        "clinician": {"said": 2, "found@0.5": 0, "found@1": 1},
        "patient": {"said": 1, "found@0.5": 1, "found@1": 1},
    }
    assert (
        set(s["by_voice"]) == {"anna", "bob"} and s["negation_flag_accuracy"] == 0.0
    )  # the one found negated mention, heard positive
    for bad in (["--split", "tests"], []):
        res = runner.invoke(
            app,
            ["eval", "labels", str(tmp_path / "lab"), "--benchmark", str(bench), *bad]
            if bad
            else ["eval", "labels", str(tmp_path / "lab")],
        )
        assert res.exit_code == 2
    truth.write_text("scan_id,label,start_s,end_s\ns0,liver,soon,2\n")
    res = runner.invoke(app, ["eval", "labels", str(tmp_path / "lab"), "--events", str(truth)])
    # InputError: the CLI's main() prints it as one line and exits 2
    assert res.exit_code != 0 and str(res.exception).endswith(
        "truth.csv: line 2: start_s and end_s must be numbers (got 'soon', '2')"
    )


def test_transcribe_takes_an_enrolment_sample(tmp_path, bursts):
    wav, sr, _ = bursts
    save_audio(tmp_path / "a.wav", wav, sr)
    res = CliRunner().invoke(
        app,
        ["transcribe", str(tmp_path / "a.wav"), "--lexicon", "lung", "--enrol", str(tmp_path / "missing.wav"), *FAST],
    )
    assert res.exit_code != 0 and "missing.wav" in str(res.exception)  # the sample is read: a missing one is named
    res = CliRunner().invoke(
        app,
        [
            "transcribe",
            str(tmp_path / "a.wav"),
            "--lexicon",
            "lung",
            "--enrol",
            str(tmp_path / "a.wav"),
            "--out",
            str(tmp_path / "t.json"),
            *FAST,
        ],
    )
    assert res.exit_code == 0, res.output

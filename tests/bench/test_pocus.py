import json

import pytest

from sonotell.bench import build_benchmark, load_benchmark
from sonotell.bench.pocus import CLASSES, FINDINGS, read_metadata, subject_of, tag_free_text
from sonotell.io.audio import load_audio
from sonotell.io.video import probe_video


def test_tag_free_text_terms_and_negation():
    tagged = tag_free_text("No effusion, clear consolidation + lots of B-lines (left)")
    assert "[effusion](!effusion)" in tagged
    assert "[consolidation](consolidation)" in tagged and "[B-lines](b_lines)" in tagged
    assert "+" not in tagged and "(left)" not in tagged
    assert "[pleural thickening](pleural_irregularity)" in tag_free_text("Minimal pleural thickening, few B-lines")


def test_subject_ids_keep_source_and_patient():
    assert subject_of({"Source ID": 18.0, "Patient ID / Name": 4.0}) == "src18-pt4"
    assert subject_of({"Source ID": 2.0, "Patient ID / Name": float("nan")}) == "src2"


@pytest.mark.shared
def test_metadata_matches_all_clips(shared_data):
    table = read_metadata(shared_data)
    assert len(table) == 131 and table["Filename"].is_unique


@pytest.mark.shared
def test_build_a_few_real_clips(shared_data, tmp_path):
    over = [f"data_root={shared_data}", "limit=3", "audio.snr_db=[5.0,5.0]"]
    root = build_benchmark("pocus", tmp_path / "pocus", overrides=over, seed=1)
    bench = load_benchmark(root)
    assert len(bench.scans) == 3 and bench.classes == CLASSES and bench.label_names == FINDINGS
    assert (
        bench.task_classes == ["COVID-19", "pneumonia", "regular"]
        and json.loads((root / "bench.json").read_text())["task_classes"] == bench.task_classes
    )
    assert len(set(bench.table["label"])) == 3  # class-balanced subset
    for scan in bench.scans:
        truth = bench.truth(scan.scan_id)
        info = probe_video(scan.video_path)
        assert info.n_frames == scan.n_frames and abs(info.fps - scan.fps) < 1e-3
        assert scan.n_frames / scan.fps >= 12.0 - 1e-6
        wav, sr = load_audio(scan.audio_path)
        assert sr == 16000 and abs(len(wav) / sr - scan.n_frames / scan.fps) < 1e-3
        assert truth["snr_db"] == 5.0 and truth["noise"]
        for e in truth["events"]:
            assert 0 <= e["start_s"] < e["end_s"] <= len(wav) / sr + 1e-6
            assert e["label"] in FINDINGS + CLASSES
            if e["label"] in FINDINGS and not e["negated"]:
                assert e["label"] in truth["labels"]  # what is affirmed is a true finding
        if truth["loops"] == 1:  # long clips are the original bytes
            assert scan.video_path.read_bytes() == (shared_data / truth["source_video"]).read_bytes()
    # voices of train and test subjects never share a timbre
    tv = {v.split("-p")[0] for v in bench.table.loc[bench.table.voice_split == "train", "voice"]}
    sv = {v.split("-p")[0] for v in bench.table.loc[bench.table.voice_split == "test", "voice"]}
    assert not tv & sv


def test_missing_data_root_is_one_clear_error(tmp_path):
    from sonotell.errors import InputError

    with pytest.raises(InputError, match=r"dataset_metadata.csv: POCUS metadata not found"):
        build_benchmark("pocus", tmp_path / "p", overrides=[f"data_root={tmp_path / 'nowhere'}"])


@pytest.mark.shared
def test_same_seed_same_bytes(shared_data, tmp_path):
    over = [f"data_root={shared_data}", "limit=1"]
    a = build_benchmark("pocus", tmp_path / "a", overrides=over, seed=5)
    b = build_benchmark("pocus", tmp_path / "b", overrides=over, seed=5)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)


@pytest.mark.parametrize("label", ["COVID-19", ""])
def test_a_clip_without_findings_still_gets_one_narrated_mention(label):
    """Cov-Atlas-pleural2 (no finding columns set): no impression drawn, its one patient line did not fit: silent."""
    import numpy as np

    from sonotell.bench.build import benchmark_config
    from sonotell.bench.narration import parse_markup
    from sonotell.bench.pocus import scan_lines
    from sonotell.bench.tts import Voice

    cfg = benchmark_config("pocus")
    n = cfg["narration"]
    n.update(p_impression=0.0, p_free_text=0.0, max_negations=0, max_off_topic=0, p_filler_word=0.0)
    cfg["narration"]["p_second_speaker"] = 0.0
    spec = {"findings": [], "label": label, "md1": ""}
    lines = scan_lines(spec, 12.0, cfg, Voice(), Voice(variant="f1"), "patient", np.random.default_rng(0))
    mentions = [(ln, parse_markup(ln.text)[1]) for ln in lines if parse_markup(ln.text)[1]]
    assert len(mentions) == 1
    line, terms = mentions[0]
    assert line.speaker == "clinician" and not line.filler and line.at_s == 0.3  # placed like a finding, early
    assert terms[0][2] == (label or terms[0][2]) and terms[0][3] == (not label)  # the class, or a negated finding
    spec["findings"] = ["b_lines"]
    lines = scan_lines(spec, 12.0, cfg, Voice(), Voice(variant="f1"), "patient", np.random.default_rng(0))
    assert [parse_markup(ln.text)[1][0][2] for ln in lines if parse_markup(ln.text)[1]] == ["b_lines"]  # no extra

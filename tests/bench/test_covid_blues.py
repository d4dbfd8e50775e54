import json

import pytest

from sonotell.bench import build_benchmark, load_benchmark
from sonotell.bench.covid_blues import CLASSES, FINDINGS, comment_findings, read_labels
from sonotell.errors import InputError
from sonotell.io.video import probe_video


def test_comment_findings_use_pocus_names_and_respect_negation():
    assert comment_findings("broken pleura line, small consolidated areas, B-lines") == {
        "pleural_irregularity",
        "consolidation",
        "b_lines",
    }
    assert comment_findings("pleura line thickened") == {"pleural_irregularity"}
    assert comment_findings("no single B-lines, massive pleural effusion") == {
        "effusion"
    }  # "no single B-lines" is negated
    assert comment_findings("pleura line intact") == set() and comment_findings("") == set()


def _fake_root(tmp_path, rows: str):
    d = tmp_path / "covid_blues"
    (d / "lus_videos").mkdir(parents=True)
    for stem in ("patient_7_L1", "patient_7_R2_2", "patient_8_L1"):
        (d / "lus_videos" / f"{stem}.mp4").write_bytes(b"")
    (d / "severity.csv").write_text("video_file,Severity Score,A-lines,B-lines,comments\n" + rows)
    return tmp_path


def test_read_labels_strips_values_and_names_bad_rows(tmp_path):
    root = _fake_root(
        tmp_path,
        'patient_7_L1,2.0,yes ,no,"broken pleura line"\npatient_7_R2_2,0.0,no,yes,\n'
        "patient_8_L1,3.0,no ,no ,\npatient_9_L1,1.0,no,no,\n",
    )
    t = read_labels(root)
    assert t["stem"].tolist() == ["patient_7_L1", "patient_7_R2_2", "patient_8_L1"]  # patient_9 has no clip
    assert t["patient"].tolist() == ["7", "7", "8"] and t["label"].tolist() == [
        "severity_2",
        "severity_0",
        "severity_3",
    ]
    assert t["findings"].tolist() == [["a_lines", "pleural_irregularity"], ["b_lines"], []]
    bad = _fake_root(tmp_path / "bad", "patient_7_L1,2.0,maybe,no,\n")
    with pytest.raises(InputError, match=r"severity.csv: row 2: A-lines must be yes or no, got 'maybe'"):
        read_labels(bad)
    bad2 = _fake_root(tmp_path / "bad2", "patient_7_L1,5,no,no,\n")
    with pytest.raises(InputError, match="row 2: Severity Score 5 outside 0-3"):
        read_labels(bad2)


@pytest.mark.shared
def test_all_clips_have_labels(shared_data):
    t = read_labels(shared_data)
    assert len(t) == 362 and t["patient"].nunique() == 63 and set(t["label"]) == set(CLASSES)


@pytest.mark.shared
def test_build_a_few_real_clips(shared_data, tmp_path):
    over = [f"data_root={shared_data}", "limit=2", "audio.snr_db=[5.0,5.0]"]
    root = build_benchmark("covid_blues", tmp_path / "cb", overrides=over, seed=1)
    bench = load_benchmark(root)
    assert (
        len(bench.scans) == 2
        and bench.classes == CLASSES
        and bench.label_names == FINDINGS
        and bench.task_classes == CLASSES
    )
    assert json.loads((root / "bench.json").read_text())["name"] == "covid_blues"
    for scan in bench.scans:
        truth = bench.truth(scan.scan_id)
        assert scan.subject_id.startswith("blues-pt") and scan.scan_id.startswith("blues_patient_")
        assert probe_video(scan.video_path).n_frames == scan.n_frames and scan.n_frames / scan.fps >= 12.0 - 1e-6
        assert truth["loops"] >= 3 and truth["label"] in CLASSES
        said = {e["label"] for e in truth["events"] if not e["negated"] and e["speaker"] == "clinician"}
        assert set(truth["labels"]) <= said | {truth["label"]}  # every finding is spoken


def test_combined_benchmark_keeps_patients_apart_and_refuses_shared_ids(tiny_bench, tmp_path):
    import shutil

    import pandas as pd

    from sonotell.bench.combine import combine_benchmarks
    from sonotell.data.format import write_bench_json

    other = tmp_path / "other"
    shutil.copytree(tiny_bench, other)
    table = pd.read_csv(other / "manifest.csv", dtype=str, keep_default_na=False)
    for sid in table["scan_id"]:
        (other / "truth" / f"{sid}.json").rename(other / "truth" / f"b_{sid}.json")
        t = json.loads((other / "truth" / f"b_{sid}.json").read_text())
        t.update(scan_id=f"b_{sid}", subject_id=f"b_{t['subject_id']}")
        (other / "truth" / f"b_{sid}.json").write_text(json.dumps(t))
    table["scan_id"] = "b_" + table["scan_id"]
    table["subject_id"] = "b_" + table["subject_id"]
    table.to_csv(other / "manifest.csv", index=False)
    meta = json.loads((other / "bench.json").read_text())
    write_bench_json(
        other,
        **{
            **{k: meta[k] for k in ("name", "classes", "label_names", "mask_classes", "config", "seed")},
            "task_classes": meta["classes"][:1],
        },
    )
    root = combine_benchmarks([tiny_bench, other], tmp_path / "both")
    both, a = load_benchmark(root), load_benchmark(tiny_bench)
    assert (
        len(both.scans) == 2 * len(a.scans)
        and both.table["subject_id"].nunique() == 2 * a.table["subject_id"].nunique()
    )
    assert (
        both.scan(f"b_{a.scans[0].scan_id}").video_path.resolve() == (other / a.table.iloc[0]["video_path"]).resolve()
    )
    assert both.mask(a.scans[0].scan_id, 0).shape == a.mask(a.scans[0].scan_id, 0).shape  # mask paths still resolve
    with pytest.raises(InputError, match="is also in"):
        combine_benchmarks([tiny_bench, tiny_bench], tmp_path / "twice")

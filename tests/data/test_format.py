import json
import shutil

import numpy as np
import pytest

from sonotell.data.format import load_benchmark, parse_roi, split_labels
from sonotell.errors import InputError


@pytest.fixture
def bench_copy(tiny_bench, tmp_path):
    dst = tmp_path / "b"
    shutil.copytree(tiny_bench, dst)
    return dst


def test_loads_scans_with_absolute_paths_and_truth(tiny_bench):
    bench = load_benchmark(tiny_bench)
    assert bench.name == "synthetic" and len(bench.scans) == 2
    scan = bench.scans[0]
    assert scan.video_path.is_absolute() and scan.video_path.exists() and scan.audio_path.exists()
    assert scan.fps == 25 and scan.n_frames == 100 and (scan.width, scan.height) == (64, 64)
    assert bench.mask_classes[0] == "background"
    truth = bench.truth(scan.scan_id)
    assert truth["scan_id"] == scan.scan_id and truth["subject_id"] == scan.subject_id
    mask = bench.mask(scan.scan_id, 0)
    assert mask.shape == (64, 64) and mask.dtype == np.uint8 and mask.max() < len(bench.mask_classes)
    assert bench.mask(scan.scan_id, 1) is None  # mask_stride=5
    assert set(split_labels(bench.table.iloc[0]["labels"])) <= set(bench.label_names)


def test_missing_bench_json(bench_copy):
    (bench_copy / "bench.json").unlink()
    with pytest.raises(InputError, match="bench.json missing"):
        load_benchmark(bench_copy)


def test_manifest_missing_column_names_file_and_column(bench_copy):
    path = bench_copy / "manifest.csv"
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    col = header.index("subject_id")
    path.write_text("\n".join(",".join(v for j, v in enumerate(l.split(",")) if j != col) for l in lines) + "\n")
    with pytest.raises(InputError, match=r"manifest.csv: missing columns: subject_id"):
        load_benchmark(bench_copy)


def test_duplicate_scan_ids(bench_copy):
    path = bench_copy / "manifest.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines + [lines[1]]) + "\n")
    with pytest.raises(InputError, match="duplicate scan ids"):
        load_benchmark(bench_copy)


def test_missing_video_and_truth(bench_copy):
    bench = load_benchmark(bench_copy)
    bench.scans[0].video_path.unlink()
    with pytest.raises(InputError, match="video file not found"):
        load_benchmark(bench_copy)


def test_missing_truth(bench_copy):
    scan_id = load_benchmark(bench_copy).scans[1].scan_id
    (bench_copy / "truth" / f"{scan_id}.json").unlink()
    with pytest.raises(InputError, match="truth file missing"):
        load_benchmark(bench_copy)


def test_label_outside_classes(bench_copy):
    meta = json.loads((bench_copy / "bench.json").read_text())
    meta["classes"] = ["nothing"]
    (bench_copy / "bench.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="not in bench.json classes"):
        load_benchmark(bench_copy)


def test_bad_truth_event(bench_copy):
    bench = load_benchmark(bench_copy)
    sid = bench.scans[0].scan_id
    path = bench_copy / "truth" / f"{sid}.json"
    truth = json.loads(path.read_text())
    truth["events"] = [
        {"label": "liver", "term": "liver", "start_s": 2.0, "end_s": 1.0, "speaker": "clinician", "negated": False}
    ]
    path.write_text(json.dumps(truth))
    with pytest.raises(InputError, match=r"events\[0\] ends before it starts"):
        bench.truth(sid)


def test_empty_folder(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_benchmark(tmp_path / "nope")


def test_roi_and_labels_parsing():
    assert parse_roi("1,2,30,40") == (1, 2, 30, 40)
    assert parse_roi("") is None
    assert split_labels("a;b") == ["a", "b"] and split_labels("") == [] and split_labels(float("nan")) == []


def test_ensure_benchmark_loads_or_says_how_to_build(tiny_bench, tmp_path):
    from sonotell.bench import ensure_benchmark
    from sonotell.errors import ConfigError

    assert ensure_benchmark(tiny_bench).root == tiny_bench
    with pytest.raises(ConfigError, match=r"nothing: no benchmark there; build it \(sonotell bench build nothing"):
        ensure_benchmark(tmp_path / "nothing")


def test_task_classes_come_from_bench_json_not_the_folder_path(bench_copy, tmp_path):
    meta = json.loads((bench_copy / "bench.json").read_text())
    assert load_benchmark(bench_copy).task_classes == meta["classes"]  # default: every class
    # a pocus build saved in a folder whose path does not say "pocus": the 3-class task still applies
    elsewhere = tmp_path / "lung_set_a"
    shutil.copytree(bench_copy, elsewhere)
    old = {**meta, "name": "pocus", "classes": ["COVID-19", "pneumonia", "regular", "viral"] + meta["classes"]}
    old.pop("task_classes", None)  # folders built before task_classes existed
    (elsewhere / "bench.json").write_text(json.dumps(old))
    assert load_benchmark(elsewhere).task_classes == ["COVID-19", "pneumonia", "regular"]
    (elsewhere / "bench.json").write_text(json.dumps({**old, "task_classes": ["regular", "mystery"]}))
    with pytest.raises(InputError, match=r"bench.json: task_classes \['mystery'\]"):
        load_benchmark(elsewhere)

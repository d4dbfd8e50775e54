"""data.dataset: a user's manifest + labels folder as one dataset, per-frame states, subject splits, refusals."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sonotell.data.dataset import ABSENT, PRESENT, UNKNOWN, lexicon_fingerprint, load_dataset
from sonotell.errors import InputError
from sonotell.speech.lexicon import load_lexicon
from tests.methods.owndata_helpers import N_FRAMES, make_user_data


def test_states_present_absent_unknown_per_frame(tmp_path):
    manifest, labels = make_user_data(tmp_path)
    ds = load_dataset(manifest, labels=labels)
    assert ds.lexicon == "abdominal" and ds.label_names == load_lexicon("abdominal").labels
    assert ds.lexicon_fingerprint == lexicon_fingerprint(load_lexicon("abdominal"))
    st = ds.frame_states("scan0")
    liver, kidney, gb = (ds.label_names.index(n) for n in ("liver", "kidney", "gallbladder"))
    assert st.state.shape == (N_FRAMES, len(ds.label_names))
    assert st.state[0, liver] == PRESENT and st.state[0, gb] == ABSENT and st.state[0, kidney] == UNKNOWN
    assert (st.state[N_FRAMES // 2 - 1] == UNKNOWN).all()  # "unlabelled", nothing absent
    assert st.state[-1, kidney] == PRESENT and st.state[-1, gb] == UNKNOWN
    assert set(st.source) == {"speech"}


def test_csv_without_absent_column_reads_as_no_negatives(tmp_path):
    manifest, labels = make_user_data(tmp_path, absent_column=False)
    st = load_dataset(manifest, labels=labels).frame_states("scan0")
    assert not (st.state == ABSENT).any() and (st.state == PRESENT).sum() == N_FRAMES - 2


def test_dataset_yaml_resolves_paths_relative_to_itself(tmp_path):
    make_user_data(tmp_path)
    (tmp_path / "data.yaml").write_text("manifest: manifest.csv\nlabels: labels\nlexicon: abdominal\n")
    ds = load_dataset(tmp_path / "data.yaml")
    assert ds.labels_dir == tmp_path / "labels" and len(ds.scans) == 4


def test_split_is_by_subject_and_seeded(tmp_path):
    manifest, labels = make_user_data(tmp_path)
    ds = load_dataset(manifest, labels=labels)
    train, test = ds.split(test_fraction=0.25, seed=0)
    subj = {s.scan_id: s.subject_id for s in ds.scans}
    assert len(test) == 1 and len(train) == 3
    assert not {subj[s] for s in train} & {subj[s] for s in test}
    assert ds.split(0.25, seed=0) == (train, test)


def test_one_subject_is_refused_by_name(tmp_path):
    manifest, labels = make_user_data(tmp_path, n_subjects=1)
    with pytest.raises(InputError, match=r"manifest.csv: 1 subject\(s\) \(p0\): need at least 2"):
        load_dataset(manifest, labels=labels).split()


def test_labels_of_another_manifest_are_refused(tmp_path):
    manifest, _ = make_user_data(tmp_path / "a")
    _, other = make_user_data(tmp_path / "b")
    for p in other.glob("scan*"):
        p.rename(p.with_name(p.name.replace("scan", "other")))
    with pytest.raises(InputError, match="labels folder made from another manifest"):
        load_dataset(manifest, labels=other)
    _, labels = make_user_data(tmp_path / "c")
    doc = json.loads((labels / "scan1.json").read_text())
    (labels / "scan1.json").write_text(json.dumps({**doc, "subject_id": "someone else"}))
    with pytest.raises(
        InputError, match="scan1.json: labels folder made from another manifest: scan scan1 has subject 'someone else'"
    ):
        load_dataset(tmp_path / "c" / "manifest.csv", labels=labels)


def test_labels_of_another_lexicon_name_the_fingerprints(tmp_path):
    manifest, labels = make_user_data(tmp_path)
    with pytest.raises(
        InputError,
        match=r"lexicon fingerprint mismatch: labels made with lexicon 'abdominal' \(\w+\), dataset lexicon 'lung'",
    ):
        load_dataset(manifest, labels=labels, lexicon="lung")
    manifest, labels = make_user_data(tmp_path / "x", lexicon="lung")  # says lung, holds abdominal labels
    with pytest.raises(InputError, match=r"scan0.labels.csv: label 'gallbladder'.*not in the lexicon's label set"):
        load_dataset(manifest, labels=labels).frame_states("scan0")


def test_reviewed_source_column_is_kept(tmp_path):
    manifest, labels = make_user_data(tmp_path)
    t = pd.read_csv(labels / "scan0.labels.csv", keep_default_na=False)
    t["source"] = np.where(t["frame_index"] < 5, "reviewed", "speech")
    t.to_csv(labels / "scan0.labels.csv", index=False)
    st = load_dataset(manifest, labels=labels).frame_states("scan0")
    assert list(st.source[:6]) == ["reviewed"] * 5 + ["speech"]


def test_empty_labels_folder_is_refused(tmp_path):
    manifest, _ = make_user_data(tmp_path, with_labels=False)
    with pytest.raises(InputError, match=r"labels: no frame-labels CSV"):
        load_dataset(manifest, labels=tmp_path / "labels")


def test_view_for_the_paper_recipes_holds_speech_not_truth(tmp_path):
    manifest, labels = make_user_data(tmp_path)
    view = load_dataset(manifest, labels=labels).as_benchmark()
    row = view.table.set_index("scan_id").loc["scan0"]
    assert row["label"] == "liver" and row["labels"] == "liver;kidney"  # 9 liver frames, 9 kidney: first wins the tie
    truth = view.truth("scan0")
    assert (
        [e["label"] for e in truth["events"]] == ["liver"] and truth["segments"] == [] and view.mask("scan0", 0) is None
    )


def test_manifest_inside_a_benchmark_loads_its_rows_only(tiny_bench, tmp_path):
    import shutil

    bench = tmp_path / "bench"
    shutil.copytree(tiny_bench, bench)
    table = pd.read_csv(bench / "manifest.csv", keep_default_na=False)
    assert len(table) == 2
    table.iloc[[1]].to_csv(bench / "subset.csv", index=False)
    ds = load_dataset(bench / "subset.csv")
    assert [s.scan_id for s in ds.scans] == [table["scan_id"][1]]
    assert [s.scan_id for s in ds.as_benchmark().scans] == [table["scan_id"][1]]
    assert len(load_dataset(bench / "manifest.csv").scans) == 2 and len(load_dataset(bench).scans) == 2
    table.assign(scan_id="nobody").iloc[[0]].to_csv(bench / "other.csv", index=False)
    with pytest.raises(InputError, match=r"other.csv: scan 'nobody' is not in the benchmark"):
        load_dataset(bench / "other.csv")


def test_v2_labels_give_several_findings_per_frame(tmp_path):
    from sonotell import labels as labels_io

    manifest, labels = make_user_data(tmp_path)
    names = load_lexicon("abdominal").labels
    state = np.full((3, len(names)), UNKNOWN, np.int8)
    state[:, names.index("liver")] = PRESENT
    state[1:, names.index("kidney")] = PRESENT
    state[2, names.index("spleen")] = ABSENT
    fs = labels_io.FrameStates(np.arange(3), np.arange(3) / 10, state, np.full(3, "speech"), label_names=names)
    labels_io.write_frames(labels, "scan0", fs.reindexed(["liver", "kidney", "spleen"], drop=True))  # only some columns
    got = load_dataset(manifest, labels=labels).frame_states("scan0")
    assert got.label_names == names and (got.state == state).all()
    assert got.present_labels(1) == ["liver", "kidney"] and got.absent_labels(2) == ["spleen"]

"""`sonotell train` multi-label: metrics.json fields, thresholds used by predict, reliability (issues #19, #21)."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from sonotell.data.dataset import load_dataset
from sonotell.errors import InputError
from sonotell.methods.frame_classifier import cross_validate, train_classifier
from sonotell.methods.predict import ScanPrediction, check_label_set, summarise
from tests.methods.owndata_helpers import make_user_data

FAST = ["size=[16,16]", "frame_step=2", "train.epochs=2", "train.batch_size=8", "test_fraction=0.25"]


def _relabel(labels, fn) -> None:
    """Rewrite the helper's (v1) frame labels in place: ``fn(table) -> table``."""
    for p in sorted(labels.glob("*.labels.csv")):
        fn(pd.read_csv(p, keep_default_na=False)).to_csv(p, index=False)


def test_two_identical_runs_give_byte_identical_model_and_single_class_warns(tmp_path, caplog):
    manifest, labels = make_user_data(tmp_path / "d")

    def liver_only(t):
        t["label"] = np.where(t["label"] == "kidney", "liver", t["label"])
        return t

    _relabel(labels, liver_only)
    ds = load_dataset(manifest, labels=labels)
    with caplog.at_level(logging.WARNING, logger="sonotell.methods.frame_classifier"):
        a = train_classifier(ds, tmp_path / "run_a", overrides=FAST, cache_dir=tmp_path / "cache")
    assert "not trainable (no present frame in the training split): kidney" in caplog.text
    b = train_classifier(
        load_dataset(manifest, labels=labels), tmp_path / "run_b", overrides=FAST, cache_dir=tmp_path / "cache2"
    )
    assert a.read_bytes() == b.read_bytes()  # the zip's inner folder was named after a random temporary file
    m = json.loads((a.parent / "metrics.json").read_text())
    assert "kidney" in m["not_trainable"] and m["auroc"]["clip"]["kidney"] is None
    assert "NaN" not in (a.parent / "metrics.json").read_text()
    for key in ("auroc", "average_precision", "f1", "threshold", "baselines", "truth"):
        assert key in m
    assert set(m["baselines"]) == {"all_present", "prior"} and m["truth"] == "speech"


def test_no_positive_training_set_trains_with_a_warning(tmp_path, caplog):
    manifest, labels = make_user_data(tmp_path / "d")

    def negations_only(t):
        t["label"] = "unlabelled"
        return t

    _relabel(labels, negations_only)  # only "no gallbladder" is left: absent, never present
    with caplog.at_level(logging.WARNING, logger="sonotell.methods.frame_classifier"):
        ckpt = train_classifier(load_dataset(manifest, labels=labels), tmp_path / "run", overrides=FAST)
    assert "no label is present in any training frame" in caplog.text
    m = json.loads((ckpt.parent / "metrics.json").read_text())
    assert len(m["not_trainable"]) == len(m["labels"]) and all(v is None for v in m["threshold"]["frame"].values())


def test_summary_uses_the_stored_thresholds():
    meta = {
        "classes": ["a", "b", "c"],
        "multilabel": True,
        "thresholds": {"frame": {"a": 0.3, "b": 0.9, "c": None}, "clip": {"a": 0.5, "b": 0.1, "c": None}},
    }
    probs = np.array([[0.2, 0.5, 0.99], [0.4, 0.6, 0.99], [0.8, 0.7, 0.99], [0.9, 0.2, 0.99]], np.float32)
    rows = {r["label"]: r for r in summarise(ScanPrediction("s", 1.0, probs), meta)}
    # a: frames >= .3 are 3 of 4 (0.5 would give 2); mean .575 >= clip .5 -> present
    assert rows["a"]["predicted_share"] == 0.75 and rows["a"]["threshold"] == 0.3 and rows["a"]["present"]
    # b: no frame reaches .9 (0.5 would give 3); mean .5 >= clip .1 -> present
    assert rows["b"]["predicted_share"] == 0.0 and rows["b"]["present"]
    # c: not trainable -> never predicted, whatever its probability
    assert rows["c"]["predicted_share"] == 0.0 and not rows["c"]["present"] and rows["c"]["threshold"] is None
    old = {"classes": ["a"], "multilabel": True}  # a checkpoint from before thresholds: 0.5
    assert summarise(ScanPrediction("s", 1.0, probs[:, :1]), old)[0]["predicted_share"] == 0.5


def test_label_set_mismatch_between_model_and_data_is_one_line(tmp_path):
    meta = {"classes": ["liver", "kidney"]}
    with pytest.raises(InputError) as e:
        check_label_set(meta, None, tmp_path / "model.pt", [(tmp_path / "data.yaml", ["A-lines", "B-lines"])])
    msg = str(e.value)
    assert msg.startswith(str(tmp_path / "data.yaml")) and "\n" not in msg
    assert "(A-lines, B-lines) differs from the model's (liver, kidney)" in msg


def test_cross_validate_pairs_sources_on_subject_folds(tmp_path):
    manifest, labels = make_user_data(tmp_path / "d", n_subjects=4)
    ds = load_dataset(manifest, labels=labels)
    out = cross_validate(ds, tmp_path / "cv", folds=2, seeds=[0], sources=("labels",), overrides=FAST)
    assert out["truth"] == "speech" and len(out["runs"]) == 2
    tested = [s for r in out["runs"] for s in r["test_subjects"]]
    assert sorted(tested) == ["p0", "p1", "p2", "p3"]  # every subject held out exactly once per seed
    cell = out["summary"]["figures"]["f1/clip/macro"]["speech"]
    assert cell["n"] == 2 and cell["mean"] is not None


def test_train_cli_cv_writes_cv_json_and_metrics_table(tmp_path):
    from typer.testing import CliRunner

    from sonotell.cli import app

    manifest, labels = make_user_data(tmp_path / "d", n_subjects=4)
    sets = [a for kv in FAST for a in ("--set", kv)]
    base = ["train", "--data", str(manifest), "--labels", str(labels), *sets]
    res = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "cv"), "--cv", "2", "--seeds", "0"])
    assert res.exit_code == 0, (res.output, res.exception)
    doc = json.loads((tmp_path / "cv" / "cv.json").read_text())
    assert doc["folds"] == 2 and doc["seeds"] == [0] and len(doc["runs"]) == 2
    res = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "one")], env={"COLUMNS": "300"})
    assert res.exit_code == 0, (res.output, res.exception)
    assert "AUROC all present" in res.output and "not trainable" in res.output

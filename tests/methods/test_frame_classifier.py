"""`sonotell train` on a user's own data, and `sonotell predict` on new (silent) scans."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from sonotell.cli import app
from sonotell.data.dataset import load_dataset
from sonotell.errors import InputError
from sonotell.methods.frame_classifier import frame_targets, load_classifier, train_classifier
from sonotell.methods.predict import iter_clips
from sonotell.train.checkpoint import CheckpointError, save_model_checkpoint
from tests.conftest import write_video
from tests.methods.owndata_helpers import N_FRAMES, make_user_data, scan_frames


def cli_error(args) -> str:
    """The one-line error `sonotell` would print (main() turns SonotellError into exit code 2)."""
    from sonotell.errors import SonotellError

    res = CliRunner().invoke(app, args)
    assert isinstance(res.exception, SonotellError), res.output
    return str(res.exception)


# single-label: these scans show one organ at a time, and the predict tests check softmax rows
FAST = [
    "size=[32,32]",
    "frame_step=1",
    "train.epochs=6",
    "train.batch_size=8",
    "test_fraction=0.25",
    "multilabel=false",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("own")
    manifest, labels = make_user_data(root)
    sets = [a for kv in FAST for a in ("--set", kv)]
    args = ["train", "--data", str(manifest), "--labels", str(labels), "--out", str(root / "run"), *sets]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, (res.output, res.exception)
    assert "held-out subjects" in res.output and "speech" in res.output
    return root, root / "run" / "model.pt"


def test_train_writes_weights_only_checkpoint_with_metadata(trained):
    root, ckpt = trained
    raw = torch.load(ckpt, weights_only=True)  # tensors and JSON-able metadata only
    meta = raw["config"]
    assert raw["recipe"] == "frame_classifier" and meta["lexicon"] == "abdominal" and meta["lexicon_fingerprint"]
    assert meta["classes"][:2] == ["liver", "kidney"]
    assert not set(meta["train_subjects"]) & set(meta["test_subjects"]) and len(meta["test_subjects"]) == 1
    m = meta["metrics"]
    assert m["truth"] == "speech" and m["trained_on"] == "speech"
    assert meta["train_frames"] == 3 * (N_FRAMES - 2)  # every labelled frame of the 3 training scans
    assert m["frames"] == N_FRAMES - 2 and m["clips"] == 1
    # bright top vs bottom: easy; speech never negates liver or kidney, so AUROC is undefined (None, not NaN)
    assert m["f1"]["frame"]["liver"] >= 0.9 and m["f1"]["frame"]["kidney"] >= 0.9
    assert m["auroc"]["frame"]["liver"] is None and "liver" in m["undefined"]["frame"]
    assert m["not_trainable"] == ["gallbladder", "pancreas", "spleen", "bladder", "vessels"]
    assert m["threshold"]["frame"]["liver"] is not None and m["threshold"]["frame"]["spleen"] is None
    assert meta["thresholds"] == m["threshold"]
    assert json.loads((ckpt.parent / "metrics.json").read_text()) == meta["metrics"]
    assert (ckpt.parent / "model.yaml").exists()


def test_frame_targets_single_and_multilabel_by_hand():
    s = np.array([[1, -1, 0], [1, 1, -1], [-1, -1, -1], [-1, -1, 0]], np.int8)
    y, use = frame_targets(s, False)
    assert use.tolist() == [True, False, False, False] and y.tolist() == [0]
    y, use = frame_targets(s, True, "ignore")
    assert use.tolist() == [True, True, False, True] and y.tolist() == [[1, -1, 0], [1, 1, -1], [-1, -1, 0]]
    y, _ = frame_targets(s, True)  # default: unknown stays -1 (masked in the loss)
    assert y.tolist() == [[1, -1, 0], [1, 1, -1], [-1, -1, 0]]
    y, _ = frame_targets(s, True, "absent_if_labelled")  # the old rule, kept as an option
    assert y.tolist() == [[1, 0, 0], [1, 1, 0], [0, 0, 0]]


def test_streaming_clips_match_whole_video_windows():
    frames = [np.full((2, 2), i, np.uint8) for i in range(7)]
    for t in (1, 2, 3, 4):
        got = [(i, c[:, 0, 0].tolist()) for i, c in iter_clips(iter(frames), t)]
        want = [(i, np.clip(np.arange(i - t // 2, i - t // 2 + t), 0, 6).tolist()) for i in range(7)]
        assert got == want


def test_predict_on_silent_video_writes_probs_summary_sheet_and_overlay(trained, tmp_path):
    root, ckpt = trained
    video = write_video(tmp_path / "new" / "archive1.mp4", scan_frames(np.random.default_rng(5)), fps=10)
    res = CliRunner().invoke(
        app,
        ["predict", str(ckpt), str(video.parent), "--out", str(tmp_path / "pred"), "--video", "--lexicon", "abdominal"],
    )
    assert res.exit_code == 0, res.output
    probs = pd.read_csv(tmp_path / "pred" / "archive1.probs.csv")
    assert len(probs) == N_FRAMES and np.allclose(
        probs[list(load_classifier(ckpt)[1]["classes"])].sum(axis=1), 1, atol=1e-3
    )
    top = probs[["liver", "kidney"]].to_numpy().argmax(1)
    assert (top[:8] == 0).mean() >= 0.75 and (top[-8:] == 1).mean() >= 0.75  # liver first, kidney after
    summary = pd.read_csv(tmp_path / "pred" / "summary.csv", keep_default_na=False)
    liver = summary[summary["label"] == "liver"].iloc[0]
    assert liver["spans"].startswith("0.00-")
    assert (tmp_path / "pred" / "archive1.sheet.png").stat().st_size > 0
    import av

    with av.open(str(tmp_path / "pred" / "archive1.overlay.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == N_FRAMES


def test_predict_refuses_other_label_set_other_task_and_empty_video(trained, tmp_path):
    root, ckpt = trained
    video = root / "videos" / "scan0.mp4"
    err = cli_error(["predict", str(ckpt), str(video), "--out", str(tmp_path / "p"), "--lexicon", "lung"])
    assert "model.pt: the model's label set (liver, kidney" in err and "differs from lexicon 'lung' (A-lines" in err
    other = save_model_checkpoint(tmp_path / "enc.pt", torch.nn.Linear(2, 2), "show_from_tell", {})
    err = cli_error(["predict", str(other), str(video), "--out", str(tmp_path / "p")])
    assert "enc.pt: checkpoint of task 'show_from_tell', expected 'frame_classifier'" in err
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    err = cli_error(["predict", str(ckpt), str(empty), "--out", str(tmp_path / "p")])
    assert err.startswith(str(empty)) and "\n" not in err
    err = cli_error(["predict", str(ckpt), str(video), "--out", str(root / "videos" / "scan0.mp4")])
    assert "is an input of this command" in err  # refused by the CLI's output guard before predict_scans runs


def test_train_cli_refuses_one_subject_and_no_labelled_frames(tmp_path):
    manifest, labels = make_user_data(tmp_path / "one", n_subjects=1)
    err = cli_error(["train", "--data", str(manifest), "--labels", str(labels), "--out", str(tmp_path / "r")])
    assert "manifest.csv: 1 subject(s) (p0): need at least 2" in err
    manifest, labels = make_user_data(tmp_path / "none")
    for p in labels.glob("*.labels.csv"):
        t = pd.read_csv(p)
        t["label"], t["absent"] = "unlabelled", ""
        t.to_csv(p, index=False)
    with pytest.raises(InputError, match="no labelled frames in the 3 training scans"):
        train_classifier(load_dataset(manifest, labels=labels), tmp_path / "r2", overrides=FAST)


def test_init_from_a_checkpoint_of_another_kind_names_both(tmp_path):
    manifest, labels = make_user_data(tmp_path)
    bogus = save_model_checkpoint(tmp_path / "bogus.pt", torch.nn.Linear(2, 2), "not_a_recipe", {})
    with pytest.raises((CheckpointError, Exception), match="not_a_recipe"):
        train_classifier(load_dataset(manifest, labels=labels), tmp_path / "r", overrides=FAST, init=bogus)


def test_ingest_video_only_accepts_silent_scans(tmp_path):
    write_video(tmp_path / "scans" / "silent.mp4", scan_frames(np.random.default_rng(1)), fps=10)
    res = CliRunner().invoke(
        app, ["ingest", str(tmp_path / "scans"), "--out", str(tmp_path / "m.csv"), "--workers", "1"]
    )
    assert res.exit_code == 1 and "no speech" in res.output
    res = CliRunner().invoke(
        app, ["ingest", str(tmp_path / "scans"), "--out", str(tmp_path / "m2.csv"), "--workers", "1", "--video-only"]
    )
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "m2.csv", keep_default_na=False)
    assert table["scan_id"].tolist() == ["silent"] and table["audio_path"].tolist() == [""]


def test_pretrain_on_own_data_then_train_from_it(tmp_path):
    manifest, labels = make_user_data(tmp_path, narrated=True)
    (tmp_path / "data.yaml").write_text("manifest: manifest.csv\nlabels: labels\n")
    args = [
        "pretrain",
        "av_contrastive",
        "--data",
        str(tmp_path / "data.yaml"),
        "--out",
        str(tmp_path / "pre"),
        "--set",
        "train.epochs=1",
        "--set",
        "train.batch_size=4",
        "--set",
        "data.size=[32,32]",
        "--set",
        "data.n_frames=2",
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, (res.output, res.exception)
    enc = tmp_path / "pre" / "av_contrastive" / "encoder.pt"
    ckpt = train_classifier(
        load_dataset(tmp_path / "data.yaml"),
        tmp_path / "clf",
        overrides=[*FAST, "n_frames=2", "train.epochs=1"],
        init=enc,
    )
    model, meta = load_classifier(ckpt)
    assert meta["init"]["recipe"] == "av_contrastive" and model.input_kind == "video"
    assert model(torch.rand(3, 2, 32, 32)).shape == (3, len(meta["classes"]))


def test_prefetch_keeps_order_and_reraises_on_the_consumer():
    from sonotell.methods.predict import prefetch

    assert list(prefetch(iter(range(500)), depth=4)) == list(range(500))

    def broken():
        yield 1
        raise InputError("v.mp4", "corrupt at frame 1")

    with pytest.raises(InputError, match="v.mp4: corrupt at frame 1"):
        list(prefetch(broken()))
    stream = prefetch(iter(range(1000)), depth=2)
    assert next(stream) == 0
    stream.close()  # an abandoned stream stops its thread

"""Downstream fine-tuning: patient-level folds, checkpoint loading (and refusals), CV numbers."""

import numpy as np
import pytest
import torch
from torch import nn

from sonotell.methods import downstream as D
from sonotell.models.registry import register_model
from sonotell.train import CheckpointError, save_model_checkpoint

RECIPE = "tiny_downstream_test"


class TinyRecipeModel(nn.Module):
    """A stand-in for a pretraining recipe's model: encode_video -> (B, width)."""

    def __init__(self, width: int = 8):
        super().__init__()
        self.conv = nn.Conv3d(1, width, (1, 3, 3), padding=(0, 1, 1))
        self.pool = nn.AdaptiveAvgPool3d((1, 2, 1))  # keeps top/bottom halves apart

    def encode_video(self, frames):
        return torch.relu(self.pool(self.conv(frames[:, None]))).flatten(1)


@register_model(RECIPE)
def _tiny(width: int = 8, **_):
    return TinyRecipeModel(width)


def _arrays(n_subjects=9, seed=0) -> D.ClipArrays:
    """Two classes: a bright top half (0) or bottom half (1); 2 scans x 2 clips per subject."""
    rng = np.random.default_rng(seed)
    frames, labels, scans, subjects = [], [], [], []
    for s in range(n_subjects):
        for k in range(2):
            y = (s + k) % 2
            for _ in range(2):
                f = rng.normal(60, 20, (4, 16, 16))
                f[:, :8] += 120 if y == 0 else 0
                f[:, 8:] += 120 if y == 1 else 0
                frames.append(np.clip(f, 0, 255).astype(np.uint8))
                labels.append(y)
                scans.append(f"p{s}_scan{k}")
                subjects.append(f"p{s}")
    return D.ClipArrays(np.stack(frames), np.array(labels), np.array(scans), np.array(subjects), ["top", "bottom"])


CFG = {
    "folds": 3,
    "finetune": {"input": "video", "epochs": 6, "batch_size": 8, "optimizer": {"name": "adam", "lr": 0.03}},
}


def test_folds_are_patient_level_and_cover_every_clip():
    data = _arrays()
    folds = D.make_folds(data, 3, seed=0)
    assert sorted(np.concatenate([te for _, te in folds]).tolist()) == list(range(len(data.labels)))
    for tr, te in folds:
        assert not set(data.subject_ids[tr]) & set(data.subject_ids[te])


def test_scan_level_averages_clip_probabilities():
    data = _arrays(n_subjects=1)
    # scan0 (label 0): clips .6/.4 and .3/.7 -> mean .45/.55 -> predicted 1; scan1 (label 1): -> 1
    probs = np.array([[0.6, 0.4], [0.3, 0.7], [0.2, 0.8], [0.4, 0.6]])
    y_true, y_pred, scans = D.scan_level(probs, np.arange(4), data)
    assert scans == ["p0_scan0", "p0_scan1"]
    assert y_true.tolist() == [0, 1] and y_pred.tolist() == [1, 1]


def test_user_checkpoint_from_a_local_path_loads_its_weights(tmp_path):
    torch.manual_seed(1)
    model = TinyRecipeModel(width=6)
    path = save_model_checkpoint(tmp_path / "mine" / "enc.pt", model, RECIPE, {"model": {"name": RECIPE, "width": 6}})
    loaded, recipe = D.load_encoder(path)
    assert recipe == RECIPE
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        torch.testing.assert_close(a, b)
    fresh, _ = D.load_encoder(None, RECIPE, {"model": {"name": RECIPE, "width": 6}})
    assert not torch.equal(fresh.conv.weight, model.conv.weight)


def test_wrong_recipe_and_wrong_shape_are_refused_by_name(tmp_path):
    path = save_model_checkpoint(
        tmp_path / "enc.pt", TinyRecipeModel(width=6), RECIPE, {"model": {"name": RECIPE, "width": 6}}
    )
    with pytest.raises(CheckpointError, match=f"{RECIPE}.*expected 'show_from_tell'"):
        D.load_encoder(path, recipe="show_from_tell")
    lying = save_model_checkpoint(
        tmp_path / "lying.pt", TinyRecipeModel(width=4), RECIPE, {"model": {"name": RECIPE, "width": 6}}
    )
    with pytest.raises(CheckpointError, match=r"lying.pt.*does not fit.*\(4, 1, 1, 3, 3\).*\(6, 1, 1, 3, 3\)"):
        D.load_encoder(lying)


def test_classification_task_loss_is_cross_entropy():
    data = _arrays(n_subjects=2)
    clf = D.DownstreamClassifier(TinyRecipeModel(), 2, torch.rand(1, 4, 16, 16))
    task = D.ClassificationTask(clf)
    batch = {"frames": torch.rand(3, 4, 16, 16), "label": torch.tensor([0, 1, 1])}
    out = task.step(batch)
    logits = clf(batch["frames"])
    manual = -sum(torch.log_softmax(logits[i], 0)[y] for i, y in enumerate([0, 1, 1])) / 3
    assert out["loss"].item() == pytest.approx(manual.item(), rel=1e-5)
    assert data.frames.dtype == np.uint8


def test_variants_get_one_random_baseline_per_architecture(tmp_path):
    path = save_model_checkpoint(tmp_path / "u.pt", TinyRecipeModel(), RECIPE, {})
    cfg = {
        "variants": [
            {"name": "a", "recipe": "r1"},
            {"name": "a-no_audio", "recipe": "r1", "overrides": ["x=1"]},
            {"name": "b", "recipe": "r2"},
        ],
        "checkpoints": {"mine": str(path)},
    }
    rows = D.variants_from_config(cfg)
    names = [r.name for r in rows]
    assert set(names) == {"random:r1", "random:r2", f"random:{RECIPE}", "a", "a-no_audio", "b", "mine"}
    assert {r.name: r.baseline for r in rows}["a-no_audio"] == "random:r1"
    assert {r.name: r.init for r in rows}["mine"] == str(path)


def test_compare_with_names_the_baseline_row(tmp_path):
    cfg = {
        "variants": [
            {"name": "scratch", "recipe": "r1", "init": "random"},
            {
                "name": "imagenet",
                "recipe": "r1",
                "init": "random",
                "overrides": ["model.video.pretrained=true"],
                "compare_with": "scratch",
            },
        ]
    }
    rows = {r.name: r for r in D.variants_from_config(cfg)}
    assert (
        rows["imagenet"].baseline == "scratch"
        and rows["imagenet"].init == D.RANDOM
        and set(rows) == {"scratch", "imagenet"}
    )
    from sonotell.errors import ConfigError

    cfg["variants"][1]["compare_with"] = "nobody"
    with pytest.raises(ConfigError, match="compare_with 'nobody' is not a variant"):
        D.variants_from_config(cfg)


def test_cross_validated_finetuning_pretrained_vs_random(tmp_path):
    data = _arrays()
    torch.manual_seed(0)
    ckpt = save_model_checkpoint(tmp_path / "pre.pt", TinyRecipeModel(), RECIPE, {"model": {"name": RECIPE}})
    variants = [
        D.Variant("pre", RECIPE, str(ckpt), baseline=f"random:{RECIPE}"),
        D.Variant(f"random:{RECIPE}", RECIPE, D.RANDOM),
    ]
    res = D.run_downstream(data, variants, CFG, tmp_path / "run", seed=0)
    pre, rnd = res["variants"]["pre"], res["variants"][f"random:{RECIPE}"]
    assert len(pre["per_fold"]) == 3 and sum(f["n_scans"] for f in pre["per_fold"]) == 18
    assert pre["f1_mean"] > 0.7 and rnd["f1_mean"] > 0.7  # the toy task is easy for both
    assert pre["f1_mean"] == pytest.approx(np.mean([f["f1"] for f in pre["per_fold"]]))
    diff = [a["f1"] - b["f1"] for a, b in zip(pre["per_fold"], rnd["per_fold"])]
    assert pre["margin_f1"]["mean"] == pytest.approx(np.mean(diff)) and pre["margin_f1"]["std"] == pytest.approx(
        np.std(diff)
    )
    cm = np.array(pre["confusion_true_normalised"])
    np.testing.assert_allclose(cm.sum(axis=1), 1.0)
    paired = pre["paired_f1"]
    assert paired["folds"]["mean"] == pytest.approx(np.mean(diff)) and paired["folds"]["n"] == 3
    assert paired["folds"]["low"] <= paired["folds"]["mean"] <= paired["folds"]["high"]
    assert paired["patients"]["n"] == 9 and paired["patients"]["unit"] == "patient"
    assert sorted(pre["scans"]["scan_ids"]) == sorted(set(data.scan_ids.tolist()))
    table = D.results_table(res)
    assert [r["variant"] for r in table] == ["pre", f"random:{RECIPE}"] and "pts" in table[0]["f1_margin_vs_random"]
    # resumable: a second run reads the cached per-variant results
    again = D.run_downstream(data, variants, CFG, tmp_path / "run", seed=0)
    assert again["variants"]["pre"]["per_fold"] == pre["per_fold"]


def test_per_fold_pretraining_leaves_each_test_fold_out(tmp_path):
    data = _arrays()
    calls = []

    def checkpoint_for(variant, test_subjects, tag):
        calls.append((tag, test_subjects))
        torch.manual_seed(len(calls))
        return save_model_checkpoint(tmp_path / f"{tag}.pt", TinyRecipeModel(), RECIPE, {"model": {"name": RECIPE}})

    cfg = {**CFG, "finetune": {**CFG["finetune"], "epochs": 1}, "pretrain": {"per_fold": True}}
    variants = [D.Variant("pre", RECIPE, "pretrain", baseline=None)]
    res = D.run_downstream(data, variants, cfg, tmp_path / "run", seed=0, checkpoint_for=checkpoint_for)
    folds = D.make_folds(data, 3, seed=0)
    assert [tag for tag, _ in calls] == ["fold0", "fold1", "fold2"]
    assert [subjects for _, subjects in calls] == [sorted(set(data.subject_ids[te].tolist())) for _, te in folds]
    assert res["pretrain_per_fold"] is True
    assert res["variants"]["pre"]["init"] == [str(tmp_path / f"fold{f}.pt") for f in range(3)]

    calls.clear()
    once = D.run_downstream(
        data,
        variants,
        {**cfg, "pretrain": {"per_fold": False}},
        tmp_path / "run_once",
        seed=0,
        checkpoint_for=checkpoint_for,
    )
    assert calls == [("all", None)] and once["variants"]["pre"]["init"] == [str(tmp_path / "all.pt")] * 3


@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory):
    from sonotell.bench import build_benchmark

    out = tmp_path_factory.mktemp("bench") / "synthetic"
    return build_benchmark(
        "synthetic", out, overrides=["subjects=4", "scans_per_subject=2", "duration_s=3.0", "size=[64,64]"], seed=0
    )


def test_finetune_cli_on_a_benchmark_with_a_user_checkpoint(tiny_bench, tmp_path):
    import json

    from typer.testing import CliRunner

    from sonotell.cli import app

    ckpt = save_model_checkpoint(tmp_path / "user" / "enc.pt", TinyRecipeModel(), RECIPE, {"model": {"name": RECIPE}})
    out = tmp_path / "ft"
    args = [
        "finetune",
        "--benchmark",
        str(tiny_bench),
        "--checkpoint",
        str(ckpt),
        "--out",
        str(out),
        "--set",
        "folds=2",
        "--set",
        "finetune.epochs=1",
        "--set",
        "data.size=[32,32]",
        "--seed",
        "3",
    ]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    assert set(res["variants"]) == {"enc", f"random:{RECIPE}"}
    assert res["n_subjects"] == 4 and res["n_scans"] == 8
    for fold in res["folds"]:
        assert len(fold["test_subjects"]) == 2
    assert (out / res["confusion_png"]["enc"]).stat().st_size > 0
    assert "f1_margin_vs_random" in (out / "results.md").read_text()
    bad = CliRunner().invoke(
        app, ["finetune", "--benchmark", str(tiny_bench), "--checkpoint", str(tmp_path / "nope.pt"), "--out", str(out)]
    )
    assert bad.exit_code != 0

import json

from typer.testing import CliRunner

from sonotell.cli import app


def test_pretrain_help_and_unknown_recipe(tmp_path):
    r = CliRunner().invoke(app, ["pretrain", "--help"])
    assert r.exit_code == 0 and "--benchmark" in r.output and "--seed" in r.output
    bad = CliRunner().invoke(app, ["pretrain", "simclr", "--benchmark", str(tmp_path), "--out", str(tmp_path / "o")])
    # refused by the parser (a usage error, exit 2) before anything runs
    assert bad.exit_code == 2 and "'simclr' is not one of" in bad.output


def test_pretrain_writes_encoder_checkpoint(tiny_bench, tmp_path):
    out = tmp_path / "runs"
    args = [
        "pretrain",
        "dual",
        "--benchmark",
        str(tiny_bench),
        "--out",
        str(out),
        "--set",
        "train.epochs=1",
        "--set",
        "train.batch_size=4",
        "--seed",
        "1",
    ]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert (out / "dual" / "encoder.pt").exists() and (out / "dual" / "encoder.yaml").exists()
    assert (out / "frame_cache").is_dir()  # shared by every recipe run under OUT
    info = json.loads((out / "dual" / "pretrain.json").read_text())
    assert info["recipe"] == "dual" and info["seed"] == 1 and info["train_clips"] == 8

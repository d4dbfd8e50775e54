"""CLI tests for ``cluster``, ``semisup`` and ``experiment`` on a tiny saved frame set."""

import json
import sys

import pytest
from typer.testing import CliRunner

from sonotell.cli import app, main
from tests.methods.test_deep_cluster import make_frames

TINY = ["--set", "image_size=[32,32]", "--set", "encoder.widths=[4,8,8,8]", "--set", "encoder.blocks=[1,1,1,1]"]


@pytest.fixture
def frame_folder(tmp_path):
    make_frames(n=32).save(tmp_path / "frames" / "frameset.npz")
    return tmp_path / "frames"


def test_cluster_writes_assignments_and_named_clusters(frame_folder, tmp_path):
    out = tmp_path / "c"
    r = CliRunner().invoke(
        app,
        [
            "cluster",
            str(frame_folder),
            "--out",
            str(out),
            "--k",
            "3",
            "--prior",
            "negative_entropy",
            *TINY,
            "--set",
            "clustering.epochs=1",
        ],
    )
    assert r.exit_code == 0, r.output
    info = json.loads((out / "clusters.json").read_text())
    assert info["k"] == 3 and info["prior"] == "negative_entropy" and info["classes"] == ["A", "B"]
    assert sum(c["frames"] for c in info["clusters"]) == 32
    assert len((out / "assignments.csv").read_text().splitlines()) == 33


def test_semisup_honours_config_and_set(frame_folder, tmp_path):
    out = tmp_path / "s"
    config = tmp_path / "dc.yaml"  # a user config over the packaged one: steps from the file, the rest from --set
    config.write_text("_base_: small\nsemisup: {steps: 2, steps_per_epoch: 2}\n")
    r = CliRunner().invoke(
        app,
        [
            "semisup",
            str(frame_folder),
            "--method",
            "supervised",
            "--out",
            str(out),
            *TINY,
            "--config",
            str(config),
            "--set",
            "semisup.batch_size=4",
        ],
    )
    assert r.exit_code == 0, r.output
    rep = json.loads((out / "report.json").read_text())
    assert rep["method"] == "supervised" and len(rep["test_subjects"]) == 1  # 4 folds of 4 subjects
    assert set(rep["per_class"]) == {"A", "B"}
    assert (rep["settings"]["steps"], rep["settings"]["batch_size"]) == (
        2,
        4,
    )  # the file's and --set's, not the packaged


def test_a_mistyped_setting_is_one_line_and_exit_2(frame_folder, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["sonotell", "semisup", str(frame_folder), "--set", "semisup.step=2"])
    with pytest.raises(SystemExit) as e:
        main()
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2
    assert err.splitlines()[-1] == "error: unknown setting 'semisup.step'; did you mean 'semisup.steps'?"
    assert "Traceback" not in err


def test_experiment_deep_cluster_writes_its_tables(frame_folder, tmp_path):
    sets = [
        "clustering.epochs=1",
        "semisup.steps=1",
        "semisup.steps_per_epoch=1",
        "experiment.seeds=[0]",
        "experiment.max_folds=1",
        "experiment.priors=[dirichlet]",
        "experiment.lambdas=[]",
        "experiment.fractions=[1.0]",
        "experiment.inits=[random]",
        "experiment.methods=[supervised]",
    ]
    args = ["experiment", "deep_cluster", "--benchmark", str(frame_folder), "--out", str(tmp_path / "e"), *TINY]
    r = CliRunner().invoke(app, args + [a for s in sets for a in ("--set", s)])
    assert r.exit_code == 0, r.output
    results = json.loads((tmp_path / "e" / "deep_cluster" / "results.json").read_text())
    # the method run, and the "call every class present" reference row every table carries
    assert [row["method"] for row in results["summary"]["semisup"]] == ["all_positive", "supervised"]
    assert (tmp_path / "e" / "deep_cluster" / "report.md").exists()

"""Issue 21 items 6 and 7: every command that writes a folder locks it and claims it; another command refuses it."""

from __future__ import annotations

import json
import shutil

import pytest

from sonotell.errors import OutputError
from sonotell.files import RUN_RECORD_NAME, check_run_fingerprint, claim_output, output_lock, output_owner
from tests.security.conftest import one_line_error, run_cli


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_claimed_folder_refuses_another_command(tmp_path):
    out = tmp_path / "labels"
    with output_lock(out, "sonotell label"):
        pass
    assert output_owner(out) == "sonotell label"
    with output_lock(out, "sonotell label"):  # the same command again: a resume
        pass
    with pytest.raises(OutputError, match=r"holds the outputs of `sonotell label`; `sonotell predict` does not"):
        with output_lock(out, "sonotell predict"):
            raise AssertionError("the block must not run")
    assert output_owner(out) == "sonotell label"


def test_the_claim_and_the_fingerprint_share_one_record(tmp_path):
    claim_output(tmp_path, "sonotell label")
    check_run_fingerprint(tmp_path, "aaa", what="sonotell label")
    check_run_fingerprint(tmp_path, "bbb", overwrite=True, what="sonotell label")
    assert json.loads((tmp_path / RUN_RECORD_NAME).read_text()) == {
        "command": "sonotell label",
        "fingerprint": "bbb",
        "what": "sonotell label",
    }
    legacy = tmp_path / "old"
    legacy.mkdir()
    (legacy / RUN_RECORD_NAME).write_text('{"fingerprint": "x", "what": "sonotell label"}')  # before claims
    with pytest.raises(OutputError, match="`sonotell label`"):
        claim_output(legacy, "sonotell review export")


def test_file_outputs_and_unrecorded_folders(tmp_path):
    claim_output(tmp_path / "manifest.csv", "sonotell ingest")  # a file output: nothing to claim
    assert not (tmp_path / "manifest.csv").exists() and not (tmp_path / RUN_RECORD_NAME).exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    claim_output(tmp_path / "mine", "sonotell train")  # a folder without a record becomes this command's
    assert output_owner(tmp_path / "mine") == "sonotell train"
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / RUN_RECORD_NAME).write_text("[[[")  # an unreadable record is not an owner
    claim_output(tmp_path / "bad", "sonotell train")
    assert output_owner(tmp_path / "bad") == "sonotell train"


def test_two_train_runs_into_one_out_the_second_is_refused(tmp_path, capsys):
    from tests.methods.owndata_helpers import make_user_data

    manifest, labels = make_user_data(tmp_path, n_subjects=2)
    out = tmp_path / "run"
    with output_lock(out, "sonotell train"):  # a first run is writing
        line = one_line_error(capsys, ["train", "--data", manifest, "--labels", labels, "--out", out])
    assert "another sonotell run (pid" in line
    assert not (out / "model.pt").exists()


def test_two_predict_runs_into_one_out_the_second_is_refused(tmp_path, capsys):
    import numpy as np

    from tests.conftest import write_video
    from tests.methods.owndata_helpers import scan_frames

    video = write_video(tmp_path / "v.mp4", scan_frames(np.random.default_rng(0)), fps=10)
    out = tmp_path / "pred"
    with output_lock(out, "sonotell predict"):
        line = one_line_error(capsys, ["predict", tmp_path / "model.pt", video, "--out", out])
    assert "another sonotell run (pid" in line
    assert sorted(p.name for p in out.iterdir()) == [".sonotell-run.json", ".sonotell.lock"]


def test_predict_and_review_export_refuse_a_labels_folder(tmp_path, bursts, capsys):
    """`predict --out labels/` replaced summary.json/csv; `review export A --out B` replaced labels folder B."""
    import numpy as np

    from tests.conftest import write_video
    from tests.methods.owndata_helpers import scan_frames
    from tests.speech.test_speech_cmds import FAST, tiny_bench

    bench = tiny_bench(tmp_path / "bench", bursts)
    labels = tmp_path / "labels"
    assert run_cli(capsys, ["label", bench, "--lexicon", "abdominal", "--out", labels, *FAST])[0] == 0
    assert output_owner(labels) == "sonotell label"
    before = _snapshot(labels)
    video = write_video(tmp_path / "v.mp4", scan_frames(np.random.default_rng(0)), fps=10)
    line = one_line_error(capsys, ["predict", tmp_path / "model.pt", video, "--out", labels])
    assert "holds the outputs of `sonotell label`; `sonotell predict` does not" in line
    other = tmp_path / "other_labels"
    shutil.copytree(labels, other)
    line = one_line_error(capsys, ["review", "export", other, "--out", labels])
    assert "holds the outputs of `sonotell label`; `sonotell review export` does not" in line
    line = one_line_error(capsys, ["export", "label-studio", other, "--out", labels])
    assert "`sonotell export label-studio` does not" in line
    assert _snapshot(labels) == before  # not one byte changed
    # the other way round: a reviewed export is not a folder `label` writes into
    exported = tmp_path / "exported"
    assert run_cli(capsys, ["review", "export", labels, "--out", exported])[0] == 0
    assert output_owner(exported) == "sonotell review export"
    assert run_cli(capsys, ["review", "export", labels, "--out", exported])[0] == 0  # its own folder: again
    line = one_line_error(capsys, ["label", bench, "--lexicon", "abdominal", "--out", exported, *FAST])
    assert "`sonotell review export`; `sonotell label` does not" in line


def test_every_cli_output_guard_names_its_command():
    """A command that guards a folder output must claim it: ``guarded_output(out, inputs, "sonotell ...")``."""
    import ast
    from pathlib import Path

    import sonotell.cli

    missing = []
    for source in sorted(Path(sonotell.cli.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "guarded_output":
                command = node.args[2] if len(node.args) > 2 else None
                if not (isinstance(command, ast.Constant) and str(command.value).startswith("sonotell ")):
                    missing.append(f"{source.name}:{node.lineno}")
    assert not missing, f"guarded_output without a command: {missing}"


def test_a_failed_run_leaves_no_new_empty_folder(tmp_path, capsys):
    out = tmp_path / "exported"
    line = one_line_error(capsys, ["review", "export", tmp_path / "missing", "--out", out])
    assert "labels folder not found" in line and not out.exists()
    with pytest.raises(RuntimeError):
        with output_lock(out, "sonotell demo"):
            (out / "partial.txt").write_text("x")  # something was written: the folder stays
            raise RuntimeError
    assert (out / "partial.txt").exists()

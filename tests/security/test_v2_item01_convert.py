"""Reliability v2, item 1: `python -m sonotell.safeload convert` runs a file's code only when told to.

Without ``--trust-this-file`` it refuses a pickled checkpoint (saying what the flag means) and
nothing in the file runs; it never converts a file onto itself (also through a symlink or a hard
link); a missing or garbage input is one ``error:`` line with exit code 2.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from sonotell.errors import OutputError
from sonotell.safeload import TRUST_FLAG, _main, convert_trusted, load_weights_only
from sonotell.train import save_model_checkpoint
from tests.security.conftest import one_line_error
from tests.security.test_item01_checkpoints import evil_checkpoint

ROOT = Path(__file__).resolve().parents[2]


def convert(capsys, *args) -> tuple[int, str, str]:
    code = _main(["convert", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_without_the_trust_flag_nothing_runs_and_the_flag_is_explained(tmp_path, capsys):
    marker = tmp_path / "pwned"
    evil = evil_checkpoint(tmp_path / "evil.pt", marker)
    code, out, err = convert(capsys, evil, tmp_path / "new.pt")
    line = error_line(err)
    assert code == 2 and not marker.exists() and not (tmp_path / "new.pt").exists()
    assert "evil.pt: not converted: converting unpickles" in line and "any code the file carries runs" in line
    assert f"safeload convert {TRUST_FLAG} {evil} {tmp_path / 'new.pt'}" in line


def test_with_the_trust_flag_it_converts_and_warns_first(tmp_path, capsys):
    marker = tmp_path / "ran"
    evil = evil_checkpoint(tmp_path / "old.pt", marker)
    code, out, err = convert(capsys, TRUST_FLAG, evil, tmp_path / "new.pt")
    assert code == 0, err
    assert err.startswith("warning: converting unpickles") and f"You passed {TRUST_FLAG}" in err
    assert marker.exists()  # it did run the file's code: that is what the flag allowed
    assert load_weights_only(tmp_path / "new.pt")["recipe"] == "show_from_tell"


@pytest.mark.parametrize("link", ["same", "symlink", "hardlink"])
def test_converting_a_file_onto_itself_is_refused(tmp_path, capsys, link):
    old = tmp_path / "m.pt"
    torch.save({"x": Path("a")}, old)  # a pickled object: would need converting
    before = old.read_bytes()
    dst = old
    if link == "symlink":
        dst = tmp_path / "link.pt"
        dst.symlink_to(old)
    elif link == "hardlink":
        dst = tmp_path / "hard.pt"
        os.link(old, dst)
    code, _, err = convert(capsys, TRUST_FLAG, old, dst)
    assert code == 2 and "is an input of this command" in error_line(err)
    assert old.read_bytes() == before
    with pytest.raises(OutputError, match="is an input of this command"):
        convert_trusted(old, dst)
    assert old.read_bytes() == before


@pytest.mark.parametrize(
    "content, problem",
    [
        (None, "checkpoint not found"),
        (b"garbage\nmore garbage\n", "unreadable checkpoint (not a PyTorch file"),
        (bytes(range(256)) * 4, "unreadable checkpoint (not a PyTorch file"),
        (b"PK\x03\x04truncated zip", "unreadable checkpoint"),
    ],
    ids=["missing", "text", "binary", "truncated-zip"],
)
def test_missing_or_garbage_input_is_one_line(tmp_path, capsys, content, problem):
    src = tmp_path / "in.pt"
    if content is not None:
        src.write_bytes(content)
    for flags in ([], [TRUST_FLAG]):
        code, _, err = convert(capsys, *flags, src, tmp_path / "new.pt")
        assert code == 2 and error_line(err).startswith(f"error: {src}: {problem}"), err
        assert not (tmp_path / "new.pt").exists()


def test_a_checkpoint_that_already_loads_safely_is_left_alone(tmp_path, capsys):
    ckpt = save_model_checkpoint(tmp_path / "m.pt", nn.Linear(2, 2), "toy", {})
    code, out, _ = convert(capsys, ckpt, tmp_path / "new.pt")
    assert code == 0 and "nothing to convert" in out and not (tmp_path / "new.pt").exists()


def test_the_module_entry_point_exits_2_with_usage_or_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    run = subprocess.run([sys.executable, "-m", "sonotell.safeload"], capture_output=True, text=True, env=env)
    assert run.returncode == 2 and f"convert {TRUST_FLAG} OLD.pt NEW.pt" in run.stderr
    marker = tmp_path / "pwned"
    evil = evil_checkpoint(tmp_path / "evil.pt", marker)
    args = [sys.executable, "-m", "sonotell.safeload", "convert", str(evil), str(tmp_path / "n.pt")]
    run = subprocess.run(args, capture_output=True, text=True, env=env)
    assert run.returncode == 2 and error_line(run.stderr) and not marker.exists()


def test_the_refusals_of_other_commands_name_the_trust_flag(tmp_path, capsys):
    marker = tmp_path / "pwned"
    ckpt = evil_checkpoint(tmp_path / "evil.pt", marker)
    video = tmp_path / "scan.mp4"
    video.write_bytes(b"not used")
    line = one_line_error(capsys, ["localise", video, "--checkpoint", ckpt, "--out", tmp_path / "o.mp4"])
    assert f"safeload convert {TRUST_FLAG} OLD.pt NEW.pt" in line and "only if you trust" in line
    assert "(it names io.open)" in line  # what the file asks to run, not torch's multi-line advice
    assert not marker.exists()

"""Item 8: one run per output folder at a time, and no silent mixing of configurations."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sonotell.errors import OutputError
from sonotell.files import check_run_fingerprint, output_lock
from tests.security.conftest import one_line_error, run_cli
from tests.speech.test_speech_cmds import FAST, tiny_bench


def test_a_second_run_on_a_locked_folder_is_refused(tmp_path):
    out = tmp_path / "labels"
    with output_lock(out):
        with pytest.raises(OutputError, match="another sonotell run .*pid"):
            with output_lock(out):
                pass
        code = "from sonotell.files import output_lock\nwith output_lock(%r): pass\n" % str(out)
        other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert other.returncode != 0 and "another sonotell run" in other.stderr  # another process too
    with output_lock(out):  # released: free again
        pass


def test_fingerprint_mismatch_needs_overwrite(tmp_path):
    check_run_fingerprint(tmp_path, "aaa")
    check_run_fingerprint(tmp_path, "aaa")  # same config: resume
    with pytest.raises(OutputError, match="another configuration .*--overwrite"):
        check_run_fingerprint(tmp_path, "bbb")
    check_run_fingerprint(tmp_path, "bbb", overwrite=True)
    check_run_fingerprint(tmp_path, "bbb")


def test_label_into_a_folder_of_another_config(tmp_path, bursts, capsys):
    bench = tiny_bench(tmp_path / "bench", bursts)
    out = tmp_path / "lab"
    assert run_cli(capsys, ["label", bench, "--lexicon", "abdominal", "--out", out, *FAST])[0] == 0
    first = json.loads((out / "summary.json").read_text())["fingerprint"]
    other = [*FAST, "--set", "align.before_s=0.0"]
    assert "another configuration" in one_line_error(
        capsys, ["label", bench, "--lexicon", "abdominal", "--out", out, *other]
    )
    assert json.loads((out / "summary.json").read_text())["fingerprint"] == first  # untouched
    code, output = run_cli(capsys, ["label", bench, "--lexicon", "abdominal", "--out", out, *other, "--overwrite"])
    assert code == 0, output
    assert json.loads((out / "summary.json").read_text())["fingerprint"] != first

"""Reliability v2, item 10 (parts): predict's pickled checkpoint, hidden videos, impossible manifest numbers.

- ``predict`` called a pickled checkpoint "unreadable (UnpicklingError)"; it now gives the refusal
  every other command gives (nothing in the file runs; how to convert a trusted one);
- hidden videos (``.x.mp4``) were skipped without a word; a warning now names them;
- a manifest with NaN, 0 or negative ``fps`` / ``n_frames`` was used as it was; now one line naming
  the manifest, the row and the column.
"""

from __future__ import annotations

import logging

import pytest

from sonotell.errors import InputError
from sonotell.io.ingest import discover
from sonotell.io.manifest import read_manifest
from tests.conftest import write_video
from tests.security.conftest import one_line_error, run_cli
from tests.security.test_item01_checkpoints import evil_checkpoint


def test_predict_refuses_a_pickled_checkpoint_like_every_other_command(tmp_path, moving_frames, capsys):
    marker = tmp_path / "pwned"
    model = evil_checkpoint(tmp_path / "model.pt", marker)
    video = write_video(tmp_path / "scan.mp4", moving_frames, fps=10)
    line = one_line_error(capsys, ["predict", model, video, "--out", tmp_path / "pred"])
    assert "model.pt: refused: the checkpoint holds Python objects" in line
    assert "safeload convert --trust-this-file" in line and "UnpicklingError" not in line
    assert not marker.exists() and not (tmp_path / "pred").exists()
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    line = one_line_error(capsys, ["predict", tmp_path / "junk.pt", video, "--out", tmp_path / "pred"])
    assert line.endswith(
        "junk.pt: unreadable checkpoint (not a PyTorch file: neither torch.save's zip archive nor its legacy format)"
    )


def test_hidden_videos_are_skipped_with_a_warning_naming_them(tmp_path, moving_frames, caplog, capsys):
    d = tmp_path / "scans"
    write_video(d / "seen.mp4", moving_frames, fps=10)
    write_video(d / ".x.mp4", moving_frames, fps=10)
    write_video(d / "sub" / "._y.mp4", moving_frames, fps=10)
    (d / ".notes.txt").write_text("not a video: no warning for it")
    with caplog.at_level(logging.WARNING, logger="sonotell.io.ingest"):
        found = discover(d)
    assert [v.name for v, _ in found] == ["seen.mp4"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "skipped 2 hidden video file(s)" in warnings[0] and ".x.mp4" in warnings[0] and "sub/._y.mp4" in warnings[0]
    assert ".notes.txt" not in warnings[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sonotell.io.ingest"):  # through the command, said once
        run_cli(capsys, ["ingest", d, "--out", tmp_path / "m.csv", "--no-crop", "--workers", "1", "--video-only"])
    assert sum("hidden video" in r.getMessage() for r in caplog.records) == 1


BAD_NUMBERS = [
    ("fps", "nan", "is not a finite number"),
    ("fps", "0", "must be above 0"),
    ("fps", "-25", "must be above 0"),
    ("fps", "inf", "is not a finite number"),
    ("n_frames", "NaN", "is not a finite number"),
    ("n_frames", "0", "must be above 0"),
    ("n_frames", "-3", "must be above 0"),
    ("n_frames", "2.5", "is not a whole number"),
    ("width", "0", "must be above 0"),
    ("audio_duration_s", "-1", "is negative"),
    ("audio_offset_s", "nan", "is not a finite number"),
]


@pytest.mark.parametrize("column, value, problem", BAD_NUMBERS)
def test_a_manifest_with_impossible_numbers_is_one_line_naming_file_row_and_column(
    tmp_path, moving_frames, capsys, column, value, problem
):
    write_video(tmp_path / "a.mp4", moving_frames, fps=10)
    write_video(tmp_path / "b.mp4", moving_frames, fps=10)
    good = {"fps": "10", "n_frames": "20", "width": "80", "audio_duration_s": "2", "audio_offset_s": "0"}
    bad = {**good, column: value}
    header = "scan_id,subject_id,video_path," + ",".join(good)
    rows = [f"a,p1,a.mp4,{','.join(good.values())}", f"b,p2,b.mp4,{','.join(bad.values())}"]
    manifest = tmp_path / "m.csv"
    manifest.write_text("\n".join([header, *rows]) + "\n")
    expected = f"{manifest} row 3: column {column}: {value!r} {problem}"
    with pytest.raises(InputError) as e:
        read_manifest(manifest)
    assert str(e.value) == expected
    line = one_line_error(capsys, ["predict", tmp_path / "model.pt", manifest, "--out", tmp_path / "pred"])
    assert line == f"error: {expected}"
    assert not (tmp_path / "pred").exists()


def test_sane_manifest_numbers_still_read(tmp_path, moving_frames):
    write_video(tmp_path / "a.mp4", moving_frames, fps=10)
    (tmp_path / "m.csv").write_text("scan_id,subject_id,video_path,fps,n_frames\na,p1,a.mp4,29.97,20.0\n")
    scan = read_manifest(tmp_path / "m.csv").scans[0]
    assert (scan.fps, scan.n_frames) == (29.97, 20) and isinstance(scan.n_frames, int)

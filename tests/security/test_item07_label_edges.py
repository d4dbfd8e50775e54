"""Item 7: label never crashes on an empty manifest or when every scan fails; manifests name only media."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sonotell.errors import InputError
from sonotell.io.audio import save_audio
from sonotell.io.manifest import read_manifest
from tests.security.conftest import one_line_error, run_cli
from tests.speech.test_speech_cmds import FAST


def test_header_only_and_empty_manifests_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "m.csv").write_text("scan_id,subject_id,video_path\n")
    with pytest.raises(InputError, match="no scans"):
        read_manifest(tmp_path / "m.csv")
    out = one_line_error(capsys, ["label", str(tmp_path / "m.csv"), "--lexicon", "lung", "--out", str(tmp_path / "l")])
    assert "no scans" in out
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(InputError, match="manifest is empty"):
        read_manifest(tmp_path / "e.csv")


def test_every_scan_failing_is_reported_not_a_crash(tmp_path, capsys):
    sr = 16000
    rows = ["scan_id,subject_id,video_path,audio_path,fps,n_frames"]
    for k in range(2):
        save_audio(tmp_path / f"s{k}.wav", np.zeros(sr, np.float32), sr)  # silent: fails
        (tmp_path / f"s{k}.mp4").write_bytes(b"")
        rows.append(f"s{k},p{k},s{k}.mp4,s{k}.wav,10,10")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    code, output = run_cli(capsys, ["label", tmp_path / "m.csv", "--lexicon", "lung", "--out", tmp_path / "l", *FAST])
    assert code == 1 and "Traceback" not in output and "2 failed" in output, output
    summary = json.loads((tmp_path / "l" / "summary.json").read_text())
    assert summary["n_failed"] == 2
    assert (tmp_path / "l" / "summary.csv").read_text().splitlines()[0].startswith("scan_id,subject_id,status,n_frames")


@pytest.mark.parametrize("video", ["../../../../etc/passwd", "/dev/null", "sub"])
def test_manifest_may_only_name_media_files(tmp_path, video):
    (tmp_path / "sub").mkdir()
    (tmp_path / "m.csv").write_text(f"scan_id,subject_id,video_path\ns1,p,{video}\n")
    with pytest.raises(InputError, match=r"row 2"):
        read_manifest(tmp_path / "m.csv")

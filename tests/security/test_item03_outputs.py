"""Item 3: no command overwrites one of its inputs (symlinks and hard links included)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from sonotell.errors import OutputError
from sonotell.files import refuse_overwriting_inputs
from sonotell.io.audio import save_audio
from tests.conftest import write_video
from tests.security.conftest import one_line_error, run_cli


def test_refuse_overwriting_inputs_resolves_links(tmp_path):
    a = tmp_path / "a.wav"
    a.write_bytes(b"x")
    (tmp_path / "link.wav").symlink_to(a)
    os.link(a, tmp_path / "hard.wav")
    for out in (a, tmp_path / "link.wav", tmp_path / "hard.wav", tmp_path / "sub" / ".." / "a.wav"):
        with pytest.raises(OutputError, match="is an input of this command"):
            refuse_overwriting_inputs([out], [a])
    refuse_overwriting_inputs([tmp_path / "b.json", None], [a, None])  # a new file is fine


def test_transcribe_out_onto_its_recording_is_refused(tmp_path, bursts, capsys):
    wav, sr, _ = bursts
    audio = save_audio(tmp_path / "a.wav", wav, sr)
    before = audio.read_bytes()
    (tmp_path / "alias.wav").symlink_to(audio)
    for out in (audio, tmp_path / "alias.wav"):
        assert "is an input of this command" in one_line_error(
            capsys, ["transcribe", str(audio), "--lexicon", "lung", "--out", str(out)]
        )
    assert audio.read_bytes() == before


def test_ingest_out_onto_a_video_is_refused(tmp_path, moving_frames, tone, capsys):
    wav, sr = tone
    video = write_video(tmp_path / "scans" / "scan.mp4", moving_frames, fps=10)
    save_audio(tmp_path / "scans" / "scan.wav", np.tile(wav, 2)[: 2 * sr], sr)
    before = video.read_bytes()
    assert "is an input of this command" in one_line_error(
        capsys, ["ingest", str(tmp_path / "scans"), "--out", str(video), "--workers", "1"]
    )
    assert video.read_bytes() == before
    code, output = run_cli(
        capsys, ["ingest", tmp_path / "scans", "--out", tmp_path / "scans" / "manifest.csv", "--workers", "1"]
    )
    assert code == 0, output  # a manifest inside the scan folder is the documented use


def test_localise_out_onto_the_scan_is_refused(tmp_path, capsys):
    video = tmp_path / "scan.mp4"
    video.write_bytes(b"precious")
    assert "is an input of this command" in one_line_error(
        capsys, ["localise", str(video), "--checkpoint", str(tmp_path / "c.pt"), "--out", str(video)]
    )
    assert video.read_bytes() == b"precious"


def test_label_never_writes_over_its_manifest(tmp_path, bursts, capsys):
    from tests.speech.test_speech_cmds import FAST, tiny_bench

    bench = tiny_bench(tmp_path / "bench", bursts)
    manifest = bench / "manifest.csv"
    summary_named = bench / "summary.csv"  # a manifest whose name label writes too
    summary_named.write_bytes(manifest.read_bytes())
    before = summary_named.read_bytes()
    assert "is an input of this command" in one_line_error(
        capsys, ["label", str(summary_named), "--lexicon", "abdominal", "--out", str(bench), *FAST]
    )
    assert summary_named.read_bytes() == before

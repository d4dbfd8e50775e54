"""Reliability v2, item 5: `sonotell ingest scans/ --out somedir` (no .csv) writes somedir/manifest.csv.

It used to end in an IsADirectoryError traceback, leaving a folder and a state file behind, and
every rerun crashed the same way. A folder (existing, or a new path without a suffix) now holds
``manifest.csv`` and its state file; a rerun resumes from them.
"""

from __future__ import annotations

import numpy as np
import soundfile as sf

from sonotell.io.ingest import IngestOptions, ingest, manifest_path
from sonotell.io.manifest import read_manifest
from tests.conftest import write_video
from tests.security.conftest import run_cli


def scans(tmp_path, moving_frames, tone):
    wav, sr = tone
    d = tmp_path / "scans"
    for name in ("a", "b"):
        write_video(d / f"{name}.mp4", moving_frames, fps=10)
        sf.write(d / f"{name}.wav", np.tile(wav, 2), sr)
    return d


def test_manifest_path_of_a_folder_new_or_existing(tmp_path):
    (tmp_path / "there").mkdir()
    assert manifest_path(tmp_path / "there") == tmp_path / "there" / "manifest.csv"
    assert manifest_path(tmp_path / "new") == tmp_path / "new" / "manifest.csv"
    assert manifest_path(tmp_path / "m.csv") == tmp_path / "m.csv"
    (tmp_path / "x.csv").mkdir()  # an existing folder, whatever its name
    assert manifest_path(tmp_path / "x.csv") == tmp_path / "x.csv" / "manifest.csv"


def test_ingest_out_a_folder_writes_its_manifest_and_a_rerun_resumes(tmp_path, moving_frames, tone, capsys):
    folder = scans(tmp_path, moving_frames, tone)
    for out in (tmp_path / "somedir", tmp_path / "existing"):
        if out.name == "existing":
            out.mkdir()
        args = ["ingest", folder, "--out", out, "--no-crop", "--workers", "1"]
        code, output = run_cli(capsys, args)
        assert code == 0 and "Traceback" not in output, output
        manifest = read_manifest(out / "manifest.csv")
        assert [s.scan_id for s in manifest.scans] == ["a", "b"]
        assert {p.name for p in out.iterdir()} >= {"manifest.csv", "manifest.csv.state.json"}
        first = (out / "manifest.csv").read_bytes()
        code, output = run_cli(capsys, args)  # the rerun reuses both scans and writes the same manifest
        assert code == 0 and "Traceback" not in output, output
        assert (out / "manifest.csv").read_bytes() == first
        assert ingest(folder, out, options=IngestOptions(detect_crop=False), workers=1).reused == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing", "scans", "somedir"]  # nothing beside them

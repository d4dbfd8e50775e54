"""Reliability v2, item 9: `ingest --cache` on a full disk is one line and exit 2, nothing half-written.

It printed ``OSError: [Errno 28]`` per scan as "not cached" and exited 0 with nothing cached. The
writer is made to fail here as a full disk does (ENOSPC after some bytes are on disk).
"""

from __future__ import annotations

import errno

import numpy as np
import pytest
import soundfile as sf

from sonotell.errors import OutputError
from sonotell.io import cache as cache_mod
from sonotell.io.cache import FrameCache
from sonotell.io.manifest import read_manifest
from tests.conftest import write_video
from tests.security.conftest import one_line_error


@pytest.fixture
def folder(tmp_path, moving_frames, tone):
    wav, sr = tone
    d = tmp_path / "scans"
    for name in ("a", "b"):
        write_video(d / f"{name}.mp4", moving_frames, fps=10)
        sf.write(d / f"{name}.wav", np.tile(wav, 2), sr)
    return d


def _full_after_some_bytes(scan, folder, *args, **kwargs):
    """The frame writer puts a few bytes on disk, then the disk is full."""
    with open(folder / "frames.u8", "ab") as f:
        f.write(b"\0" * 1000)
    raise OSError(errno.ENOSPC, "No space left on device", str(folder / "frames.u8"))


@pytest.fixture
def disk_fills_up(monkeypatch):
    monkeypatch.setattr(cache_mod, "_decode_frames", _full_after_some_bytes)


def test_full_disk_during_ingest_cache_is_one_line_exit_2_and_nothing_half_written(
    tmp_path, folder, disk_fills_up, capsys
):
    cache = tmp_path / "cache"
    args = ["ingest", folder, "--out", tmp_path / "m.csv", "--cache", cache, "--no-crop", "--workers", "1"]
    line = one_line_error(capsys, args)
    assert "no space left on device" in line and "cache" in line
    assert [s.scan_id for s in read_manifest(tmp_path / "m.csv").scans] == ["a", "b"]  # the manifest is whole
    assert not list(cache.glob("*.partial")) and not [p for p in cache.iterdir() if p.is_dir()]


def test_full_disk_keeps_a_finished_entry_and_removes_the_half_built_one(tmp_path, folder, monkeypatch):
    scan = read_manifest_scans(tmp_path, folder)[0]
    built = FrameCache.build(scan, tmp_path / "cache", size=(16, 16), roi=None, audio_rate_hz=None)
    before = (built.root / "frames.u8").read_bytes()
    (folder / "a.mp4").touch()  # sources changed: a rebuild starts
    monkeypatch.setattr(cache_mod, "_decode_frames", _full_after_some_bytes)
    with pytest.raises(OutputError, match=r"a_16x16: could not be written: no space left on device"):
        FrameCache.build(scan, tmp_path / "cache", size=(16, 16), roi=None, audio_rate_hz=None)
    assert not (tmp_path / "cache" / "a_16x16.partial").exists()
    assert (built.root / "frames.u8").read_bytes() == before  # the earlier, finished entry is untouched


def read_manifest_scans(tmp_path, folder):
    from sonotell.io.ingest import IngestOptions, ingest

    return ingest(folder, tmp_path / "m.csv", options=IngestOptions(detect_crop=False), workers=1).scans

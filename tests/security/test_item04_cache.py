"""Item 4: an interrupted cache build never corrupts the cache; a broken entry is rebuilt with a warning."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import soundfile as sf

from sonotell.io import video as video_mod
from sonotell.io.cache import FrameCache
from sonotell.io.video import read_frames
from sonotell.types import Scan
from tests.conftest import write_video


@pytest.fixture
def scan(tmp_path, moving_frames, tone):
    video = write_video(tmp_path / "s.mp4", moving_frames, fps=10)
    wav, sr = tone
    sf.write(tmp_path / "s.wav", np.concatenate([wav, wav])[: 2 * sr], sr)
    return Scan("s", "p", video, tmp_path / "s.wav")


def test_build_killed_before_the_first_checkpoint_is_restarted_cleanly(tmp_path, scan, monkeypatch):
    real = video_mod.iter_frames

    def dies_after_five(path, size=None):
        for i, frame in enumerate(real(path, size)):
            if i == 5:
                raise KeyboardInterrupt  # kill -9 stand-in: nothing after this point runs
            yield frame

    monkeypatch.setattr(video_mod, "iter_frames", dies_after_five)
    with pytest.raises(KeyboardInterrupt):
        FrameCache.build(scan, tmp_path / "c", size=(16, 16), roi=None, audio_rate_hz=None)
    partial = tmp_path / "c" / "s_16x16.partial" / "frames.u8"
    assert partial.stat().st_size == 5 * 16 * 16  # the killed build's leftovers, before any checkpoint
    monkeypatch.setattr(video_mod, "iter_frames", real)
    cache = FrameCache.build(scan, tmp_path / "c", size=(16, 16), roi=None, audio_rate_hz=None)
    assert cache.n_frames == 20 and (cache.root / "frames.u8").stat().st_size == 20 * 16 * 16
    direct = FrameCache.build(scan, tmp_path / "fresh", size=(16, 16), roi=None, audio_rate_hz=None)
    np.testing.assert_array_equal(cache.frames(0, 20), direct.frames(0, 20))
    assert len(read_frames(scan.video_path)) == 20


def test_a_broken_cache_entry_is_rebuilt_with_a_warning(tmp_path, scan, caplog):
    cache = FrameCache.build(scan, tmp_path / "c", size=(16, 16), roi=None, audio_rate_hz=None)
    good = cache.frames(0, 20)
    with open(cache.root / "frames.u8", "ab") as f:
        f.write(b"\0" * 100)  # damaged: wrong size
    with caplog.at_level(logging.WARNING, logger="sonotell"):
        rebuilt = FrameCache.build(scan, tmp_path / "c", size=(16, 16), roi=None, audio_rate_hz=None)
    assert "rebuilding this cache entry" in caplog.text
    np.testing.assert_array_equal(rebuilt.frames(0, 20), good)
    (rebuilt.root / "meta.json").write_text("{not json")
    again = FrameCache.build(scan, tmp_path / "c", size=(16, 16), roi=None, audio_rate_hz=None)
    np.testing.assert_array_equal(again.frames(0, 20), good)

import json

import numpy as np
import pytest
import soundfile as sf

from sonotell.errors import InputError
from sonotell.io import cache as cache_mod
from sonotell.io.cache import FrameCache
from sonotell.io.video import read_frames
from sonotell.types import Scan
from tests.conftest import write_video


@pytest.fixture
def scan(tmp_path, moving_frames, tone):
    video = write_video(tmp_path / "s.mp4", moving_frames, fps=10)
    wav, sr = tone
    audio = tmp_path / "s.wav"
    sf.write(audio, np.concatenate([wav, wav])[: 2 * sr], sr)
    return Scan("s", "p", video, audio, audio_offset_s=0.25)


def test_build_crops_resizes_and_matches_direct_decoding(tmp_path, scan):
    cache = FrameCache.build(scan, tmp_path / "c", size=(28, 40), audio_rate_hz=8000)
    assert cache.root == tmp_path / "c" / "s_28x40"
    assert (cache.n_frames, cache.size, cache.fps, cache.roi) == (20, (28, 40), 10.0, (0, 8, 80, 64))
    direct = np.stack(
        [
            np.asarray(__import__("PIL.Image", fromlist=["Image"]).fromarray(f[8:, :]).resize((40, 28), 2))
            for f in read_frames(scan.video_path)
        ]
    )
    np.testing.assert_array_equal(cache.frames(0, 20), direct)
    np.testing.assert_array_equal(cache.frames(3, 11, stride=4), direct[3:11:4])
    np.testing.assert_array_equal(cache.take([-2, 5, 99]), direct[[0, 5, 19]])
    assert cache.audio().dtype == np.float32 and len(cache.audio()) == 16000 and cache.audio_offset_s == 0.25
    reopened = FrameCache.open(cache.root)
    np.testing.assert_array_equal(reopened.frames(0, 20), direct)
    assert not list((tmp_path / "c").glob("*.partial"))


def test_manual_roi_override_and_no_crop(tmp_path, scan):
    from dataclasses import replace

    manual = FrameCache.build(replace(scan, roi=(10, 10, 50, 40)), tmp_path / "c", size=None, audio_rate_hz=None)
    assert manual.size == (30, 40) and manual.roi == (10, 10, 50, 40)
    full = FrameCache.build(scan, tmp_path / "d", size=None, roi=None, audio_rate_hz=None)
    assert full.size == (64, 80) and full.roi is None
    with pytest.raises(InputError, match="holds no audio"):
        full.audio()


def test_up_to_date_cache_is_reused_and_changed_source_rebuilt(tmp_path, scan, moving_frames):
    first = FrameCache.build(scan, tmp_path / "c", size=(16, 16), audio_rate_hz=None)
    stamp = (first.root / "frames.u8").stat().st_mtime_ns
    again = FrameCache.build(scan, tmp_path / "c", size=(16, 16), audio_rate_hz=None)
    assert (again.root / "frames.u8").stat().st_mtime_ns == stamp
    write_video(scan.video_path, moving_frames[:10], fps=10)
    assert FrameCache.build(scan, tmp_path / "c", size=(16, 16), audio_rate_hz=None).n_frames == 10


def test_interrupted_build_resumes_after_checkpoint(tmp_path, scan, monkeypatch):
    monkeypatch.setattr(cache_mod, "_CHECKPOINT_EVERY", 4)
    calls = {"n": 0}

    import sonotell.io.video as video

    original = video._resize

    def flaky(frame, size):
        if size is None:  # decoding itself (ROI sampling), not the cache's resize
            return original(frame, size)
        calls["n"] += 1
        if calls["n"] == 11 and not calls.get("interrupted"):
            calls["interrupted"] = True
            raise KeyboardInterrupt  # the user pressed ctrl-c mid-build
        return original(frame, size)

    monkeypatch.setattr(video, "_resize", flaky)
    with pytest.raises(KeyboardInterrupt):
        FrameCache.build(scan, tmp_path / "c", size=(16, 16), audio_rate_hz=None)
    partial = tmp_path / "c" / "s_16x16.partial"
    assert json.loads((partial / "partial.json").read_text())["frames_done"] == 8
    with pytest.raises(InputError, match="not a frame cache"):
        FrameCache.open(tmp_path / "c" / "s_16x16")
    calls["n"] = 0
    cache = FrameCache.build(scan, tmp_path / "c", size=(16, 16), audio_rate_hz=None)
    assert calls["n"] == 12  # only frames 9..20 were resized again
    monkeypatch.setattr(video, "_resize", original)
    fresh = FrameCache.build(scan, tmp_path / "fresh", size=(16, 16), audio_rate_hz=None)
    np.testing.assert_array_equal(cache.frames(0, 20), fresh.frames(0, 20))


def test_truncated_cache_is_refused(tmp_path, scan):
    cache = FrameCache.build(scan, tmp_path / "c", size=(16, 16), audio_rate_hz=None)
    with open(cache.root / "frames.u8", "r+b") as f:
        f.truncate(100)
    with pytest.raises(InputError, match="frames.u8: frame cache is 100 bytes, expected 5120"):
        FrameCache.open(cache.root)


def test_concurrent_builders_share_one_cache(tmp_path, scan):
    """Two builders (DDP ranks, say) on the same cache: one decodes, the other waits and reuses it."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(lambda _: FrameCache.build(scan, tmp_path / "c", size=(16, 16), audio_rate_hz=None), range(2))
    assert a.root == b.root and a.meta == b.meta
    np.testing.assert_array_equal(a.frames(0, 20), b.frames(0, 20))
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["s_16x16", "s_16x16.lock"]

"""Browser previews: H.264 + the narration as AAC in one MP4, on the video's clock, cached and reused."""

from __future__ import annotations

import os

import numpy as np
import pytest

from sonotell.errors import InputError
from sonotell.io.audio import save_audio
from sonotell.io.preview import AUDIO_RATE_HZ, build_previews, cached_preview, ensure_preview, preview_path
from sonotell.types import Scan
from tests.review.media_kit import sweep, write_scan_video

FPS, N = 10, 30  # 3 s


def _scan(tmp_path, kind: str, offset_s: float = 0.0) -> Scan:
    video = write_scan_video(kind, tmp_path, sweep(N, 60, 80), FPS)
    sr = 16000
    t = np.arange(3 * sr) / sr
    audio = save_audio(tmp_path / "narration.wav", (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr)
    return Scan("s1", "p1", video, audio, offset_s, float(FPS), N, 80, 60, sr, 3.0)


def _decode(path):
    import av

    with av.open(str(path)) as c:
        codecs = sorted(s.codec_context.name for s in c.streams)
        times = [float(f.pts * f.time_base) for f in c.decode(video=0)]
    with av.open(str(path)) as c:
        chunks = [f.to_ndarray().reshape(-1) for f in c.decode(audio=0)]
        sr = c.streams.audio[0].rate
    return codecs, times, np.concatenate(chunks), sr


@pytest.mark.parametrize("kind", ["mpeg4", "gif", "dicom"])
def test_preview_is_h264_and_aac_on_the_video_clock(tmp_path, kind):
    scan = _scan(tmp_path, kind)
    path = ensure_preview(scan, tmp_path / "cache")
    assert path == tmp_path / "cache" / "previews" / "s1.mp4"
    codecs, times, wav, sr = _decode(path)
    assert codecs == ["aac", "h264"] and sr == AUDIO_RATE_HZ
    assert len(times) == N and np.allclose(times, np.arange(N) / FPS, atol=2e-3)  # frame i at i / fps
    # the narration fills the video's 3 s (AAC adds a frame of priming at most)
    assert abs(len(wav) / sr - 3.0) < 0.1
    assert np.sqrt(np.mean(wav[sr : 2 * sr] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.1)


def test_audio_offset_shifts_the_narration_onto_the_video_clock(tmp_path):
    # audio time = video time - offset: with offset 1 s the narration starts 1 s into the video
    scan = _scan(tmp_path, "mpeg4", offset_s=1.0)
    _, _, wav, sr = _decode(ensure_preview(scan, tmp_path / "cache"))
    rms = lambda a, b: float(np.sqrt(np.mean(wav[int(a * sr) : int(b * sr)] ** 2)))  # noqa: E731
    assert rms(0.1, 0.9) < 0.01 and rms(1.2, 2.8) > 0.3


def test_preview_is_reused_until_a_source_file_changes(tmp_path):
    scan = _scan(tmp_path, "mpeg4")
    cache = tmp_path / "cache"
    assert cached_preview(scan, cache) is None
    path = ensure_preview(scan, cache)
    stamp = path.stat().st_mtime_ns
    assert ensure_preview(scan, cache) == path and path.stat().st_mtime_ns == stamp  # reused, not rebuilt
    st = scan.audio_path.stat()
    os.utime(scan.audio_path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the narration was replaced
    assert cached_preview(scan, cache) is None
    ensure_preview(scan, cache)
    assert cached_preview(scan, cache) == path


def test_undecodable_video_is_an_input_error_naming_it_and_leaves_no_preview(tmp_path):
    scan = _scan(tmp_path, "mpeg4")
    scan.video_path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)
    with pytest.raises(InputError, match=str(scan.video_path)):
        ensure_preview(scan, tmp_path / "cache")
    assert not preview_path(scan, tmp_path / "cache").exists()
    assert build_previews([scan], tmp_path / "cache")[0].startswith(str(scan.video_path))


def test_a_negative_offset_drops_the_narration_said_before_the_video(tmp_path):
    # the tone is at narration time 1.5-2.0 s; offset -1 s puts it at video time 0.5-1.0 s
    scan = _scan(tmp_path, "mpeg4", offset_s=-1.0)
    sr = 16000
    wav = np.zeros(3 * sr, np.float32)
    wav[int(1.5 * sr) : 2 * sr] = 0.5
    save_audio(scan.audio_path, wav, sr)
    _, _, out, rate = _decode(ensure_preview(scan, tmp_path / "cache"))
    level = [float(np.abs(out[int(t * rate) : int((t + 0.1) * rate)]).mean()) for t in (0.2, 0.7, 1.7, 2.5)]
    assert level[1] > 0.3 and max(level[0], level[2], level[3]) < 0.05
    assert abs(len(out) / rate - 3.0) < 0.1  # as long as the video, silence after the narration ends

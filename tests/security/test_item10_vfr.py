"""Item 10: variable-frame-rate video: every frame time comes from the presentation timestamps."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from sonotell.io.cache import FrameCache
from sonotell.io.video import frame_times, is_variable_rate, probe_video, variable_frame_times
from sonotell.speech.align import align_states
from sonotell.speech.pipeline import _variable_frame_times
from sonotell.types import Scan, TermEvent
from tests.conftest import write_video

TIMES_MS = [0, 40, 80, 120, 400, 800, 1200, 1240, 1280, 1320]


def write_vfr_video(path, times_ms=TIMES_MS, size=32):
    """MPEG-4 with explicit millisecond timestamps: frame i (grey level 20 i) shown at times_ms[i]."""
    import av

    with av.open(str(path), "w") as c:
        vs = c.add_stream("mpeg4", rate=25)
        vs.time_base = vs.codec_context.time_base = Fraction(1, 1000)
        vs.width = vs.height = size
        vs.pix_fmt = "yuv420p"
        for i, t in enumerate(times_ms):
            frame = av.VideoFrame.from_ndarray(np.full((size, size), 20 * i, np.uint8), format="gray").reformat(
                format="yuv420p"
            )
            frame.pts, frame.time_base = t, Fraction(1, 1000)
            for packet in vs.encode(frame):
                c.mux(packet)
        for packet in vs.encode():
            c.mux(packet)
    return path


@pytest.fixture
def vfr(tmp_path):
    return write_vfr_video(tmp_path / "vfr.mp4")


def test_frame_times_are_the_presentation_timestamps(vfr, tmp_path, moving_frames):
    np.testing.assert_allclose(frame_times(vfr), np.array(TIMES_MS) / 1000, atol=1e-6)
    assert is_variable_rate(frame_times(vfr)) and variable_frame_times(vfr) is not None
    cfr = write_video(tmp_path / "cfr.mp4", moving_frames, fps=10)
    assert not is_variable_rate(frame_times(cfr)) and variable_frame_times(cfr) is None
    np.testing.assert_allclose(frame_times(cfr), np.arange(20) / 10, atol=1e-6)


def test_labels_use_the_timestamps(vfr, caplog):
    info = probe_video(vfr)
    scan = Scan("v", "p", vfr, fps=info.fps, n_frames=info.n_frames)
    times = _variable_frame_times(scan)
    assert "variable frame rate" in caplog.text
    event = TermEvent("liver", "liver", 0.75, 0.85)  # said while frame 5 (0.8 s) is shown
    labels = align_states(
        [event], ["liver"], fps=info.fps, n_frames=info.n_frames, config={"before_s": 0, "after_s": 0}, times=times
    )
    assert [int(i) for i in labels.frame_index[labels.state[:, 0] == 1]] == [5]
    assert labels.time_s[5] == pytest.approx(0.8)


def test_frame_cache_maps_time_to_the_frame_shown(vfr, tmp_path):
    scan = Scan("v", "p", vfr)
    cache = FrameCache.build(scan, tmp_path / "c", size=(8, 8), roi=None, audio_rate_hz=None)
    assert cache.meta["variable_frame_rate"] is True
    assert cache.index_at(1.25) == 7 and cache.index_at(0.5) == 4 and cache.index_at(99) == 9
    assert cache.time_of(5) == pytest.approx(0.8)
    assert int(cache.frames(7, 8)[0].mean()) == pytest.approx(140, abs=3)  # frame 7 is grey level 140

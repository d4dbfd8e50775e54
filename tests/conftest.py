"""Fixtures shared by every test folder: tiny synthetic inputs made on the fly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def write_video(
    path: Path, frames: np.ndarray, fps: float = 25.0, audio: np.ndarray | None = None, sample_rate_hz: int = 16000
) -> Path:
    """Encode (T, H, W) uint8 frames as MPEG-4 Part 2 (container by suffix), with an optional AAC track.

    The same bit-exact settings as ``sonotell.bench.build.write_video``: libx264's output varied
    from process to process, which made pixel-exact checks (e.g. the detected ROI) flaky.
    """
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        vs = c.add_stream("mpeg4", rate=int(fps))
        vs.codec_context.thread_count = 1
        vs.codec_context.flags |= av.codec.context.Flags.qscale
        vs.codec_context.global_quality = 2 * 118  # qscale 2 (FF_QP2LAMBDA)
        vs.codec_context.qmin = vs.codec_context.qmax = 2
        vs.codec_context.flags |= getattr(av.codec.context.Flags, "bitexact", 0)
        vs.width, vs.height, vs.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        as_ = None
        if audio is not None:
            as_ = c.add_stream("aac", rate=sample_rate_hz)
            as_.layout = "mono"
        for f in frames:
            rgb = np.repeat(f[..., None], 3, axis=2)
            for pkt in vs.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                c.mux(pkt)
        for pkt in vs.encode():
            c.mux(pkt)
        if as_ is not None:
            block = 1024
            pcm = audio.astype(np.float32)
            for i in range(0, len(pcm), block):
                chunk = pcm[i : i + block]
                af = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
                af.sample_rate = sample_rate_hz
                af.pts = i
                for pkt in as_.encode(af):
                    c.mux(pkt)
            for pkt in as_.encode():
                c.mux(pkt)
    return path


@pytest.fixture
def moving_frames() -> np.ndarray:
    """20 frames 64x80: a static bright border (overlay) and a moving blob inside."""
    rng = np.random.default_rng(0)
    t, h, w = 20, 64, 80
    frames = np.zeros((t, h, w), np.uint8)
    frames[:, :6, :] = 200  # static header bar
    yy, xx = np.mgrid[:h, :w]
    for i in range(t):
        cy, cx = 30 + 5 * np.sin(i / 3), 40 + 10 * np.cos(i / 4)
        blob = ((yy - cy) ** 2 + (xx - cx) ** 2 < 100).astype(np.float32) * 180
        frames[i, 8:, :] = np.clip(blob[8:] + rng.normal(60, 20, (h - 8, w)), 0, 255).astype(np.uint8)
    return frames


@pytest.fixture
def tone() -> tuple[np.ndarray, int]:
    """1 s of a 440 Hz tone at 16 kHz."""
    sr = 16000
    t = np.arange(sr) / sr
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip("../shared/data not present")
    return SHARED_DATA


@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory):
    """Shared by the recipe and CLI tests. A synthetic benchmark of 2 subjects x one 4 s scan (made from nothing,
    ~6 s)."""
    from sonotell.bench import build_benchmark
    from tests.methods.ssl_helpers import TINY_BENCH

    return build_benchmark("synthetic", tmp_path_factory.mktemp("bench") / "tiny", overrides=TINY_BENCH, seed=3)


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray instance per test session: loopback only, 2 CPUs, no dashboard.

    Its workers import ``tests.*`` (task helpers) and this checkout's ``src``.
    """
    import os

    ray = pytest.importorskip("ray", reason="Ray is part of the test install (pip install -e '.[dev]')")
    root = Path(__file__).resolve().parents[1]
    path = os.pathsep.join([str(root), str(root / "src"), os.environ.get("PYTHONPATH", "")])
    for attempt in range(3):  # Ray gives its raylet 30 s to start: on a loaded machine that can time out
        try:
            ray.init(
                num_cpus=2,
                include_dashboard=False,
                _node_ip_address="127.0.0.1",
                log_to_driver=False,
                configure_logging=False,
                runtime_env={"env_vars": {"PYTHONPATH": path}},
            )
            break
        except Exception:
            ray.shutdown()
            if attempt == 2:
                raise
    yield ray
    ray.shutdown()

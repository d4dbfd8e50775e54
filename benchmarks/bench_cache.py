"""Benchmark: clip sampling from the frame cache vs decoding the same clips from the video with PyAV.

One run, one synthetic narrated scan (made by ``bench_ingest.write_scan``; no ../shared),
the same clip list for both paths. A clip = 16 frames at stride 2 around a random time t,
cropped to the sector and resized to 128x128, plus the audio window [t - 0.5, t + 0.5] s at
16 kHz. The direct path does what a loader without a cache must do per sample: open the
video, seek to the keyframe before the clip, decode up to its last frame, crop + resize, and
read the audio window from the wav. Both paths' frames are compared (they must agree).

A second table asks whether loading is ever the bottleneck of a CPU training step: the time
to assemble a batch of cached clips (8 frames, 64x64) against one forward + backward step of
the ``video_r2plus1d`` ``small`` model on that batch (1 thread each).

    python benchmarks/bench_cache.py            # 2-minute 480x640 scan, 40 direct clips
    python benchmarks/bench_cache.py --quick    # 30-second scan, 12 direct clips

Prints tables and writes JSON (default bench_out/bench_cache.json).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from bench_ingest import make_scan


def direct_clip(
    video: Path,
    wav: Path,
    indices: np.ndarray,
    fps: float,
    roi,
    size,
    t: float,
    before_s: float,
    after_s: float,
    sample_rate_hz: int,
):
    """Decode one clip straight from the compressed video (seek + decode) and the wav."""
    import av
    import soundfile as sf

    from sonotell.io.crop import crop
    from sonotell.io.video import _resize

    wanted = set(int(i) for i in indices)
    first, last = int(indices.min()), int(indices.max())
    got: dict[int, np.ndarray] = {}
    with av.open(str(video)) as c:
        vs = c.streams.video[0]
        vs.thread_type = "AUTO"
        c.seek(int(first / fps / vs.time_base), stream=vs, backward=True)
        for frame in c.decode(vs):
            i = int(round(frame.time * fps))
            if i in wanted:
                got[i] = _resize(np.ascontiguousarray(crop(frame.to_ndarray(format="gray"), roi)), size)
            if i >= last:
                break
    frames = np.stack([got[int(i)] for i in indices]).astype(np.float32) / 255.0
    n = int(round((before_s + after_s) * sample_rate_hz))
    start = int(round((t - before_s) * sample_rate_hz))
    info = sf.info(str(wav))
    assert info.samplerate == sample_rate_hz
    lo, hi = max(0, start), min(info.frames, start + n)
    audio = np.zeros(n, np.float32)
    if hi > lo:
        audio[lo - start : hi - start] = sf.read(str(wav), start=lo, stop=hi, dtype="float32")[0]
    return frames, audio


def keyframe_interval(video: Path) -> float:
    """Mean frames between keyframes (demuxing only): what a seek has to decode through."""
    import av

    with av.open(str(video)) as c:
        flags = [p.is_keyframe for p in c.demux(c.streams.video[0]) if p.size]
    return len(flags) / max(1, sum(flags))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration-s", type=float, default=120.0)
    ap.add_argument("--quick", action="store_true", help="30-second scan, fewer clips")
    ap.add_argument(
        "--clips", type=int, default=40, help="clips decoded directly (the cache samples the same ones, repeated)"
    )
    ap.add_argument("--batch", type=int, default=16, help="batch size of the loading-vs-training-step comparison")
    ap.add_argument("--work", type=Path, default=Path("bench_out/cache_work"))
    ap.add_argument("--out", type=Path, default=Path("bench_out/bench_cache.json"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    duration_s, n_clips = (30.0, 12) if args.quick else (args.duration_s, args.clips)

    from sonotell.data.sampler import ClipSampler
    from sonotell.files import write_json
    from sonotell.io.cache import FrameCache
    from sonotell.io.ingest import ingest
    from sonotell.models import create_model

    folder = make_scan(args.work, duration_s, 25, 480, 640, args.seed)
    scan = ingest(folder, args.work / "manifest.csv", workers=1).scans[0]
    shutil.rmtree(args.work / "cache", ignore_errors=True)
    cache = FrameCache.build(scan, args.work / "cache", size=(128, 128))
    sampler = ClipSampler(
        cache, n_frames=16, frame_stride=2, audio_before_s=0.5, audio_after_s=0.5, sample_rate_hz=16000
    )
    rng = np.random.default_rng(args.seed)
    times = rng.uniform(0, duration_s, n_clips)

    t0 = time.perf_counter()
    direct = [
        direct_clip(
            scan.video_path,
            scan.audio_path,
            sampler.frame_indices(t),
            cache.fps,
            cache.roi,
            cache.size,
            t,
            0.5,
            0.5,
            16000,
        )
        for t in times
    ]
    t_direct = time.perf_counter() - t0

    repeats = max(1, 2000 // n_clips)
    t0 = time.perf_counter()
    for _ in range(repeats):
        cached = [sampler.sample(t) for t in times]
    t_cached = time.perf_counter() - t0
    max_frame_diff = max(float(np.abs(c.frames - d[0]).max()) for c, d in zip(cached, direct))
    max_audio_diff = max(float(np.abs(c.audio - d[1]).max()) for c, d in zip(cached, direct))

    direct_rate = n_clips / t_direct
    cached_rate = n_clips * repeats / t_cached
    gop = keyframe_interval(scan.video_path)
    print(
        f"\nscan: {duration_s:.0f} s, {cache.n_frames} frames 640x480 H.264 (a keyframe every {gop:.0f} frames); "
        "clip = 16 frames stride 2 at 128x128 + 1 s audio"
    )
    print(f"{'path':<34} {'clips':>6} {'seconds':>8} {'clips/s':>9}")
    print(f"{'PyAV seek + decode per clip':<34} {n_clips:>6} {t_direct:>8.2f} {direct_rate:>9.1f}")
    print(f"{'frame cache (memmap) sampler':<34} {n_clips * repeats:>6} {t_cached:>8.2f} {cached_rate:>9.1f}")
    speedup = cached_rate / direct_rate
    print(
        f"speed-up {speedup:.0f}x (goal >= 20x: {'met' if speedup >= 20 else 'NOT met'}); "
        f"max |difference| frames {max_frame_diff:.4f}, audio {max_audio_diff:.2e}"
    )

    # --- is loading ever the bottleneck of a CPU training step?
    small = FrameCache.build(scan, args.work / "cache", size=(64, 64))
    batch_sampler = ClipSampler(small, n_frames=8, frame_stride=2, audio_before_s=0.5, audio_after_s=0.5)
    model = create_model("video_r2plus1d", "small")
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    batch_times = rng.uniform(0, duration_s, (5, args.batch))
    load_s, step_s = [], []
    for row in batch_times:
        t0 = time.perf_counter()
        frames = torch.from_numpy(np.stack([batch_sampler.sample(t).frames for t in row]))
        load_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        out = model(frames)
        loss = out.float().pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        step_s.append(time.perf_counter() - t0)
    load, step = float(np.median(load_s)), float(np.median(step_s))
    print(
        f"\nbatch of {args.batch} clips (8 frames 64x64 + audio): load {load * 1000:.1f} ms "
        f"vs video_r2plus1d/small train step {step * 1000:.0f} ms (1 thread): "
        f"loading is {100 * load / step:.1f}% of a step"
    )

    write_json(
        args.out,
        {
            "benchmark": "cache",
            "duration_s": duration_s,
            "keyframe_interval": gop,
            "clips_direct": n_clips,
            "clips_cached": n_clips * repeats,
            "direct_clips_per_s": direct_rate,
            "cached_clips_per_s": cached_rate,
            "speedup": speedup,
            "goal_met": speedup >= 20,
            "max_frame_diff": max_frame_diff,
            "max_audio_diff": max_audio_diff,
            "batch": args.batch,
            "batch_load_s": load,
            "train_step_s": step,
            "load_fraction_of_step": load / step,
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg()[0],
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

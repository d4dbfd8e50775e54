"""Benchmark: ingest + frame cache of a synthetic 10-minute, 25 fps narrated scan (goal: faster than real time).

The scan is made here, from nothing (no ../shared): a fan-shaped sector of speckle that
drifts as the probe moves, on a black screen with a static text bar and a depth ruler (the
overlay sector cropping must remove), and a speech-like narration track (voiced bursts with
a wandering pitch and syllable-rate envelope, between pauses) in a wav beside it. Generating
it is not timed; timed are ``ingest`` (decode + count + sector detection + audio checks) and
``FrameCache.build`` (decode, crop, resize, write; audio resampled to 16 kHz).

    python benchmarks/bench_ingest.py            # 10 min at 480x640 (generation ~3 min, cached in --work)
    python benchmarks/bench_ingest.py --quick    # 1 min

Prints a table and writes JSON (default bench_out/bench_ingest.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np


def sector_mask(height: int, width: int, top: int = 40) -> np.ndarray:
    """Boolean fan: apex above the image top centre, 70 degrees wide, below the text bar."""
    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    apex_y, apex_x = top - 60.0, width / 2
    r = np.hypot(yy - apex_y, xx - apex_x)
    angle = np.degrees(np.arctan2(xx - apex_x, yy - apex_y))
    return (np.abs(angle) < 35) & (r > 70) & (r < height - apex_y - 10) & (yy >= top)


def synthetic_frames(n_frames: int, height: int = 240, width: int = 320, seed: int = 0):
    """Yield (H, W) uint8 frames; the sector's bounding box is returned by ``sector_box``."""
    rng = np.random.default_rng(seed)
    from scipy import ndimage

    tex = ndimage.gaussian_filter(rng.random((height * 2, width * 2), np.float32), 1.2)
    tex = (tex - tex.min()) / (tex.max() - tex.min())
    organs = ndimage.gaussian_filter((rng.random((height * 2, width * 2)) > 0.9992).astype(np.float32), 18)
    tex = np.clip(tex * 0.7 + organs / max(organs.max(), 1e-6) * 0.6, 0, 1)
    mask = sector_mask(height, width)
    depth_gain = np.linspace(1.0, 0.55, height, dtype=np.float32)[:, None]
    flicker = [rng.normal(0, 6, (height, width)).astype(np.float32) for _ in range(7)]
    overlay = np.zeros((height, width), np.uint8)
    overlay[4:18, 8 : width // 2] = 180  # "text" bar
    overlay[4:18, 8 : width // 2 : 6] = 40
    overlay[40 : height - 10 : 12, width - 14 : width - 6] = 220  # depth ruler ticks
    for i in range(n_frames):
        oy = int(height / 2 + height / 2 * np.sin(i / 97.0))
        ox = int(width / 2 + width / 2 * np.sin(i / 151.0 + 1))
        img = tex[oy : oy + height, ox : ox + width] * 235 * depth_gain + flicker[i % 7]
        frame = np.where(mask, np.clip(img, 0, 255), 0).astype(np.uint8)
        yield np.maximum(frame, overlay)


def sector_box(height: int = 240, width: int = 320) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(sector_mask(height, width))
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def speech_like_audio(duration_s: float, sample_rate_hz: int = 16000, seed: int = 0) -> np.ndarray:
    """Voiced bursts of 0.3-2 s with pauses, at about -20 dBFS."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * sample_rate_hz)
    out = rng.normal(0, 0.003, n).astype(np.float32)
    t = 0.0
    while t < duration_s:
        t += rng.uniform(0.3, 1.5)
        dur = rng.uniform(0.3, 2.0)
        a, b = int(t * sample_rate_hz), min(n, int((t + dur) * sample_rate_hz))
        if a >= b:
            break
        tt = np.arange(b - a) / sample_rate_hz
        f0 = rng.uniform(100, 220) * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * tt))
        phase = 2 * np.pi * np.cumsum(f0) / sample_rate_hz
        voiced = sum(np.sin(k * phase) / k for k in range(1, 8))
        envelope = 0.5 * (1 - np.cos(2 * np.pi * 4.0 * tt)) * np.hanning(b - a)
        out[a:b] += (0.08 * voiced * envelope).astype(np.float32)
        t += dur
    return out


def write_scan(
    video_path: Path,
    audio_path: Path | None,
    duration_s: float,
    fps: int = 25,
    height: int = 240,
    width: int = 320,
    seed: int = 0,
    sample_rate_hz: int = 16000,
) -> None:
    """Encode the synthetic scan as H.264 mp4 (+ a 16 kHz wav beside it when ``audio_path``)."""
    import av

    from sonotell.io.audio import save_audio

    n_frames = int(round(duration_s * fps))
    video_path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(video_path), "w") as c:
        vs = c.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "23"})
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        for f in synthetic_frames(n_frames, height, width, seed):
            for pkt in vs.encode(av.VideoFrame.from_ndarray(f, format="gray")):
                c.mux(pkt)
        for pkt in vs.encode():
            c.mux(pkt)
    if audio_path is not None:
        save_audio(audio_path, speech_like_audio(duration_s, sample_rate_hz, seed), sample_rate_hz)


def roi_iou(a, b) -> float:
    if a is None or b is None:
        return 0.0
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def make_scan(work: Path, duration_s: float, fps: int, height: int, width: int, seed: int) -> Path:
    """The scan folder (video + wav), regenerated only when its parameters change."""
    folder = work / "scan"
    stamp = {"duration_s": duration_s, "fps": fps, "height": height, "width": width, "seed": seed}
    stamp_path = work / "scan.json"
    if stamp_path.exists() and json.loads(stamp_path.read_text()) == stamp and (folder / "narrated.mp4").exists():
        return folder
    t0 = time.perf_counter()
    write_scan(folder / "narrated.mp4", folder / "narrated.wav", duration_s, fps, height, width, seed)
    stamp_path.write_text(json.dumps(stamp))
    print(f"generated the synthetic scan in {time.perf_counter() - t0:.0f} s (not timed)")
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--duration-s", type=float, default=600.0, help="scan length (default 10 min)")
    ap.add_argument("--quick", action="store_true", help="a 1-minute scan instead")
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--size", type=int, default=128, help="working size of the cached frames (square)")
    ap.add_argument("--work", type=Path, default=Path("bench_out/ingest_work"))
    ap.add_argument("--out", type=Path, default=Path("bench_out/bench_ingest.json"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    duration_s = 60.0 if args.quick else args.duration_s

    import shutil

    from sonotell.files import write_json
    from sonotell.io.cache import FrameCache
    from sonotell.io.ingest import ingest

    folder = make_scan(args.work, duration_s, args.fps, args.height, args.width, args.seed)
    load_before = os.getloadavg()[0]

    t0 = time.perf_counter()
    result = ingest(folder, args.work / "manifest.csv", workers=1, resume=False)
    t_ingest = time.perf_counter() - t0
    if result.problems:
        raise SystemExit(f"ingest reported problems: {[str(p) for p in result.problems]}")
    scan = result.scans[0]

    shutil.rmtree(args.work / "cache", ignore_errors=True)
    t0 = time.perf_counter()
    cache = FrameCache.build(scan, args.work / "cache", size=(args.size, args.size), audio_rate_hz=16000)
    t_cache = time.perf_counter() - t0

    truth_roi = sector_box(args.height, args.width)
    total = t_ingest + t_cache
    rows = [
        {
            "stage": "ingest (probe + sector + audio checks)",
            "seconds": t_ingest,
            "frames_per_s": scan.n_frames / t_ingest,
            "x_real_time": duration_s / t_ingest,
        },
        {
            "stage": f"frame cache {args.size}x{args.size} + 16 kHz audio",
            "seconds": t_cache,
            "frames_per_s": scan.n_frames / t_cache,
            "x_real_time": duration_s / t_cache,
        },
        {
            "stage": "ingest + cache",
            "seconds": total,
            "frames_per_s": scan.n_frames / total,
            "x_real_time": duration_s / total,
        },
    ]
    print(
        f"\nscan: {duration_s:.0f} s, {scan.n_frames} frames at {scan.fps:g} fps, {args.width}x{args.height}; "
        f"CPUs {os.cpu_count()}, load {load_before:.1f}"
    )
    print(f"{'stage':<42} {'seconds':>8} {'frames/s':>9} {'x real time':>12}")
    for r in rows:
        print(f"{r['stage']:<42} {r['seconds']:>8.1f} {r['frames_per_s']:>9.0f} {r['x_real_time']:>12.2f}")
    iou = roi_iou(scan.roi, truth_roi)
    print(
        f"sector ROI detected {scan.roi}, true {truth_roi}, IoU {iou:.3f}; "
        f"goal: ingest + cache faster than real time -> {'met' if total < duration_s else 'NOT met'}"
    )
    write_json(
        args.out,
        {
            "benchmark": "ingest",
            "duration_s": duration_s,
            "fps": args.fps,
            "source_size": [args.height, args.width],
            "cache_size": [args.size, args.size],
            "n_frames": scan.n_frames,
            "rows": rows,
            "real_time_factor": duration_s / total,
            "goal_met": total < duration_s,
            "roi_detected": scan.roi,
            "roi_true": truth_roi,
            "roi_iou": iou,
            "cache_frames": cache.n_frames,
            "cpus": os.cpu_count(),
            "load_average_before": load_before,
            "python": platform.python_version(),
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""Benchmark: `sonotell predict` throughput against the model's bare forward pass, and its memory in video length.

A synthetic scan (10 s of ``bench_ingest.write_scan``: 240x320 by default, at 25 fps, looped to the length;
making every frame anew costs ~3 s per video second here) is predicted end to end
(decode -> sector crop -> resize -> batch -> model -> probabilities, CSV, summary, contact sheet),
each length in its own process so its peak memory (max RSS) is its own. The bare forward pass runs
the same model on the same number of frames already in memory (batch 64, same threads).
The model is the `small` frame classifier (image_resnet small + linear head) at 128x128;
its weights are untrained (throughput does not depend on them).

    python benchmarks/bench_predict.py                  # 1-minute and 10-minute scans
    python benchmarks/bench_predict.py --lengths 20,60  # shorter, for a quick check

Prints a table and writes JSON (default bench_out/bench_predict.json).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_ingest import write_scan  # noqa: E402


def loop_video(work: Path, video: Path, length_s: float, height: int, width: int, fps: int = 25) -> Path:
    """``length_s`` seconds of video: a 10 s synthetic scan repeated (mpeg4 at high quality)."""
    import av

    from sonotell.io.video import read_frames

    seed = work / f"scan_10s_{height}x{width}.mp4"
    if not seed.exists():
        write_scan(seed, None, 10.0, fps, height, width, 0)
    frames = read_frames(seed)
    with av.open(str(video), "w") as c:
        vs = c.add_stream("mpeg4", rate=fps)
        vs.width, vs.height, vs.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        vs.codec_context.bit_rate = 4_000_000
        for i in range(int(length_s * fps)):
            f = frames[i % len(frames)]
            for pkt in vs.encode(av.VideoFrame.from_ndarray(np.repeat(f[..., None], 3, axis=2), format="rgb24")):
                c.mux(pkt)
        for pkt in vs.encode():
            c.mux(pkt)
    return video


def make_model(path: Path, size: int) -> Path:
    from sonotell.data.dataset import lexicon_fingerprint
    from sonotell.methods.frame_classifier import FrameClassifier, method_config, save_classifier
    from sonotell.speech.lexicon import load_lexicon

    lex = load_lexicon("lung")
    cfg = method_config("small", [f"size=[{size},{size}]"])
    torch.manual_seed(0)
    model = FrameClassifier(len(lex.labels), cfg["encoder"], cfg["encoder_config"])
    meta = {
        "task": "frame_classifier",
        "classes": lex.labels,
        "multilabel": True,
        "config": cfg,
        "init": None,
        "lexicon": "lung",
        "lexicon_fingerprint": lexicon_fingerprint(lex),
        "metrics": {},
    }
    return save_classifier(path, model, meta)


def bare_forward(model_path: Path, n: int, size: int, batch: int) -> float:
    from sonotell.methods.frame_classifier import load_classifier

    model, _ = load_classifier(model_path)
    x = torch.rand(min(n, 512), 1, size, size)
    done, t0 = 0, time.perf_counter()
    with torch.no_grad():
        while done < n:
            b = x[: min(batch, n - done)]
            model(b)
            done += len(b)
    return n / (time.perf_counter() - t0)


def child(model_path: Path, video: Path, out: Path, batch: int) -> None:
    """Run predict on one video; print frames, seconds and max RSS as JSON."""
    from sonotell.methods.predict import predict_scans, scans_from

    t0 = time.perf_counter()
    predict_scans(model_path, scans_from([video]), out, batch_size=batch)
    dt = time.perf_counter() - t0
    n = sum(1 for _ in open(out / f"{video.stem}.probs.csv")) - 1
    print(
        json.dumps(
            {"frames": n, "seconds": dt, "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lengths", default="60,600", help="video lengths in seconds, comma-separated")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--height", type=int, default=240, help="source video height (480 for a full-size scan)")
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--work", type=Path, default=Path("bench_out/predict_work"))
    ap.add_argument("--json", type=Path, default=Path("bench_out/bench_predict.json"))
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]), Path(args.child[2]), args.batch)
        return
    args.work.mkdir(parents=True, exist_ok=True)
    model_path = make_model(args.work / "model.pt", args.size)
    rows = []
    for length in [float(v) for v in args.lengths.split(",")]:
        video = args.work / f"scan_{int(length)}s_{args.height}x{args.width}.mp4"
        if not video.exists():
            t0 = time.perf_counter()
            loop_video(args.work, video, length, args.height, args.width)
            print(f"made a {length:.0f} s scan in {time.perf_counter() - t0:.0f} s (not timed)", flush=True)
        out = args.work / f"pred_{int(length)}s"
        res = subprocess.run(
            [sys.executable, __file__, "--batch", str(args.batch), "--child", str(model_path), str(video), str(out)],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(res.stdout.strip().splitlines()[-1])
        fwd = bare_forward(model_path, r["frames"], args.size, args.batch)
        fps = r["frames"] / r["seconds"]
        rows.append(
            {
                "video_s": length,
                "frames": r["frames"],
                "predict_fps": fps,
                "bare_forward_fps": fwd,
                "predict/forward": fps / fwd,
                "x_real_time": fps / 25.0,
                "max_rss_mb": r["max_rss_mb"],
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(f"{r[k]:.2f}" if isinstance(r[k], float) else str(r[k]) for k in keys) + " |")
    from sonotell.files import write_json

    info = {"source": f"{args.height}x{args.width}", "size": args.size, "batch": args.batch}
    write_json(args.json, {"rows": rows, **info, "threads": torch.get_num_threads()})
    write_json(args.json, {"rows": rows, **info})


if __name__ == "__main__":
    main()

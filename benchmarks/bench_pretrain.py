"""Benchmark: self-supervised pretraining throughput (clips/s) of each recipe on CPU, small config.

Table 1 (always): one optimiser step = forward + every loss term + backward + Adam update of
the recipe's model on a batch of synthetic clips with the small config's shapes (8 frames of
64x64, 0.6-1.0 s of 16 kHz audio, short transcripts). Data loading is excluded: it measures
the model, not the disk. Also: parameters and the localisation map rate of show_from_tell
(``localisation_map`` on one 224x224 frame + 0.6 s of audio per map, batch of 16).

Table 2 (``--benchmark DIR``): end-to-end ``sonotell pretrain`` (frame cache built first,
then timed: ``ClipDataset`` loading + training through Lightning) on a real benchmark folder.

    python benchmarks/bench_pretrain.py                      # 20 timed steps per recipe, batch 8
    python benchmarks/bench_pretrain.py --quick              # 5 timed steps
    python benchmarks/bench_pretrain.py --benchmark bench_out/synthetic --epochs 1

Prints tables and writes JSON (default bench_out/bench_pretrain.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

RECIPES = ("show_from_tell", "dual", "av_contrastive")
WORDS = "here is the liver now the kidney and we can see the spleen okay hold it there".split()


def synthetic_batch(cfg: dict, batch_size: int, seed: int) -> dict:
    """A batch with the config's clip shapes; scans differ so every pair has negatives."""
    g = torch.Generator().manual_seed(seed)
    data = cfg["data"]
    h, w = data["size"]
    n_audio = int(round((data["audio_before_s"] + data["audio_after_s"]) * data["sample_rate_hz"]))
    return {
        "frames": torch.rand(batch_size, data["n_frames"], h, w, generator=g),
        "audio": 0.1 * torch.randn(batch_size, n_audio, generator=g),
        "text": [" ".join(WORDS[(3 * i) % 10 : (3 * i) % 10 + 4]) for i in range(batch_size)],
        "scan_id": [f"s{i}" for i in range(batch_size)],
        "time_s": torch.zeros(batch_size),
    }


def build(recipe: str, config: str, batch: dict):
    from sonotell.methods.pretrain import model_from_config, resolve_config
    from sonotell.models.text import build_vocabulary

    cfg = resolve_config(recipe, config)
    if "text" in cfg["model"]:
        cfg["model"]["text"]["vocabulary"] = build_vocabulary(batch["text"])
    return cfg, model_from_config(recipe, cfg)


def step_throughput(recipe: str, config: str, batch_size: int, steps: int, warmup: int, seed: int) -> dict:
    from sonotell.methods.pretrain import resolve_config

    batch = synthetic_batch(resolve_config(recipe, config), batch_size, seed)
    torch.manual_seed(seed)
    cfg, model = build(recipe, config, batch)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        out = model.losses(batch)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    sec = sum(times) / len(times)
    return {
        "recipe": recipe,
        "config": config,
        "batch": batch_size,
        "frames": f"{cfg['data']['n_frames']}x{cfg['data']['size'][0]}x{cfg['data']['size'][1]}",
        "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 3),
        "s_per_step": round(sec, 4),
        "clips_per_s": round(batch_size / sec, 2),
        "final_loss": round(out["loss"].item(), 4),
    }


@torch.no_grad()
def localisation_rate(config: str, batch_size: int, repeats: int, seed: int) -> dict:
    """Maps per second of show_from_tell's localisation_map on single 224x224 frames."""
    from sonotell.methods.pretrain import resolve_config

    batch = synthetic_batch(resolve_config("show_from_tell", config), batch_size, seed)
    _, model = build("show_from_tell", config, batch)
    model.eval()
    frames = torch.rand(batch_size, 224, 224)
    audio = 0.1 * torch.randn(batch_size, 9600)
    model.localisation_map(frames, audio)  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeats):
        m = model.localisation_map(frames, audio)
    sec = (time.perf_counter() - t0) / repeats
    return {"config": config, "input": "1x224x224 frame + 0.6 s audio", "batch": batch_size, "map": "x".join(map(str, m.shape[-2:])), "frames_per_s": round(batch_size / sec, 1)}


def end_to_end(recipe: str, benchmark: str, epochs: int, batch_size: int, out_dir: Path, seed: int) -> dict:
    from sonotell.methods.pretrain import make_dataset, pretrain, resolve_config, _load_benchmark

    cfg = resolve_config(recipe, "small")
    bench = _load_benchmark(benchmark)
    cache = out_dir / "frame_cache"
    make_dataset(bench, [s.scan_id for s in bench.scans], dict(cfg["data"]), cache)  # build caches untimed
    run_dir = out_dir / f"{recipe}_e2e"
    t0 = time.perf_counter()
    pretrain(recipe, bench, run_dir, overrides=[f"train.epochs={epochs}", f"train.batch_size={batch_size}", "train.val_fraction=0.0"], seed=seed, cache_dir=cache)
    sec = time.perf_counter() - t0
    info = json.loads((run_dir / "pretrain.json").read_text())
    n = info["train_clips"] // batch_size * batch_size * epochs
    return {"recipe": recipe, "benchmark": bench.name, "clips_seen": n, "seconds": round(sec, 2), "clips_per_s": round(n / sec, 2), "final_train_loss": round(info["metrics"].get("train/loss", float("nan")), 4)}


def print_rows(title: str, rows: list[dict]) -> None:
    print(f"\n{title}")
    if not rows:
        return
    keys = list(rows[0])
    widths = [max(len(k), *(len(str(r[k])) for r in rows)) for k in keys]
    print("  ".join(k.ljust(w) for k, w in zip(keys, widths)))
    for r in rows:
        print("  ".join(str(r[k]).ljust(w) for k, w in zip(keys, widths)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=RECIPES)
    ap.add_argument("--config", default="small")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="5 timed steps, 1 warm-up")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--benchmark", default=None, help="benchmark folder for the end-to-end table")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("bench_out/bench_pretrain.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    steps, warmup = (5, 1) if args.quick else (args.steps, 2)

    rows = [step_throughput(r, args.config, args.batch_size, steps, warmup, args.seed) for r in args.recipes]
    print_rows(f"Pretraining step throughput ({args.config} config, synthetic batches, {args.threads} thread(s), {steps} timed steps)", rows)
    loc = [localisation_rate(args.config, 16, 2 if args.quick else 5, args.seed)] if "show_from_tell" in args.recipes else []
    print_rows("show_from_tell localisation map rate", loc)
    e2e = []
    if args.benchmark:
        e2e = [end_to_end(r, args.benchmark, args.epochs, args.batch_size, args.out.parent / "bench_pretrain_runs", args.seed) for r in args.recipes]
        print_rows(f"End-to-end pretraining on {args.benchmark} ({args.epochs} epoch(s))", e2e)

    from sonotell.files import write_json

    write_json(args.out, {"machine": {"cpu_count": os.cpu_count(), "threads": args.threads, "platform": platform.platform(), "torch": torch.__version__}, "steps": rows, "localisation": loc, "end_to_end": e2e})
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()

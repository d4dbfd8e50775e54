"""Benchmark: self-supervised pretraining throughput (clips/s) of each recipe on CPU, small config.

Table 1 (always): one optimiser step = forward + every loss term + backward + Adam update of
the recipe's model on a batch of synthetic clips with the small config's shapes (8 frames of
64x64, 0.6-1.0 s of 16 kHz audio, short transcripts). Data loading is excluded: it measures
the model, not the disk. Also: parameters and the localisation map rate of show_from_tell
(``localisation_map`` on one 224x224 frame + 0.6 s of audio per map, batch of 16).

Table 2 (``--toy-steps N``): can each recipe learn cross-modal structure at all? A toy
task: 64x64 clips with a 16x16 textured patch at one of 16 random cells, the texture (one
of 4) tied to the frequency of a tone in the audio. After N steps (batch 16) on fresh
samples: held-out video->audio retrieval (nearest audio embedding of the same class; chance
0.25) and, for show_from_tell, the pointing game of ``localisation_map`` (argmax cell ==
patch cell; chance 1/16).

Table 4 (``--localise DIR --localise-epochs N``): show_from_tell pretrained (small config)
on the ``abdominal`` benchmark's scans of subjects without organ masks, then scored by
``sonotell.methods.localise.score_localisation`` (pointing game, IoU) on the held-out
subjects that have masks, against a random init of the same network, a centre prior and a
random map.

Table 3 (``--benchmark DIR``): end-to-end ``sonotell pretrain`` (frame cache built first,
then timed: ``ClipDataset`` loading + training through Lightning) on a real benchmark folder.

    python benchmarks/bench_pretrain.py                      # 20 timed steps per recipe, batch 8
    python benchmarks/bench_pretrain.py --quick              # 5 timed steps
    python benchmarks/bench_pretrain.py --toy-steps 200                 # + the toy learning check
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
    return {
        "config": config,
        "input": "1x224x224 frame + 0.6 s audio",
        "batch": batch_size,
        "map": "x".join(map(str, m.shape[-2:])),
        "frames_per_s": round(batch_size / sec, 1),
    }


def toy_batch(n: int, g: torch.Generator) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """Clips with a textured patch at a random cell; the texture class sets the audio tone."""
    import math

    k = torch.randint(0, 4, (n,), generator=g)
    cell = torch.randint(0, 16, (n,), generator=g)
    frames = 0.1 * torch.rand(n, 4, 64, 64, generator=g)
    yy, xx = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")
    textures = [
        (torch.sin(yy * 1.5) > 0).float(),
        (torch.sin(xx * 1.5) > 0).float(),
        ((yy + xx) % 4 < 2).float(),
        torch.ones(16, 16),
    ]
    for i in range(n):
        y, x = divmod(int(cell[i]), 4)
        frames[i, :, 16 * y : 16 * y + 16, 16 * x : 16 * x + 16] += 0.8 * textures[int(k[i])]
    t = torch.arange(4800) / 16000
    audio = torch.stack([0.3 * torch.sin(2 * math.pi * (300 + 500 * int(c)) * t) for c in k]) + 0.01 * torch.randn(
        n, 4800, generator=g
    )
    words = ("liver", "kidney", "spleen", "bladder")
    batch = {
        "frames": frames,
        "audio": audio,
        "text": [f"here is the {words[int(c)]}" for c in k],
        "scan_id": [f"s{i}" for i in range(n)],
        "time_s": torch.zeros(n),
    }
    return batch, k, cell


def toy_learning(recipe: str, steps: int, seed: int) -> dict:
    import torch.nn.functional as F

    from sonotell.models import create_model
    from sonotell.models.text import build_vocabulary

    torch.manual_seed(seed)
    kw: dict = {"video": {"name": "video_r2plus1d", "config": "small"}, "embed_dim": 16}
    if recipe == "show_from_tell":
        kw["text"] = {
            "name": "text_embedding",
            "config": "small",
            "vocabulary": build_vocabulary(["here is the liver kidney spleen bladder"]),
        }
    net = create_model(recipe, None, **kw)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed + 1)
    t0 = time.perf_counter()
    for _ in range(steps):
        out = net.losses(toy_batch(16, g)[0])
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    sec = time.perf_counter() - t0
    net.eval()
    with torch.no_grad():
        batch, k, cell = toy_batch(64, torch.Generator().manual_seed(seed + 99))
        v = F.normalize(net.video_proj(net.video(batch["frames"])), dim=1)
        a = F.normalize(net.audio_proj(net.audio(batch["audio"])), dim=1)
        retrieval = float((k[(v @ a.T).argmax(1)] == k).float().mean())
        pointing = None
        if recipe == "show_from_tell":
            m = net.localisation_map(batch["frames"], batch["audio"])
            pointing = round(float((m.flatten(1).argmax(1) == cell).float().mean()), 3)
    return {
        "recipe": recipe,
        "steps": steps,
        "train_s": round(sec, 1),
        "retrieval_acc": round(retrieval, 3),
        "retrieval_chance": 0.25,
        "pointing_acc": pointing,
        "pointing_chance": round(1 / 16, 3),
    }


def localise_check(bench_dir: str, epochs: int, out_dir: Path, seed: int, sizes=(64, 224)) -> list[dict]:
    from sonotell.data.format import load_benchmark
    from sonotell.methods.localise import score_localisation
    from sonotell.methods.pretrain import load_pretrained, model_from_config, pretrain
    from sonotell.train import load_model_checkpoint

    bench = load_benchmark(bench_dir)
    with_masks = {s.subject_id for s in bench.scans if bench.truth(s.scan_id).get("masks")}
    train_ids = [s.scan_id for s in bench.scans if s.subject_id not in with_masks]
    test_ids = [s.scan_id for s in bench.scans if s.subject_id in with_masks]
    assert not {s.subject_id for s in bench.scans if s.scan_id in train_ids} & with_masks, (
        "train and test subjects overlap"
    )
    ckpt = pretrain(
        "show_from_tell",
        bench,
        out_dir / f"localise_e{epochs}",
        overrides=[f"train.epochs={epochs}"],
        seed=seed,
        scan_ids=train_ids,
        cache_dir=out_dir / "frame_cache",
    )
    torch.manual_seed(seed)
    models = {
        "pretrained": load_pretrained(ckpt, expected="show_from_tell"),
        "random_init": model_from_config("show_from_tell", load_model_checkpoint(ckpt)["config"]).eval(),
    }
    rows = []
    for name, model in models.items():
        for size in sizes:
            r = score_localisation(bench, model, scan_ids=test_ids, size=(size, size))
            rows.append(
                {
                    "init": name,
                    "epochs": epochs if name == "pretrained" else 0,
                    "input": f"{size}x{size}",
                    "frames": r["n_frames"],
                    "pointing": round(r["pointing_game"], 3),
                    "iou": round(r["iou"], 3),
                    "centre_prior": round(r["centre_prior_pointing_game"], 3),
                    "random_map": round(r["random_map_pointing_game"], 3),
                    "test_subjects": ",".join(sorted(with_masks)),
                }
            )
    return rows


def end_to_end(recipe: str, benchmark: str, epochs: int, batch_size: int, out_dir: Path, seed: int) -> dict:
    from sonotell.methods.pretrain import _load_benchmark, make_dataset, pretrain, resolve_config

    cfg = resolve_config(recipe, "small")
    bench = _load_benchmark(benchmark)
    cache = out_dir / "frame_cache"
    make_dataset(bench, [s.scan_id for s in bench.scans], dict(cfg["data"]), cache)  # build caches untimed
    run_dir = out_dir / f"{recipe}_e2e"
    t0 = time.perf_counter()
    pretrain(
        recipe,
        bench,
        run_dir,
        overrides=[f"train.epochs={epochs}", f"train.batch_size={batch_size}", "train.val_fraction=0.0"],
        seed=seed,
        cache_dir=cache,
    )
    sec = time.perf_counter() - t0
    info = json.loads((run_dir / "pretrain.json").read_text())
    n = info["train_clips"] // batch_size * batch_size * epochs
    return {
        "recipe": recipe,
        "benchmark": bench.name,
        "clips_seen": n,
        "seconds": round(sec, 2),
        "clips_per_s": round(n / sec, 2),
        "final_train_loss": round(info["metrics"].get("train/loss", float("nan")), 4),
    }


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
    ap.add_argument(
        "--toy-steps", type=int, default=0, help="train N steps on the toy task and report retrieval / pointing"
    )
    ap.add_argument("--benchmark", default=None, help="benchmark folder for the end-to-end table")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--localise", default=None, help="abdominal benchmark folder for the localisation check")
    ap.add_argument("--localise-epochs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("bench_out/bench_pretrain.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    steps, warmup = (5, 1) if args.quick else (args.steps, 2)

    rows = [step_throughput(r, args.config, args.batch_size, steps, warmup, args.seed) for r in args.recipes]
    print_rows(
        f"Pretraining step throughput ({args.config} config, synthetic batches, "
        f"{args.threads} thread(s), {steps} timed steps)",
        rows,
    )
    loc = (
        [localisation_rate(args.config, 16, 2 if args.quick else 5, args.seed)]
        if "show_from_tell" in args.recipes
        else []
    )
    print_rows("show_from_tell localisation map rate", loc)
    toy = [toy_learning(r, args.toy_steps, args.seed) for r in args.recipes] if args.toy_steps > 0 else []
    if toy:
        print_rows(f"Toy cross-modal learning check ({args.toy_steps} steps of 16 clips)", toy)
    e2e = []
    if args.benchmark:
        e2e = [
            end_to_end(
                r, args.benchmark, args.epochs, args.batch_size, args.out.parent / "bench_pretrain_runs", args.seed
            )
            for r in args.recipes
        ]
        print_rows(f"End-to-end pretraining on {args.benchmark} ({args.epochs} epoch(s))", e2e)

    loc_check = []
    if args.localise:
        loc_check = localise_check(
            args.localise, args.localise_epochs, args.out.parent / "bench_pretrain_runs", args.seed
        )
        print_rows(f"show_from_tell localisation on {args.localise} (held-out subjects with masks)", loc_check)

    from sonotell.files import write_json

    write_json(
        args.out,
        {
            "machine": {
                "cpu_count": os.cpu_count(),
                "threads": args.threads,
                "platform": platform.platform(),
                "torch": torch.__version__,
            },
            "steps": rows,
            "localisation": loc,
            "toy": toy,
            "end_to_end": e2e,
            "localise": loc_check,
        },
    )
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()

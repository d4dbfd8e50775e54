"""Benchmark: audio-guided localisation on ``abdominal`` — pointing game vs organ masks, and speed.

1. Accuracy. Each spoken organ name in a scan's narration is paired with the masked frame
   shown while it was said; the show_from_tell response map of that frame to the speech
   window (+-0.3 s) is scored against that organ's mask: pointing-game accuracy (max within
   15 px of the organ) and IoU of the map thresholded at half its range. Two map-free
   baselines are scored on the same frames: a centre prior and a uniformly random map.
   Goal: pointing game >= 0.6.
2. Speed. Localisation inference (``localisation_map``: video encoder feature map + audio
   encoder + spatial-aware fusion) on single 224x224 frames with 0.6 s of speech, batch 16,
   after warm-up, on this CPU with ``--threads`` threads. Goal: >= 25 frames/s (the paper:
   0.08 s per frame on a GPU). Measured for the evaluated (``small``) model and, unless
   ``--quick``, for the paper-size model (random weights; speed does not depend on them).
3. Saliency prediction transfer (the papers' gaze task, with the named organs' masks as
   ground truth): a saliency head on the pretrained video encoder vs the same encoder from
   random init, leave-one-subject-out, KL / NSS / AUC-Judd / CC / SIM / comp.

The model: ``--checkpoint`` (a show_from_tell encoder.pt), or pretrained here with the
``small`` config on the benchmark's scans that carry no masks (the scored frames stay
unseen; pretraining reads no labels or masks anyway).

    python benchmarks/bench_localise.py --bench bench_out/abdominal
    python benchmarks/bench_localise.py --bench bench_out/abdominal --quick   # 1 pretraining epoch, small model speed only
    python benchmarks/bench_localise.py --bench bench_out/synthetic --build    # no ../shared needed

Prints a table and writes JSON (default bench_out/bench_localise.json).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch


def measure_fps(model, size=(224, 224), n_frames: int = 1, audio_s: float = 0.6, batch: int = 16, batches: int = 4, sample_rate_hz: int = 16000) -> float:
    """Frames per second of ``model.localisation_map`` on random inputs (after one warm-up batch)."""
    model.eval()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, n_frames, *size, generator=g)
    a = torch.randn(batch, int(audio_s * sample_rate_hz), generator=g) * 0.1
    with torch.no_grad():
        model.localisation_map(x, a)
        t0 = time.perf_counter()
        for _ in range(batches):
            model.localisation_map(x, a)
        dt = time.perf_counter() - t0
    return batch * batches / dt


METRICS = ("kl", "nss", "auc_judd", "cc", "sim", "comp")


def saliency_transfer(bench, checkpoint: Path, work: Path, epochs: int = 10, seed: int = 0) -> dict:
    """Saliency head on the pretrained video encoder vs the same one from random init (LOSO)."""
    from sonotell.methods.downstream import load_encoder, model_for_recipe
    from sonotell.methods.saliency_downstream import saliency_cv, saliency_data_from_benchmark, subject_folds
    from sonotell.train import load_model_checkpoint

    ckpt = load_model_checkpoint(checkpoint)
    data = saliency_data_from_benchmark(bench, size=tuple(ckpt["config"].get("data", {}).get("size", (64, 64))))
    folds = subject_folds(data)
    cfg = {"epochs": epochs, "batch_size": 8, "hidden": 32, "optimizer": {"name": "adam", "lr": 1e-3}}
    results = {
        "random init": saliency_cv(lambda: model_for_recipe(ckpt["recipe"], ckpt["config"]), data, folds, cfg, work / "random", seed),
        "pretrained": saliency_cv(lambda: load_encoder(checkpoint)[0], data, folds, cfg, work / "pretrained", seed),
    }
    return {"n_frames": int(len(data.images)), "subjects": sorted(set(data.subject_ids.tolist())), "epochs": epochs, "results": results}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench", type=Path, default=Path("bench_out/abdominal"), help="benchmark folder")
    ap.add_argument("--build", action="store_true", help="build the benchmark (named by the folder's name) if missing")
    ap.add_argument("--checkpoint", type=Path, default=None, help="show_from_tell encoder.pt; default: pretrain one here")
    ap.add_argument("--work", type=Path, default=Path("bench_out/localise_work"), help="pretraining output folder")
    ap.add_argument("--epochs", type=int, default=None, help="pretraining epochs (default: the small config's)")
    ap.add_argument("--pretrain-on-all", action="store_true", help="pretrain on every scan, scored ones included (no labels or masks are read)")
    ap.add_argument("--pretrain-set", action="append", default=[], help="override of the show_from_tell small config, repeatable")
    ap.add_argument("--size", type=int, default=None, help="scoring resolution (default: the checkpoint's training size)")
    ap.add_argument("--full-frames", action="store_true", help="score on full frames (default: cropped to the sector, as pretraining sees them)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="1 pretraining epoch (unless --epochs); speed of the small model only")
    ap.add_argument("--no-saliency", action="store_true", help="skip the saliency-prediction transfer table")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("bench_out/bench_localise.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from sonotell.bench import ensure_benchmark
    from sonotell.errors import SonotellError
    from sonotell.files import write_json
    from sonotell.methods.localise import load_localiser, score_localisation
    from sonotell.methods.pretrain import model_from_config, pretrain, resolve_config
    from sonotell.train import load_model_checkpoint

    try:
        bench = ensure_benchmark(args.bench, build=args.build, seed=args.seed)
    except SonotellError as e:
        raise SystemExit(str(e)) from None

    t0 = time.perf_counter()
    pretrain_scans = None
    if args.checkpoint is None:
        masked = {s.scan_id for s in bench.scans if bench.truth(s.scan_id)["masks"]}
        held_subjects = {s.subject_id for s in bench.scans if s.scan_id in masked}
        pretrain_scans = [s.scan_id for s in bench.scans if s.subject_id not in held_subjects] or [s.scan_id for s in bench.scans]
        if args.pretrain_on_all:  # unlabelled pretraining on every scan, as the papers do
            pretrain_scans = [s.scan_id for s in bench.scans]
        epochs = args.epochs or (1 if args.quick else None)
        overrides = ([f"train.epochs={epochs}"] if epochs else []) + args.pretrain_set
        args.checkpoint = pretrain("show_from_tell", bench, args.work, "small", overrides, seed=args.seed, scan_ids=pretrain_scans)
    pretrain_s = time.perf_counter() - t0
    model, recipe = load_localiser(args.checkpoint)
    cfg = load_model_checkpoint(args.checkpoint)["config"]
    size = (args.size, args.size) if args.size else tuple(cfg.get("data", {}).get("size", (64, 64)))
    data_cfg = cfg.get("data", {})
    if "audio_before_s" in data_cfg:  # show_from_tell configs name the two sides
        window = (float(data_cfg["audio_before_s"]), float(data_cfg.get("audio_after_s", data_cfg["audio_before_s"])))
    else:
        window = data_cfg.get("audio_window_s", 0.6)
        window = (window / 2, window / 2) if np.isscalar(window) else tuple(window)

    scored_ids = [s.scan_id for s in bench.scans if bench.truth(s.scan_id)["masks"]]
    t0 = time.perf_counter()
    scores = score_localisation(bench, model, scan_ids=scored_ids, size=size, window_s=window, roi=None if args.full_frames else "auto")
    score_s = time.perf_counter() - t0

    saliency = None
    if not args.no_saliency:
        saliency = saliency_transfer(bench, args.checkpoint, args.work / "saliency", epochs=3 if args.quick else 10, seed=args.seed)

    speed = {"small (evaluated)": measure_fps(model)}
    if not args.quick:
        paper = resolve_config("show_from_tell", "paper")
        paper["model"]["name"] = "show_from_tell"
        paper["model"]["use_text"] = False  # the text branch plays no part in localisation
        speed["paper size (random weights)"] = measure_fps(model_from_config("show_from_tell", paper), batches=1)

    rows = [
        {"measure": "pointing game (show_from_tell)", "value": scores["pointing_game"], "goal": ">= 0.6"},
        {"measure": "IoU, map >= 0.5 of range", "value": scores["iou"], "goal": ""},
        {"measure": "pointing game, centre prior", "value": scores["centre_prior_pointing_game"], "goal": "baseline"},
        {"measure": "pointing game, random map", "value": scores["random_map_pointing_game"], "goal": "baseline"},
        {"measure": f"control frames (n={scores['n_control']}): pointing game, right speech", "value": scores["pointing_game_control_frames"], "goal": ""},
        {"measure": "  same frames, speech naming another organ", "value": scores["other_speech_pointing_game"], "goal": "< right speech"},
    ] + [{"measure": f"frames/s at 224x224, {k}, {args.threads} thread(s)", "value": v, "goal": ">= 25"} for k, v in speed.items()]
    print(f"\nbenchmark {bench.name}: {scores['n_frames']} scored frames (spoken organ with a mask) in {len(scored_ids)} scans; scoring size {size}, {'full frames' if args.full_frames else 'sector crop'}")
    print(f"{'measure':58s} {'value':>8s}  goal")
    for r in rows:
        print(f"{r['measure']:58s} {r['value']:8.3f}  {r['goal']}")
    print("per organ:", ", ".join(f"{k} {v['pointing_game']:.2f} (n={v['n']})" for k, v in scores["per_class"].items()))
    if saliency:
        print(f"\nsaliency prediction (head on the video encoder, leave-one-subject-out over {saliency['n_frames']} masked frames, target = named organs)")
        print(f"{'init':22s} " + " ".join(f"{m:>14s}" for m in METRICS))
        for name, r in saliency["results"].items():
            print(f"{name:22s} " + " ".join(f"{r[m + '_mean']:7.3f}±{r[m + '_std']:.3f}".rjust(14) for m in METRICS))
    write_json(
        args.out,
        {
            "benchmark": str(bench.root),
            "checkpoint": str(args.checkpoint),
            "recipe": recipe,
            "pretrain_scans": pretrain_scans,
            "pretrain_seconds": round(pretrain_s, 1),
            "scoring_seconds": round(score_s, 1),
            "scoring_size": list(size),
            "scoring_input": "full frames" if args.full_frames else "sector crop",
            "threads": args.threads,
            "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "rows": rows,
            "scores": {k: v for k, v in scores.items() if k != "rows"},
            "frames": scores["rows"],
            "saliency": saliency,
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""Benchmark: the voice-assisted labelling network (Bonmati et al. 2021), every variant, Table III style.

Builds (or reuses) a narrated benchmark, runs ``sonotell.methods.voice_label.run_experiment``
(patient-level CV, pooled predictions, bootstrap over patients) and prints the table next to
the paper's accuracies (EUS, 5 classes: image+voice 0.76, voice 0.66, image 0.31), plus CPU
throughput of the small config (training samples/s incl. Lightning overhead, inference clips/s).

    python benchmarks/bench_voice_label.py                      # pocus (needs ../shared/data), small config
    python benchmarks/bench_voice_label.py --bench synthetic    # no data needed
    python benchmarks/bench_voice_label.py --quick              # 3 epochs, 3 variants, 3 folds

Writes JSON (default bench_out/bench_voice_label.json); the experiment's own Markdown + JSON
land in --out.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from pathlib import Path

import torch

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default="pocus", help="pocus, synthetic or abdominal; or a built benchmark folder")
    ap.add_argument("--bench-dir", type=Path, default=None, help="where the benchmark is (built there when missing)")
    ap.add_argument("--data-root", type=Path, default=SHARED)
    ap.add_argument("--config", default="small")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="method config override key=value")
    ap.add_argument("--variants", default=None, help="comma-separated subset of variants")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=Path("bench_out/bench_voice_label.json"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)

    from sonotell.bench.build import build_benchmark
    from sonotell.methods.voice_label import run_experiment

    bench_dir = args.bench_dir or (Path(args.bench) if Path(args.bench).is_dir() else Path("bench_out") / args.bench)
    t0 = time.perf_counter()
    if not (bench_dir / "bench.json").exists():
        name = args.bench
        bench_overrides = [f"data_root={args.data_root}"] if name in ("pocus", "abdominal") else []
        if name == "synthetic":
            bench_overrides = ["subjects=12", "scans_per_subject=2", "duration_s=20", "size=[64,64]"]
        build_benchmark(name, bench_dir, overrides=bench_overrides, seed=args.seed)
    build_s = time.perf_counter() - t0
    overrides = list(args.overrides)
    variants = args.variants.split(",") if args.variants else None
    if args.quick:
        overrides += ["train.max_epochs=3", "cv.k=3", "keyword_pretrain.max_epochs=3"]
        variants = variants or ["image_voice", "voice", "image"]
    out = args.out or Path("bench_out") / f"voice_label_{bench_dir.name}"
    t1 = time.perf_counter()
    md = run_experiment(bench_dir, out, config=args.config, overrides=overrides, seed=args.seed, variants=variants)
    run_s = time.perf_counter() - t1
    res = json.loads((out / "results.json").read_text())
    paper = res["meta"]["paper_accuracy"]
    print(
        f"\nvoice_label on {res['meta']['benchmark']} ({res['meta']['n_samples']} samples, "
        f"{res['meta']['n_patients']} patients, {res['meta']['cv']['scheme']} x{res['meta']['cv']['k']}), "
        f"config {args.config}"
    )
    print(f"{'variant':<18}{'acc':>7}{'P':>7}{'R':>7}{'F1':>7}{'boot acc':>16}{'paper':>7}{'train/s':>9}{'infer/s':>9}")
    for r in res["rows"]:
        if "accuracy" not in r:
            print(f"{r['variant']:<18} skipped: {r.get('skipped')}")
            continue
        p = paper.get(r["variant"])
        print(
            f"{r['variant']:<18}{r['accuracy']:7.3f}{r['precision']:7.3f}{r['recall']:7.3f}{r['f1']:7.3f}"
            f"{r['boot_mean']:9.3f} ± {r['boot_std']:.3f}{(f'{p:7.2f}' if p is not None else '      –')}"
            f"{r['train_samples_per_s']:9.1f}{r['inference_clips_per_s']:9.1f}"
        )
    from sonotell.eval.report import ordering_sentence

    print(ordering_sentence(res["rows"]))
    from sonotell.files import write_json

    write_json(
        args.json,
        {
            "benchmark": str(bench_dir),
            "config": args.config,
            "overrides": overrides,
            "seed": args.seed,
            "threads": args.threads,
            "build_s": build_s,
            "experiment_s": run_s,
            "machine": platform.processor() or platform.machine(),
            "rows": res["rows"],
            "meta": {k: v for k, v in res["meta"].items() if k != "config"},
            "results_md": str(md),
        },
    )
    print(f"wrote {args.json} and {md}")


if __name__ == "__main__":
    main()

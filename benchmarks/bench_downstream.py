"""Benchmark: pretrained vs random init on ``pocus`` downstream classification, every recipe + ablations.

One run, one table: each self-supervised recipe (show_from_tell, dual, av_contrastive) and
the Show from Tell ablations (without audio / text / SIG / spatial fusion) is pretrained on
the benchmark (no labels read), then its video encoder is fine-tuned on the clip labels
(COVID-19 / pneumonia / regular / viral) under patient-level k-fold CV; the same
architecture is fine-tuned from random initialisation on the same folds. Reported: macro
precision / recall / F1 over scans (mean +- std over folds) and the paired per-fold F1
margin over random init (mean +- std). The papers report +5 to +10 points.

Pretraining sees every scan (it reads no labels): the usual protocol of these papers, noted
here because the test folds' videos are therefore not unseen by the encoder.

    python benchmarks/bench_downstream.py --bench bench_out/pocus            # small config, 5 folds
    # 3 folds, 1+2 epochs, 3 recipes, no ablations:
    python benchmarks/bench_downstream.py --bench bench_out/pocus --quick
    python benchmarks/bench_downstream.py --bench bench_out/synthetic --build --quick   # no ../shared needed

Prints the table and writes JSON (default bench_out/bench_downstream.json).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench", type=Path, default=Path("bench_out/pocus"), help="benchmark folder")
    ap.add_argument("--build", action="store_true", help="build the benchmark (named by the folder's name) if missing")
    ap.add_argument("--config", default="small", help="downstream config: small or paper or a YAML path")
    ap.add_argument(
        "--work",
        type=Path,
        default=Path("bench_out/downstream_work"),
        help="pretraining + fine-tuning output (resumable)",
    )
    ap.add_argument("--folds", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=None, help="fine-tuning epochs")
    ap.add_argument("--pretrain-epochs", type=int, default=None)
    ap.add_argument("--quick", action="store_true", help="3 folds, 1 pretraining + 2 fine-tuning epochs, no ablations")
    ap.add_argument("--set", action="append", default=[], help="extra downstream config override key=value")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("bench_out/bench_downstream.json"))
    ap.add_argument("--pairs", default="", help="extra paired comparisons A:B,C:D (row names), 95%% intervals")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from sonotell.bench import ensure_benchmark
    from sonotell.errors import SonotellError
    from sonotell.files import write_json
    from sonotell.methods.downstream import results_table, run_experiment

    try:
        ensure_benchmark(args.bench, build=args.build, seed=args.seed)
    except SonotellError as e:
        raise SystemExit(str(e)) from None

    overrides = []
    folds = args.folds or (3 if args.quick else None)
    epochs = args.epochs or (2 if args.quick else None)
    pre_epochs = args.pretrain_epochs or (1 if args.quick else None)
    if folds:
        overrides.append(f"folds={folds}")
    if epochs:
        overrides.append(f"finetune.epochs={epochs}")
    if pre_epochs:
        overrides.append(f"pretrain.overrides=[train.epochs={pre_epochs}]")
    if args.quick:
        overrides.append(
            "variants=[{name: show_from_tell, recipe: show_from_tell}, {name: dual, recipe: dual}, "
            "{name: av_contrastive, recipe: av_contrastive}]"
        )
    overrides += args.set

    t0 = time.perf_counter()
    md = run_experiment(args.bench, args.work, args.config, overrides, args.seed)
    seconds = time.perf_counter() - t0
    results = json.loads((Path(md).parent / "results.json").read_text())
    rows = results_table(results)
    print(
        f"\n{results['n_scans']} scans / {results['n_subjects']} subjects, "
        f"{results['config']['folds']}-fold patient-level CV, {seconds:.0f} s"
    )
    cols = list(rows[0])
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in cols]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    for r in rows:
        print("  ".join(str(r[c]).ljust(w) for c, w in zip(cols, widths)))
    pairs = {}
    from sonotell.eval.paired import describe
    from sonotell.methods.downstream import paired_comparison

    for pair in filter(None, args.pairs.split(",")):
        a, b = pair.split(":")
        pairs[pair] = paired_comparison(results["variants"][a], results["variants"][b], args.seed)
        print(f"{a} vs {b}: F1 " + "; ".join(f"over {unit}: {describe(c)}" for unit, c in pairs[pair].items()))
    write_json(
        args.out,
        {
            "seconds": round(seconds, 1),
            "overrides": overrides,
            "table": rows,
            "pairs": pairs,
            "results": results,
            "markdown": str(md),
        },
    )
    print(f"wrote {args.out} and {md}")


if __name__ == "__main__":
    main()

"""Benchmark: `sonotell train` on speech labels vs the same model on true labels, repeated subject-grouped splits.

A benchmark (e.g. pocus + covid_blues combined with `sonotell bench combine`) is treated as a user's
data: its narrated scans are labelled by the default speech pipeline (`sonotell label ... --lexicon
lung`), and the multi-label finding classifier is trained once on those speech labels and once on
the benchmark's ground truth (the findings visible in each clip), with the same subjects, encoder,
config and seed. Ground truth is never used to train the speech model.

Protocol: for each seed, K folds of whole subjects (``sonotell.eval.cv.grouped_kfold``: a subject
on both sides raises ``SubjectLeakError``); every model of one (seed, fold) is scored on the same
held-out scans against ground truth. Clip level: each scan counted once, its score the mean of its
frames' probabilities. Per label and macro: AUROC, average precision and F1 (threshold chosen per
label on the training split), beside "all present" and "prior"; paired 95 % bootstrap intervals
over the (seed, fold) units for speech − truth, speech ÷ truth and model − baseline
(``sonotell.eval.paired``).

    python -m sonotell bench build pocus --out bench_out/pocus
    python -m sonotell bench build covid_blues --out bench_out/covid_blues
    python -m sonotell bench combine bench_out/pocus bench_out/covid_blues --out bench_out/lung
    python -m sonotell label bench_out/lung --lexicon lung --out bench_out/lung_labels
    python benchmarks/bench_train_speech.py --bench bench_out/lung --labels bench_out/lung_labels --splits 5 --seeds 0,1

Only the scans the labels folder holds are used (a partial `sonotell label` run can be used). The
default targets mask what nobody mentioned; `--set unknown=weak_negative` takes it as a weak negative
(the better of the two in docs/results.md, 2026-12-05). One torch thread by default (`--threads`).
Prints a table and writes JSON (default bench_out/bench_train_speech.json).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from sonotell.data.dataset import load_dataset
from sonotell.files import write_json
from sonotell.methods.frame_classifier import cross_validate

METRICS = (("auroc", "AUROC", 0.95), ("average_precision", "AP", 0.90), ("f1", "F1", 0.90))
# small enough that 2 sources x 5 folds x 2 seeds finish in about half an hour on a loaded 2-core CPU
BASE = ["multilabel=true", "size=[64,64]", "frame_step=1", "max_frames_per_scan=4", "train.epochs=5"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", type=Path, default=Path("bench_out/lung"))
    ap.add_argument("--labels", type=Path, default=Path("bench_out/lung_labels"))
    ap.add_argument("--lexicon", default="lung")
    ap.add_argument("--out", type=Path, default=Path("bench_out/train_speech"))
    ap.add_argument("--cache", type=Path, default=None, help="frame cache folder (default: OUT/cache)")
    ap.add_argument("--splits", type=int, default=5, help="subject-grouped folds per seed")
    ap.add_argument("--seeds", default="0,1", help="comma-separated seeds (each: its own K-fold split)")
    ap.add_argument("--level", default="clip", choices=("clip", "frame"))
    ap.add_argument("--max-scans", type=int, default=0, help="use at most this many labelled scans (0: all)")
    ap.add_argument("--set", action="append", default=[], help="config override for both runs, e.g. train.epochs=4")
    ap.add_argument("--json", type=Path, default=Path("bench_out/bench_train_speech.json"))
    ap.add_argument(
        "--threads", type=int, default=1, help="torch threads (on a loaded 2-core machine 2 threads ran 25x slower)"
    )
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    ds = load_dataset(args.bench, labels=args.labels, lexicon=args.lexicon)
    labelled = set(ds.labelled_scans())
    n_all = len(ds.scans)
    ds.scans = [s for s in ds.scans if s.scan_id in labelled]
    if args.max_scans:
        ds.scans = ds.scans[: args.max_scans]
    print(f"{len(ds.scans)} of {n_all} scans labelled by speech, {len(ds.subjects)} subjects", flush=True)
    over = [*BASE, *args.set]
    seeds = [int(s) for s in args.seeds.split(",")]
    result = cross_validate(
        ds, args.out, folds=args.splits, seeds=seeds, overrides=over, cache_dir=args.cache or args.out / "cache"
    )
    seconds = time.perf_counter() - t0
    rows, goals = table(result, args.level)
    print_table(rows)
    for g in goals:
        print(("MET   " if g["met"] else "MISSED") + "  " + g["goal"] + f"  ({g['value']})")
    print(f"{len(result['runs'])} runs in {seconds:.0f} s", flush=True)
    write_json(
        args.json,
        {
            "scans": len(ds.scans),
            "subjects": len(ds.subjects),
            "level": args.level,
            "clip_aggregate": "mean",
            "config_overrides": over,
            "seconds": round(seconds, 1),
            "goals": goals,
            "table": rows,
            **result,
        },
    )


def _fmt(v, signed: bool = False) -> str:
    if v is None:
        return "–"
    return f"{v:+.3f}" if signed else f"{v:.3f}"


def _ci(r: dict | None) -> str:
    if r is None:
        return "–"
    return f"{r['mean']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}]"


def _ratio(r: dict | None) -> str:
    if r is None or r["ratio"] is None:
        return "–"
    return f"{r['ratio']:.3f} [{_fmt(r['low'])}, {_fmt(r['high'])}]"


def table(result: dict, level: str) -> tuple[list[dict], list[dict]]:
    """Rows per label and macro: speech, truth, baseline, speech ÷ truth and the paired intervals; goal checks."""
    figs = result["summary"]["figures"]
    rows, goals = [], []
    for label in [*result["labels"], "macro"]:
        for metric, short, goal in METRICS:
            cell = figs[f"{metric}/{level}/{label}"]
            sp, tr = cell.get("speech", {}), cell.get("truth", {})
            rows.append(
                {
                    "label": label,
                    "metric": short,
                    "speech": _fmt(sp.get("mean")),
                    "truth": _fmt(tr.get("mean")),
                    "all present": _fmt(sp.get("all_present", {}).get("mean")),
                    "prior": _fmt(sp.get("prior", {}).get("mean")),
                    "speech ÷ truth [95 %]": _ratio(cell.get("speech_over_truth")),
                    "speech − truth [95 %]": _ci(cell.get("speech_vs_truth")),
                    "speech − prior [95 %]": _ci(sp.get("vs_prior")),
                    "truth − prior [95 %]": _ci(tr.get("vs_prior")),
                    "speech − all present [95 %]": _ci(sp.get("vs_all_present")),
                    "truth − all present [95 %]": _ci(tr.get("vs_all_present")),
                }
            )
            if label != "macro":
                continue
            r = cell.get("speech_over_truth")
            goals.append(
                {
                    "goal": f"speech ÷ truth macro {short} >= {goal}",
                    "value": _ratio(r),
                    "met": bool(r and r["ratio"] is not None and r["ratio"] >= goal),
                }
            )
            if metric == "f1":
                continue
            for src, entry in (("speech", sp), ("truth", tr)):
                for base in ("all_present", "prior"):
                    d = entry.get(f"vs_{base}")
                    goals.append(
                        {
                            "goal": f"{src} beats {base.replace('_', ' ')} on macro {short} (interval above 0)",
                            "value": _ci(d),
                            "met": bool(d and d["low"] > 0),
                        }
                    )
    return rows, goals


def print_table(rows: list[dict]) -> None:
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(str(r[k]) for k in keys) + " |")


if __name__ == "__main__":
    main()

"""Benchmark: `sonotell train` on speech labels vs the same model on true labels, held-out patients.

The pocus benchmark is treated as a user's data: its narrated scans are labelled by the speech
pipeline (`sonotell label ... --lexicon lung`), and the finding classifier (multi-label over the
lung lexicon: A-lines, B-lines, consolidation, effusion, pleural irregularity, air bronchogram)
is trained once on those speech labels and once on the benchmark's ground truth (the findings
visible in each clip), with the same subject split, encoder, config and seed. Both are scored on
the held-out patients' frames against ground truth. Ground truth is never used to train the
speech model.

    python -m sonotell bench build pocus --out bench_out/pocus
    python -m sonotell label bench_out/pocus --lexicon lung --out bench_out/pocus_labels --workers 2
    python benchmarks/bench_train_speech.py --bench bench_out/pocus --labels bench_out/pocus_labels --seeds 0

Prints a table and writes JSON (default bench_out/bench_train_speech.json).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from sonotell.data.dataset import load_dataset
from sonotell.files import write_json
from sonotell.methods.frame_classifier import load_classifier, train_classifier


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", type=Path, default=Path("bench_out/pocus"))
    ap.add_argument("--labels", type=Path, default=Path("bench_out/pocus_labels"))
    ap.add_argument("--lexicon", default="lung")
    ap.add_argument("--out", type=Path, default=Path("bench_out/train_speech"))
    ap.add_argument("--seeds", default="0", help="comma-separated seeds (each: its own subject split)")
    ap.add_argument("--sources", default="speech,truth", help="speech,truth, or one of them")
    ap.add_argument("--set", action="append", default=[], help="config override for both runs, e.g. train.epochs=4")
    ap.add_argument("--json", type=Path, default=Path("bench_out/bench_train_speech.json"))
    args = ap.parse_args()
    ds = load_dataset(args.bench, labels=args.labels, lexicon=args.lexicon)
    # Only the scans the speech pipeline has labelled (a partial `sonotell label` run can be used): both
    # models then see the same scans and subjects.
    labelled = set(ds.labelled_scans())
    n_all = len(ds.scans)
    ds.scans = [s for s in ds.scans if s.scan_id in labelled]
    print(f"{len(ds.scans)} of {n_all} scans labelled by speech, {len(ds.subjects)} subjects", flush=True)
    base = ["multilabel=true", "frame_step=10", "train.epochs=5", *args.set]
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        for source in args.sources.split(","):
            t0 = time.perf_counter()
            over = [*base, f"labels_from={'labels' if source == 'speech' else 'truth'}"]
            ckpt = train_classifier(
                ds, args.out / f"seed{seed}" / source, overrides=over, seed=seed, cache_dir=args.out / "cache"
            )
            meta = load_classifier(ckpt)[1]
            m = meta["metrics"]["truth"]
            rows.append(
                {
                    "seed": seed,
                    "trained on": source,
                    "train frames": meta["train_frames"],
                    "test subjects": len(meta["test_subjects"]),
                    "test frames": m["frames"],
                    "accuracy": m["accuracy"],
                    "macro_f1": m["macro_f1"],
                    "macro_auc": m["macro_auc"],
                    "seconds": round(time.perf_counter() - t0, 1),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    ratios = {}
    for key in ("accuracy", "macro_f1", "macro_auc"):
        sp = [r[key] for r in rows if r["trained on"] == "speech"]
        tr = [r[key] for r in rows if r["trained on"] == "truth"]
        ratios[key] = sum(sp) / sum(tr) if sp and tr else float("nan")
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(f"{r[k]:.3f}" if isinstance(r[k], float) else str(r[k]) for k in keys) + " |")
    print(
        "speech / truth (mean over seeds): "
        + ", ".join(f"{k} {v:.3f}" for k, v in ratios.items())
        + "  (goal: >= 0.90)"
    )
    write_json(
        args.json,
        {
            "scans": len(ds.scans),
            "subjects": len(ds.subjects),
            "rows": rows,
            "ratio_speech_over_truth": ratios,
            "config_overrides": base,
        },
    )


if __name__ == "__main__":
    main()

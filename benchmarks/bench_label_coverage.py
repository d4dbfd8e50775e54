"""How much of a benchmark's truth do speech labels cover, per (frame, label) pair? Compares labels folders.

For each labels folder (format 1 or 2; read through ``sonotell.labels``) and each label, over the
scans every folder holds: of the truly present pairs, the share the folder marks present (recall);
of the pairs it marks present, the share truly present (precision); of the pairs it marks absent,
the share truly absent. Truth: the benchmark's ``visible`` spans (``Dataset.truth_states``).

    python benchmarks/bench_label_coverage.py --bench BENCH --lexicon lung --labels v1=LABELS_V1 v2=LABELS_V2 \\
        --out coverage.json
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from sonotell import labels as labels_io
from sonotell.data.dataset import ABSENT, PRESENT, load_dataset
from sonotell.files import write_json


def coverage(bench: Path, labels: Path, lexicon: str, scan_ids: list[str]) -> dict:
    ds = load_dataset(bench, labels=labels, lexicon=lexicon)
    k = len(ds.label_names)
    tp, fp, fn, neg_ok, neg_bad = (np.zeros(k, int) for _ in range(5))
    for sid in scan_ids:
        fs = ds.frame_states(sid)
        truth = ds.truth_states(sid, fs.frame_index, ds.scan(sid).fps)
        p = fs.state
        tp += ((p == PRESENT) & (truth == PRESENT)).sum(0)
        fp += ((p == PRESENT) & (truth == ABSENT)).sum(0)
        fn += ((p != PRESENT) & (truth == PRESENT)).sum(0)
        neg_ok += ((p == ABSENT) & (truth == ABSENT)).sum(0)
        neg_bad += ((p == ABSENT) & (truth == PRESENT)).sum(0)

    def row(a, b, c, d, e):
        return {
            "true_present": int(a + c),
            "present_recall": round(a / (a + c), 3) if a + c else None,
            "present_precision": round(a / (a + b), 3) if a + b else None,
            "marked_absent": int(d + e),
            "absent_precision": round(d / (d + e), 3) if d + e else None,
        }

    out = {name: row(tp[j], fp[j], fn[j], neg_ok[j], neg_bad[j]) for j, name in enumerate(ds.label_names)}
    out["all"] = row(tp.sum(), fp.sum(), fn.sum(), neg_ok.sum(), neg_bad.sum())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", type=Path, required=True)
    ap.add_argument("--lexicon", default="lung")
    ap.add_argument("--labels", nargs="+", required=True, help="NAME=FOLDER, one per labels folder")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    folders = dict(item.split("=", 1) for item in args.labels)
    ids = sorted(set.intersection(*(set(labels_io.scan_ids(f)) for f in folders.values())))
    result = {"bench": str(args.bench), "n_scans": len(ids), "folders": folders, "coverage": {}}
    for name, folder in folders.items():
        result["coverage"][name] = coverage(args.bench, Path(folder), args.lexicon, ids)
    print(f"{len(ids)} scans held by every folder")
    print(f"{'label':22s} {'folder':6s} {'present':>8s} {'recall':>7s} {'prec':>6s} {'absent':>7s} {'prec':>6s}")
    for label in next(iter(result["coverage"].values())):
        for name, cov in result["coverage"].items():
            r = cov[label]
            print(
                f"{label:22s} {name:6s} {r['true_present']:8d} {r['present_recall']!s:>7s} "
                f"{r['present_precision']!s:>6s} {r['marked_absent']:7d} {r['absent_precision']!s:>6s}"
            )
    if args.out:
        write_json(args.out, result)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

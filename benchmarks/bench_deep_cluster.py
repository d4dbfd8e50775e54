"""Benchmark: deep clustering and multi-label semi-supervised learning (Dadoun et al. 2023).

Tasks (real data from ../shared/data, read here; the package itself takes any frame folder):
  abdominal  organ presence from the 60 masked abdominal frames + 556 unlabelled frames,
             subject = filename prefix;
  speech     item 6: the narrated ``abdominal`` benchmark (built here from the 19 sweeps with
             masks unless --bench-folder is given); the speech pipeline's organ labels for the
             60 masked frames are compared with the masks and used as the labelled set;
  pocus      lung findings (effusion, consolidations, B-lines, A-lines, pleural irregularities)
             of POCUS clip frames, subject = patient id; a few frames per clip are labelled
             with the clip's findings, more frames of the same clips are left unlabelled.

Prints the paper's tables and writes JSON (default bench_out/deep_cluster/bench_<task>.json).

    python benchmarks/bench_deep_cluster.py --quick                # reduced: 1 seed, 1 fold
    python benchmarks/bench_deep_cluster.py --task both            # full small-config table
    python benchmarks/bench_deep_cluster.py --set experiment.seeds=[0] --set semisup.steps=50
    python benchmarks/bench_deep_cluster.py --task speech --set experiment.seeds=[0]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
POCUS_FINDINGS = ["Effusion", "Consolidations", "B-lines", "A-lines", "Pleural line irregularities", "Air bronchogram"]
QUICK = [
    "experiment.seeds=[0]",
    "experiment.max_folds=1",
    "experiment.lambdas=[0.5,2.0,10.0]",
    "experiment.fractions=[0.1,1.0]",
    "semisup.steps=100",
    "clustering.epochs=8",
]


def pocus_frames(
    root: Path, size: tuple[int, int], labelled_per_clip: int = 2, unlabelled_per_clip: int = 4, stride: int = 8
):
    """A FrameSet of POCUS frames: the first frames of each clip, ``stride`` apart."""
    import pandas as pd

    from sonotell.data.augment import standardise_image
    from sonotell.data.frames import FrameSet
    from sonotell.errors import InputError
    from sonotell.io.video import iter_frames

    meta = pd.read_csv(root / "dataset_metadata.csv")
    videos = {p.stem: p for p in sorted((root / "pocus_videos").glob("*/*")) if p.is_file()}
    images, labels, labelled, groups, names = [], [], [], [], []
    want = labelled_per_clip + unlabelled_per_clip
    for _, row in meta[meta["Filename"].isin(videos)].iterrows():
        y = pd.to_numeric(row[POCUS_FINDINGS], errors="coerce")
        if y.isna().any():
            logging.warning("%s: findings missing in the metadata; clip skipped", row["Filename"])
            continue
        patient = row["Patient ID / Name"]
        group = f"p{int(patient)}" if pd.notna(patient) else f"clip:{row['Filename']}"
        taken = 0
        try:
            for i, frame in enumerate(iter_frames(videos[row["Filename"]])):
                if i % stride:
                    continue
                images.append(standardise_image(frame, size, str(videos[row["Filename"]])))
                labels.append(y.to_numpy(np.float32))
                labelled.append(taken < labelled_per_clip)
                groups.append(group)
                names.append(f"{row['Filename']}#{i}")
                taken += 1
                if taken == want:
                    break
        except InputError as e:
            logging.warning("%s; clip skipped", e)
    labels_arr = np.stack(labels)
    labels_arr[~np.array(labelled)] = 0
    fs = FrameSet(np.stack(images), labels_arr, np.array(labelled), np.array(groups), names, POCUS_FINDINGS)
    return fs.drop_absent_classes()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", choices=["abdominal", "pocus", "both", "speech"], default="abdominal")
    ap.add_argument(
        "--bench-folder",
        type=Path,
        default=None,
        help="speech task: a built abdominal benchmark (else built under --out)",
    )
    ap.add_argument("--data", type=Path, default=SHARED, help="folder holding abdominal_us/ and pocus/")
    ap.add_argument("--config", default="small")
    ap.add_argument("--set", action="append", default=[], help="config override key=value (repeatable)")
    ap.add_argument("--quick", action="store_true", help="1 seed, 1 fold, fractions 10/100 %%, 3 lambdas, 100 steps")
    ap.add_argument("--out", type=Path, default=ROOT / "bench_out" / "deep_cluster")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    import warnings

    warnings.filterwarnings("ignore", module="lightning")
    from sonotell.config import load_config
    from sonotell.data.frames import FrameSet, load_frames
    from sonotell.methods.deep_cluster import run_experiment

    overrides = (QUICK if args.quick else []) + args.set
    cfg = load_config("methods/deep_cluster", args.config, overrides)
    size = tuple(cfg["image_size"])
    tasks = ["abdominal", "pocus"] if args.task == "both" else [args.task]
    results = {"config": args.config, "overrides": overrides, "seed": args.seed, "tasks": {}}
    for task in tasks:
        out = args.out / task
        cache = out / f"frameset_{size[0]}x{size[1]}.npz"
        start = time.time()

        def progress(done: int, total: int, message: str = "", task=task, start=start) -> None:
            print(f"[{task} {time.time() - start:6.0f}s] {done}/{total} {message}", flush=True)

        if task == "speech":
            results["tasks"][task] = speech_task(args, cfg, size, out, cache, progress)
            continue
        if cache.exists():
            frames = FrameSet.load(cache)
        elif task == "abdominal":
            frames = load_frames(
                args.data / "abdominal_us", size, min_area_fraction=float(cfg["data"]["min_area_fraction"])
            )
            frames.save(cache)
        else:
            frames = pocus_frames(args.data / "pocus", size)
            frames.save(cache)
        report = run_experiment(frames, out, cfg, None, args.seed, progress)
        summary = json.loads((out / "results.json").read_text())["summary"]
        results["tasks"][task] = {
            "summary": summary,
            "n_frames": len(frames.images),
            "n_labelled": int(frames.labelled.sum()),
            "classes": frames.classes,
            "seconds": round(time.time() - start, 1),
            "report": str(report),
        }
        print(report.read_text())
    out_json = args.out / f"bench_{args.task}.json"  # one file per task selection: runs of other tasks are kept
    from sonotell.files import write_json

    write_json(out_json, results)
    print(f"wrote {out_json}")


def speech_task(args, cfg: dict, size, out: Path, cache: Path, progress) -> dict:
    """Item 6: speech labels of the masked frames vs. masks, and as training labels."""
    from sonotell.data.frames import FrameSet, load_benchmark_frames
    from sonotell.eval.multilabel import multilabel_report
    from sonotell.methods.deep_cluster import run_speech_labels

    start = time.time()
    bench = args.bench_folder
    if bench is None:
        from sonotell.bench import build_benchmark

        n_sweeps_with_masks = 19  # abdominal: subjects a, b, g, h; the builder puts sweeps with masks first
        bench = build_benchmark(
            "abdominal",
            out / "benchmark",
            overrides=[f"limit={n_sweeps_with_masks}", f"data_root={args.data}"],
            progress=progress,
        )
    if cache.exists():
        frames = FrameSet.load(cache)
    else:
        from sonotell.speech.pipeline import SpeechPipeline

        pipe = SpeechPipeline.from_config("speech", lexicon="abdominal")
        frames = load_benchmark_frames(
            bench,
            size,
            events_of=lambda scan: pipe.label_scan(scan).events,
            min_area_fraction=float(cfg["data"]["min_area_fraction"]),
            progress=progress,
        )
        frames.save(cache)
    speech_seconds = round(time.time() - start, 1)
    oracle = load_benchmark_frames(
        bench, size, events_of=None, min_area_fraction=float(cfg["data"]["min_area_fraction"])
    )
    lab = oracle.labelled
    oracle_agreement = multilabel_report(oracle.labels[lab], oracle.weak_labels[lab], oracle.classes)["weighted"]
    report = run_speech_labels(frames, out, cfg, None, args.seed, progress)
    print(report.read_text())
    print(f"narration script (oracle transcript) vs masks, weighted: {oracle_agreement}")
    data = json.loads((out / "speech_labels.json").read_text())
    return {
        "agreement": data["agreement"]["weighted"],
        "per_class": data["agreement"]["per_class"],
        "oracle_transcript_agreement": oracle_agreement,
        "summary": data["summary"],
        "n_labelled": int(frames.labelled.sum()),
        "n_frames": len(frames.images),
        "speech_pipeline_and_load_seconds": speech_seconds,
        "seconds": round(time.time() - start, 1),
        "report": str(report),
    }


if __name__ == "__main__":
    main()

r"""Benchmark: audio-guided localisation on ``abdominal`` — pointing game vs organ masks, and speed.

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
    # 1 pretraining epoch, small model speed only:
    python benchmarks/bench_localise.py --bench bench_out/abdominal --quick
    python benchmarks/bench_localise.py --bench bench_out/synthetic --build    # no ../shared needed
    # keyword speech input (config ``keywords``): the terms `sonotell label` spotted, no waveform
    sonotell label bench_out/abdominal --lexicon abdominal --out bench_out/abdominal_labels
    python benchmarks/bench_localise.py --bench bench_out/abdominal --config keywords \
        --transcripts bench_out/abdominal_labels

For a keyword model the table adds the fraction of scored frames whose window holds a
spotted term, the frame-level term-presence AUC on the held-out masked frames (can the
visual side tell the organs apart at all?) and, as a diagnostic only, the pointing game of
the annotated organ's term (a human label, so not audio-guided).

Prints a table and writes JSON (default bench_out/bench_localise.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from sonotell.methods.localise import uses_keywords


def measure_fps(
    model,
    size=(224, 224),
    n_frames: int = 1,
    audio_s: float = 0.6,
    batch: int = 16,
    batches: int = 4,
    sample_rate_hz: int = 16000,
) -> float:
    """Frames per second of ``model.localisation_map`` on random inputs (after one warm-up batch).

    A keyword model gets one-hot terms (its speech input is the pipeline's spotted terms, whose
    cost is the speech pipeline's, measured in docs/speech.md)."""
    model.eval()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, n_frames, *size, generator=g)
    if uses_keywords(model):
        a = torch.nn.functional.one_hot(torch.arange(batch) % len(model.term_labels), len(model.term_labels)).float()
    else:
        a = torch.randn(batch, int(audio_s * sample_rate_hz), generator=g) * 0.1
    with torch.no_grad():
        model.localisation_map(x, a)
        t0 = time.perf_counter()
        for _ in range(batches):
            model.localisation_map(x, a)
        dt = time.perf_counter() - t0
    return batch * batches / dt


METRICS = ("kl", "nss", "auc_judd", "cc", "sim", "comp")


def term_presence(
    bench, model, scan_ids, size, min_fraction: float = 0.005, batch: int = 16, n_frames: int = 1, frame_stride: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Each keyword's frame-level score (``model.term_scores``) and whether that organ is in the
    mask (>= ``min_fraction`` of the pixels), over the distinct masked frames of ``scan_ids``
    (sector-cropped as in scoring); the masks are read here only to evaluate.
    """
    from sonotell.methods.localise import clips_around, scan_roi, sector_frames

    labels = model.term_labels
    frames, present = [], []
    for sid in scan_ids:
        truth = bench.truth(sid)
        seen, wanted = set(), []
        for k, path in sorted(truth["masks"].items(), key=lambda kv: int(kv[0])):
            if path not in seen:
                seen.add(path)
                wanted.append(int(k))
        if not wanted:
            continue
        scan = bench.scan(sid)
        frames += list(
            clips_around(sector_frames(scan.video_path, size, scan_roi(scan)), wanted, n_frames, frame_stride)
        )
        for j in wanted:
            mask = bench.mask(sid, j)
            present.append(
                [
                    lab in bench.mask_classes and np.mean(mask == bench.mask_classes.index(lab)) >= min_fraction
                    for lab in labels
                ]
            )
    if not frames:
        return np.zeros((0, len(labels)), np.float32), np.zeros((0, len(labels)), bool)
    x = torch.from_numpy(np.stack(frames).astype(np.float32) / 255.0)
    with torch.no_grad():
        scores = torch.cat([model.term_scores(x[i : i + batch]) for i in range(0, len(x), batch)]).numpy()
    return scores, np.array(present, bool)


def presence_auc(scores: np.ndarray, present: np.ndarray, labels: list[str]) -> dict:
    """Per-keyword ROC AUC of ``term_presence``'s scores (pooled over folds), and their mean:
    can the visual side tell the organs apart at all?"""
    from sklearn.metrics import roc_auc_score

    per = {}
    for k, lab in enumerate(labels):
        if 0 < present[:, k].sum() < len(present):
            per[lab] = {"auc": float(roc_auc_score(present[:, k], scores[:, k])), "n_present": int(present[:, k].sum())}
    return {
        "n_frames": len(scores),
        "per_term": per,
        "macro_auc": float(np.mean([v["auc"] for v in per.values()])) if per else float("nan"),
    }


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
        "random init": saliency_cv(
            lambda: model_for_recipe(ckpt["recipe"], ckpt["config"]), data, folds, cfg, work / "random", seed
        ),
        "pretrained": saliency_cv(lambda: load_encoder(checkpoint)[0], data, folds, cfg, work / "pretrained", seed),
    }
    return {
        "n_frames": int(len(data.images)),
        "subjects": sorted(set(data.subject_ids.tolist())),
        "epochs": epochs,
        "results": results,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench", type=Path, default=Path("bench_out/abdominal"), help="benchmark folder")
    ap.add_argument("--build", action="store_true", help="build the benchmark (named by the folder's name) if missing")
    ap.add_argument(
        "--checkpoint", type=Path, default=None, help="show_from_tell encoder.pt; default: pretrain one here"
    )
    ap.add_argument("--work", type=Path, default=Path("bench_out/localise_work"), help="pretraining output folder")
    ap.add_argument("--epochs", type=int, default=None, help="pretraining epochs (default: the small config's)")
    ap.add_argument(
        "--protocol",
        choices=("split", "loso"),
        default="split",
        help=(
            "split: pretrain on the subjects without masks, score the masked ones; loso: one model per masked subject, "
            "pretrained on all the other subjects (their narration included)"
        ),
    )
    ap.add_argument(
        "--pretrain-on-all",
        action="store_true",
        help="pretrain on every scan, scored ones included (no labels or masks are read)",
    )
    ap.add_argument(
        "--config",
        default="small",
        help="show_from_tell config to pretrain: small (raw audio) or keywords (spotted terms; needs --transcripts)",
    )
    ap.add_argument(
        "--transcripts",
        type=Path,
        default=None,
        help="speech-pipeline output folder (sonotell label) of the benchmark: the keyword model's input",
    )
    ap.add_argument(
        "--keyword-map",
        choices=("score", "contrast"),
        default=None,
        help="keyword model: map read-out (default: the checkpoint's)",
    )
    ap.add_argument(
        "--pretrain-set", action="append", default=[], help="override of the show_from_tell config, repeatable"
    )
    ap.add_argument(
        "--size", type=int, default=None, help="scoring resolution (default: the checkpoint's training size)"
    )
    ap.add_argument(
        "--single-frame",
        action="store_true",
        help="feed the scored frame alone (the old protocol) instead of the training clip length around it",
    )
    ap.add_argument(
        "--full-frames",
        action="store_true",
        help="score on full frames (default: cropped to the sector, as pretraining sees them)",
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--quick", action="store_true", help="1 pretraining epoch (unless --epochs); speed of the small model only"
    )
    ap.add_argument("--no-saliency", action="store_true", help="skip the saliency-prediction transfer table")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("bench_out/bench_localise.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from sonotell.bench import ensure_benchmark
    from sonotell.errors import SonotellError
    from sonotell.files import write_json
    from sonotell.methods.localise import load_localiser, score_localisation, summarise_localisation
    from sonotell.methods.pretrain import model_from_config, pretrain, resolve_config
    from sonotell.train import load_model_checkpoint

    try:
        bench = ensure_benchmark(args.bench, build=args.build, seed=args.seed)
    except SonotellError as e:
        raise SystemExit(str(e)) from None

    masked = {s.scan_id for s in bench.scans if bench.truth(s.scan_id)["masks"]}
    scored_ids = [s.scan_id for s in bench.scans if s.scan_id in masked]
    held_subjects = sorted({s.subject_id for s in bench.scans if s.scan_id in masked})
    epochs = args.epochs or (1 if args.quick else None)
    overrides = (
        ([f"train.epochs={epochs}"] if epochs else [])
        + ([f"data.transcripts={args.transcripts}"] if args.transcripts else [])
        + args.pretrain_set
    )
    # (name, pretraining scans or None for --checkpoint, scored scans)
    if args.checkpoint is not None:
        folds = [("given", None, scored_ids)]
    elif args.protocol == "loso":  # each masked subject scored by a model pretrained on every other subject
        folds = [
            (
                f"fold_{g}",
                [s.scan_id for s in bench.scans if s.subject_id != g],
                [i for i in scored_ids if bench.scan(i).subject_id == g],
            )
            for g in held_subjects
        ]
    else:
        pretrain_scans = [s.scan_id for s in bench.scans if s.subject_id not in held_subjects] or [
            s.scan_id for s in bench.scans
        ]
        if args.pretrain_on_all:  # unlabelled pretraining on every scan, as the papers do
            pretrain_scans = [s.scan_id for s in bench.scans]
        folds = [("split", pretrain_scans, scored_ids)]
    keywords = args.config == "keywords" or any("audio_source=keywords" in o for o in args.pretrain_set)
    all_rows, fold_info, pres_scores, pres_present = [], [], [], []
    pretrain_s = score_s = model_s = 0.0
    for name, pretrain_scans, fold_scored in folds:
        t0 = time.perf_counter()
        checkpoint = args.checkpoint
        if pretrain_scans is not None:
            checkpoint = pretrain(
                "show_from_tell",
                bench,
                args.work if len(folds) == 1 else args.work / name,
                args.config,
                overrides,
                seed=args.seed,
                scan_ids=pretrain_scans,
            )
            train_subjects = {bench.scan(i).subject_id for i in pretrain_scans}
            assert not train_subjects & {bench.scan(i).subject_id for i in fold_scored} or args.pretrain_on_all, (
                "pretraining and scored subjects overlap"
            )
        pretrain_s += time.perf_counter() - t0
        model, recipe = load_localiser(checkpoint)
        keywords = uses_keywords(model)
        if keywords and args.keyword_map:
            model.keyword_map = args.keyword_map
        cfg = load_model_checkpoint(checkpoint)["config"]
        size = (args.size, args.size) if args.size else tuple(cfg.get("data", {}).get("size", (64, 64)))
        data_cfg = cfg.get("data", {})
        if "audio_before_s" in data_cfg:  # show_from_tell configs name the two sides
            window = (
                float(data_cfg["audio_before_s"]),
                float(data_cfg.get("audio_after_s", data_cfg["audio_before_s"])),
            )
        else:
            window = data_cfg.get("audio_window_s", 0.6)
            window = (window / 2, window / 2) if np.isscalar(window) else tuple(window)
        transcripts = None
        if keywords:
            from sonotell.methods.pretrain import load_transcript_words

            if args.transcripts is None:
                raise SystemExit(
                    "a keyword model reads the spotted terms of the scored scans: "
                    "pass --transcripts <sonotell label folder>"
                )
            transcripts = load_transcript_words(args.transcripts, fold_scored, units="terms", missing_ok=True)
        t0 = time.perf_counter()
        clip = (
            {}
            if args.single_frame
            else {"n_frames": int(data_cfg.get("n_frames", 1)), "frame_stride": int(data_cfg.get("frame_stride", 1))}
        )
        scores = score_localisation(
            bench,
            model,
            scan_ids=fold_scored,
            size=size,
            window_s=window,
            **clip,
            roi=None if args.full_frames else "auto",
            transcripts=transcripts,
        )
        score_s += time.perf_counter() - t0
        model_s += scores["model_seconds"]
        all_rows += scores["rows"]
        if keywords:
            sc, pr = term_presence(bench, model, fold_scored, size, **clip)
            pres_scores.append(sc)
            pres_present.append(pr)
        metrics = {}
        if (checkpoint.parent / "pretrain.json").exists():
            metrics = json.loads((checkpoint.parent / "pretrain.json").read_text())
        fold_info.append(
            {
                "fold": name,
                "checkpoint": str(checkpoint),
                "pretrain_scans": pretrain_scans,
                "scored_scans": fold_scored,
                "n_frames": scores["n_frames"],
                "pointing_game": scores["pointing_game"],
                "train_clips": metrics.get("train_clips"),
                "train_metrics": metrics.get("metrics"),
            }
        )
    scores = {**summarise_localisation(all_rows), "model_seconds": model_s}
    presence = None
    if keywords:  # AUC within each model's own frames (scores of different models are not on one scale), then averaged
        per_fold = [presence_auc(sc, pr, model.term_labels) for sc, pr in zip(pres_scores, pres_present)]
        aucs = [v["auc"] for f in per_fold for v in f["per_term"].values()]
        presence = {
            "n_frames": int(sum(f["n_frames"] for f in per_fold)),
            "macro_auc": float(np.mean(aucs)) if aucs else float("nan"),
            "per_fold": per_fold,
            "pooled_over_models": presence_auc(
                np.concatenate(pres_scores), np.concatenate(pres_present), model.term_labels
            ),
        }

    saliency = None
    if not args.no_saliency:
        saliency = saliency_transfer(
            bench, checkpoint, args.work / "saliency", epochs=3 if args.quick else 10, seed=args.seed
        )

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
        {
            "measure": f"control frames (n={scores['n_control']}): pointing game, right speech",
            "value": scores["pointing_game_control_frames"],
            "goal": "",
        },
        {
            "measure": "  same frames, speech naming another organ",
            "value": scores["other_speech_pointing_game"],
            "goal": "< right speech",
        },
    ]
    if keywords:
        rows += [
            {
                "measure": "scored frames whose window holds a spotted term",
                "value": scores["spotted_fraction"],
                "goal": "",
            },
            {
                "measure": f"term-presence AUC, {presence['n_frames']} masked frames (mean per model/term)",
                "value": presence["macro_auc"],
                "goal": "> 0.5",
            },
            {
                "measure": "diagnostic: pointing game of the annotated term",
                "value": scores["oracle_term_pointing_game"],
                "goal": "not audio-guided",
            },
        ]
    rows += [
        {"measure": f"frames/s at 224x224, {k}, {args.threads} thread(s)", "value": v, "goal": ">= 25"}
        for k, v in speed.items()
    ]
    print(
        f"\nbenchmark {bench.name}: {scores['n_frames']} scored frames (spoken organ with a mask) "
        f"in {len(scored_ids)} scans; scoring size {size}, "
        f"{'full frames' if args.full_frames else 'sector crop'}; {len(folds)} model(s): "
        + ", ".join(
            f"{f['fold']} PG {f['pointing_game']:.3f} (n={f['n_frames']}, {f['train_clips']} train clips)"
            for f in fold_info
        )
    )
    print(f"{'measure':58s} {'value':>8s}  goal")
    for r in rows:
        print(f"{r['measure']:58s} {r['value']:8.3f}  {r['goal']}")
    print("per organ:", ", ".join(f"{k} {v['pointing_game']:.2f} (n={v['n']})" for k, v in scores["per_class"].items()))
    if saliency:
        print(
            f"\nsaliency prediction (head on the video encoder, leave-one-subject-out over {saliency['n_frames']} "
            "masked frames, target = named organs)"
        )
        print(f"{'init':22s} " + " ".join(f"{m:>14s}" for m in METRICS))
        for name, r in saliency["results"].items():
            print(f"{name:22s} " + " ".join(f"{r[m + '_mean']:7.3f}±{r[m + '_std']:.3f}".rjust(14) for m in METRICS))
    write_json(
        args.out,
        {
            "benchmark": str(bench.root),
            "protocol": args.protocol if args.checkpoint is None else "given checkpoint",
            "config": args.config,
            "seed": args.seed,
            "recipe": recipe,
            "folds": fold_info,
            "pretrain_seconds": round(pretrain_s, 1),
            "scoring_seconds": round(score_s, 1),
            "scoring_size": list(size),
            "scoring_input": ("full frames" if args.full_frames else "sector crop")
            + (", single frame" if args.single_frame else ", training clip length"),
            "threads": args.threads,
            "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "rows": rows,
            "scores": {k: v for k, v in scores.items() if k != "rows"},
            "frames": scores["rows"],
            "saliency": saliency,
            "term_presence": presence,
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

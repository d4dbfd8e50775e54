"""The end-to-end demo: narrated scans made from nothing -> labels from speech -> a model -> a report.

Each stage calls the library as a user would:

1. ``benchmark`` — a small synthetic narrated benchmark (simulated sweeps with organs of known
   position, eSpeak narration with a second speaker and noise; ``sonotell.bench``).
2. ``ingest``   — validate every scan into a manifest and decode each video once into a frame
   cache (sector cropped; ``sonotell.io``).
3. ``labels``   — the speech pipeline turns each narration into term events and per-frame labels,
   scored against the benchmark's ground truth (``sonotell.speech``, ``sonotell.eval.labels``).
4. ``train``    — ``sonotell train``: an organ classifier trained on frames labelled *only by
   speech*, and the same network trained on ground-truth (mask) labels for comparison; the
   subjects are split once, the same for both.
5. ``predict``  — ``sonotell predict``: the speech-trained model over the held-out subjects' videos
   (per-frame probabilities, per-scan summary, contact sheets).
6. ``evaluate`` — both models side by side on the held-out subjects against mask-derived truth:
   macro AUROC, average precision and F1 (at the thresholds chosen on the training split) per
   clip and per frame, beside the "all present" and "prior" baselines (from each model's
   ``metrics.json``); plus the organ confusion matrix of each (``sonotell.eval``).
7. ``localise`` — Grad-CAM of the speech-trained model over test frames, scored with the pointing
   game against organ masks, and an overlay image.

Each stage calls the library function behind the public command named in ``COMMANDS`` (the report
lists them), so the demo is also the tutorial of ``docs/quickstart.md``.

A stage whose inputs are missing is reported as skipped, with the reason, instead of failing
the whole run. Everything is written under ``out_dir``; ``report.md`` links it together.

Example:
    >>> report = run_demo("demo_out", seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import logging
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from sonotell.errors import SonotellError
from sonotell.files import write_json, write_text
from sonotell.progress import Progress, silent

log = logging.getLogger(__name__)

WORK_SIZE = (64, 64)  # (height, width) of cached frames the classifier sees
FRAME_STEP = 2  # use every 2nd frame: neighbours at 25 fps are near duplicates
# The public command behind each stage (paths as the demo lays them out under its output folder).
COMMANDS = {
    "benchmark": "sonotell bench build synthetic --out OUT/bench --set subjects=N",
    "ingest": "sonotell ingest OUT/bench/videos --out OUT/manifest.csv --meta OUT/ingest_metadata.csv",
    "labels": "sonotell label OUT/manifest.csv --lexicon abdominal --out OUT/labels "
    "--set align.before_s=0.5 --set align.after_s=1.5",
    "train": "sonotell train --benchmark OUT/bench --labels OUT/labels --lexicon abdominal --out OUT/train/speech "
    "--set size=[64,64] --set train.epochs=E  (and --set labels_from=truth --out OUT/train/truth)",
    "predict": "sonotell predict OUT/train/speech/model.pt <held-out videos> --out OUT/predictions",
    "evaluate": "sonotell eval labels OUT/labels --benchmark OUT/bench --lexicon abdominal; metrics.json of each model",
}


@dataclass
class StageRecord:
    name: str
    status: str = "pending"  # ok | skipped | failed
    seconds: float = 0.0
    note: str = ""


@dataclass
class DemoState:
    out_dir: Path
    seed: int
    subjects: int
    epochs: int
    progress: Progress
    stages: list[StageRecord] = field(default_factory=list)
    bench: object = None
    dataset: object = None  # the benchmark + speech labels as a sonotell Dataset
    scans: list = field(default_factory=list)
    caches: dict = field(default_factory=dict)
    speech: dict = field(default_factory=dict)  # scan_id -> list of per-frame labels (str)
    label_summary: dict = field(default_factory=dict)
    models: dict = field(default_factory=dict)  # "speech" | "truth" -> trained model
    results: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)


def run_demo(
    out_dir: str | Path = "demo_out", *, seed: int = 0, subjects: int = 6, epochs: int = 12, progress: Progress = silent
) -> Path:
    """Run every stage into ``out_dir``; return the path of ``report.md``."""
    from sonotell.seeding import seed_everything

    seed_everything(seed)
    state = DemoState(Path(out_dir), seed, subjects, epochs, progress)
    state.out_dir.mkdir(parents=True, exist_ok=True)
    stages: list[tuple[str, Callable[[DemoState], str]]] = [
        ("benchmark", _stage_benchmark),
        ("ingest", _stage_ingest),
        ("labels", _stage_labels),
        ("train", _stage_train),
        ("predict", _stage_predict),
        ("evaluate", _stage_evaluate),
        ("localise", _stage_localise),
    ]
    for i, (name, fn) in enumerate(stages):
        record = StageRecord(name)
        state.stages.append(record)
        progress(i, len(stages), name)
        t0 = time.perf_counter()
        try:
            record.note = fn(state) or ""
            record.status = "ok"
        except _Skip as e:
            record.status, record.note = "skipped", str(e)
        except (SonotellError, ImportError, RuntimeError, ValueError) as e:
            record.status, record.note = "failed", f"{e.__class__.__name__}: {e}"
            log.warning("demo stage %s failed:\n%s", name, traceback.format_exc())
        record.seconds = time.perf_counter() - t0
    progress(len(stages), len(stages), "report")
    return _write_report(state)


class _Skip(Exception):
    """A stage cannot run because an earlier one did not produce its input."""


def _need(condition, why: str) -> None:
    if not condition:
        raise _Skip(why)


# --- stages ---------------------------------------------------------------------------------


def _stage_benchmark(st: DemoState) -> str:
    from sonotell.bench import build_benchmark, load_benchmark

    path = build_benchmark("synthetic", st.out_dir / "bench", overrides=[f"subjects={st.subjects}"], seed=st.seed)
    st.bench = load_benchmark(path)
    n_subjects = len({s.subject_id for s in st.bench.scans})
    return f"{len(st.bench.scans)} narrated scans of {n_subjects} subjects in {path}"


def _stage_ingest(st: DemoState) -> str:
    from sonotell.io.cache import FrameCache
    from sonotell.io.ingest import ingest

    _need(st.bench is not None, "no benchmark")
    root = st.bench.root
    sidecar = st.out_dir / "ingest_metadata.csv"
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["file", "scan_id", "subject_id", "audio_path", "audio_offset_s"])
    for s in st.bench.scans:
        writer.writerow(
            [Path(s.video_path).name, s.scan_id, s.subject_id, str(Path(s.audio_path).resolve()), s.audio_offset_s]
        )
    write_text(sidecar, buf.getvalue())
    result = ingest(root / "videos", st.out_dir / "manifest.csv", metadata=sidecar, workers=2)
    if result.problems:
        log.warning("ingest problems: %s", "; ".join(map(str, result.problems)))
    _need(result.scans, "ingest found no valid scan")
    st.scans = result.scans
    for scan in st.scans:
        st.caches[scan.scan_id] = FrameCache.build(scan, st.out_dir / "cache", size=WORK_SIZE)
    st.files["manifest"] = "manifest.csv"
    rois = sum(1 for s in st.scans if s.roi is not None)
    return (
        f"{len(st.scans)} scans valid, {len(result.problems)} problems; sector ROI found in {rois}; "
        f"frames cached at {WORK_SIZE[0]}x{WORK_SIZE[1]}"
    )


def labels_config() -> dict:
    """The demo's speech pipeline: ``speech_light`` labelling frames up to 1.5 s after a term.

    In these sweeps an organ stays in view for a second or more after it is named (the papers'
    +-0.3 s suits faster talk).
    """
    from sonotell.config import load_config

    return load_config("pipelines", "speech_light", ["align.before_s=0.5", "align.after_s=1.5"])


def record_labels_run(label_dir: Path, config: dict, lexicon: str) -> None:
    """The run record ``sonotell label`` keeps in its folder: a later ``label`` with another recipe is refused."""
    from sonotell.files import check_run_fingerprint
    from sonotell.speech.lexicon import load_lexicon
    from sonotell.speech.pipeline import recipe_fingerprint

    fingerprint = recipe_fingerprint(config, load_lexicon(lexicon))
    check_run_fingerprint(label_dir, fingerprint, overwrite=True, what="sonotell label")  # the demo owns its folder


def _stage_labels(st: DemoState) -> str:
    from sonotell import labels as labels_io
    from sonotell.eval.labels import evaluate_labels_dir
    from sonotell.speech.batch import label_scans
    from sonotell.speech.lexicon import load_lexicon

    _need(st.scans, "no ingested scans")
    label_dir = st.out_dir / "labels"
    config = labels_config()
    record_labels_run(label_dir, config, "abdominal")
    label_scans(st.scans, label_dir, config=config, lexicon="abdominal", workers=2)
    for scan_id in labels_io.scan_ids(label_dir):
        st.speech[scan_id] = labels_io.read_frames(label_dir, scan_id, load_lexicon("abdominal").labels).single_labels()
    _need(st.speech, "the speech pipeline labelled no scan (see labels/summary.csv)")
    st.label_summary, _ = evaluate_labels_dir(
        label_dir, st.bench, lexicon=load_lexicon("abdominal"), scan_ids=sorted(st.speech), align_config=config["align"]
    )
    write_json(st.out_dir / "labels_eval.json", st.label_summary)
    st.files["labels"] = "labels/"
    s = st.label_summary
    return f"{len(st.speech)} scans labelled; term events P {s['precision']:.2f} R {s['recall']:.2f} F1 {s['f1']:.2f}"


def _train_overrides(st: DemoState) -> list[str]:
    return [
        f"size=[{WORK_SIZE[0]},{WORK_SIZE[1]}]",
        f"frame_step={FRAME_STEP}",
        f"train.epochs={st.epochs}",
        "test_fraction=0.34",
        # the demo's narration names the organ in view and rarely negates one: an organ not named is a
        # weak negative (weight 0.1) rather than no information at all
        "unknown=weak_negative",
        "threshold_on=trained",  # few negated organs to choose thresholds on: count the weak negatives too
    ]


def _stage_train(st: DemoState) -> str:
    from sonotell.data.dataset import load_dataset
    from sonotell.methods.frame_classifier import load_classifier, train_classifier

    _need(st.speech, "no speech labels")
    ds = load_dataset(st.bench.root, labels=st.out_dir / "labels", lexicon="abdominal")
    ds.scans = [
        s for s in st.scans if s.scan_id in st.speech
    ]  # the scans ingest and label accepted (their ROI, their caches)
    notes = []
    for source in ("speech", "truth"):
        over = [*_train_overrides(st), f"labels_from={'labels' if source == 'speech' else 'truth'}"]
        ckpt = train_classifier(
            ds, st.out_dir / "train" / source, overrides=over, seed=st.seed, cache_dir=st.out_dir / "cache"
        )
        model, meta = load_classifier(ckpt)
        st.models[source] = model
        st.results[f"train_frames_{source}"] = meta["train_frames"]
        st.results.setdefault("metrics", {})[source] = meta["metrics"]
        st.files[f"model_{source}"] = str(ckpt.relative_to(st.out_dir))
        notes.append(f"{source}: {meta['train_frames']} frames")
    st.results["split"] = {
        "train_scans": meta["train_scans"],
        "test_scans": meta["test_scans"],
        "classes": meta["classes"],
    }
    st.dataset = ds
    return (
        "organ classifier trained (sonotell train) on "
        + ", ".join(notes)
        + f"; held-out subjects {', '.join(meta['test_subjects'])}"
    )


def _stage_predict(st: DemoState) -> str:
    from sonotell.methods.predict import predict_scans

    _need("speech" in st.models, "no speech-trained model")
    test = [s for s in st.dataset.scans if s.scan_id in set(st.results["split"]["test_scans"])]
    summary = predict_scans(st.out_dir / st.files["model_speech"], test, st.out_dir / "predictions")
    st.files["predictions"] = "predictions/"
    sheets = sorted((st.out_dir / "predictions").glob("*.sheet.png"))
    if sheets:
        st.files["sheet"] = str(sheets[0].relative_to(st.out_dir))
    return f"{len(test)} held-out scans predicted (sonotell predict) into predictions/ ({summary.name}, contact sheets)"


def _stage_evaluate(st: DemoState) -> str:
    from sonotell.eval.metrics import classification_summary
    from sonotell.eval.plots import confusion_matrix_png
    from sonotell.methods.frame_classifier import gather, method_config, predict_samples

    _need(st.models, "no trained model")
    classes = st.results["split"]["classes"]
    # the organ confusion matrix: frames showing exactly one organ, the model's top organ (argmax)
    cfg = method_config("small", [*_train_overrides(st), "labels_from=truth", "multilabel=false"])
    test = gather(st.dataset, st.results["split"]["test_scans"], cfg, st.out_dir / "cache", "truth")
    _need(len(test.y), "no test frames with a visible organ")
    rows = []
    for source, model in st.models.items():
        pred = predict_samples(model, test, multilabel=False).argmax(1)
        summary = classification_summary(test.y, pred, classes)
        png = confusion_matrix_png(
            st.out_dir / f"confusion_{source}.png",
            summary["confusion_true_normalised"],
            classes,
            title=f"labels from {source}: confusion (rows: true)",
        )
        st.files[f"confusion_{source}"] = png.name
        rows.append(
            {
                "labels from": source,
                "test frames": int(len(test.y)),
                "accuracy": summary["accuracy"],
                "macro precision": summary["precision"],
                "macro recall": summary["recall"],
                "macro F1": summary["f1"],
            }
        )
    st.results["classification"] = rows
    write_json(st.out_dir / "classification.json", rows)
    st.results["comparison"] = comparison_rows(st.results.get("metrics", {}))
    speech = next((r for r in st.results["comparison"] if r["model"] == "speech-trained"), None)
    truth = next((r for r in st.results["comparison"] if r["model"] == "truth-trained"), None)
    if speech is None or truth is None:
        return f"{len(test.y)} held-out frames scored"
    return (
        f"clip-level macro AUROC speech {_fmt(speech['clip AUROC'])} vs truth {_fmt(truth['clip AUROC'])}, "
        f"F1 {_fmt(speech['clip F1'])} vs {_fmt(truth['clip F1'])} on {len(test.y)} held-out frames"
    )


def comparison_rows(metrics: dict) -> list[dict]:
    """Speech-trained, truth-trained and both baselines side by side: macro figures per clip and per frame."""
    rows = []
    cols = [(lv, m, short) for lv in ("clip", "frame") for m, short in METRIC_NAMES]
    for source in ("speech", "truth"):
        m = metrics.get(source)
        if m and m.get("truth"):
            rows.append({"model": f"{source}-trained", **{f"{lv} {sh}": m[mt][lv]["macro"] for lv, mt, sh in cols}})
    ref = metrics.get("truth") or metrics.get("speech")
    if ref and ref.get("truth"):
        for base in ("all_present", "prior"):
            b = ref["baselines"][base]
            rows.append({"model": base.replace("_", " "), **{f"{lv} {sh}": b[mt][lv]["macro"] for lv, mt, sh in cols}})
    return rows


METRIC_NAMES = (("auroc", "AUROC"), ("average_precision", "AP"), ("f1", "F1"))


def _stage_localise(st: DemoState) -> str:
    import torch

    from sonotell.eval.gradcam import GradCAM, save_overlay
    from sonotell.eval.localisation import pointing_game_accuracy

    _need("speech" in st.models, "no speech-trained model")
    model = st.models["speech"]
    classes = st.results["split"]["classes"]
    frames, masks, targets = [], [], []
    for scan_id in st.results["split"]["test_scans"]:
        cache = st.caches[scan_id]
        for i in range(0, cache.n_frames, FRAME_STEP * 4):
            full = st.bench.mask(scan_id, i)
            if full is None:
                continue
            mask = _resize_mask(_crop_mask(full, cache.roi), WORK_SIZE)
            organ = _dominant_class(mask, len(st.bench.mask_classes))
            if organ is None:
                continue
            name = st.bench.mask_classes[organ]
            if name not in classes:
                continue
            frames.append(cache.frames(i, i + 1)[0].astype(np.float32) / 255.0)
            masks.append(mask == organ)
            targets.append(classes.index(name))
    _need(frames, "no masked test frame")
    # layer2 gives an 8x8 map at the 64x64 working size; layer3's 4x4 is too coarse to point with
    cam = GradCAM(model, model.encoder.net.layer2)
    heats = cam(torch.from_numpy(np.stack(frames)), target=torch.tensor(targets)).numpy()
    accuracy, n = pointing_game_accuracy(heats, masks, tolerance_px=4.0)
    centre = np.zeros_like(heats)
    h, w = heats.shape[1:]
    centre[:, h // 2 - 1 : h // 2 + 1, w // 2 - 1 : w // 2 + 1] = 1.0  # the usual centre-bias baseline
    centre_accuracy, _ = pointing_game_accuracy(centre, masks, tolerance_px=4.0)
    k = int(np.argmax([m.sum() for m in masks]))
    png = save_overlay(
        st.out_dir / "localisation_overlay.png", frames[k], heats[k], title=f"Grad-CAM: {classes[targets[k]]}"
    )
    _outline_mask(png, masks[k])
    st.files["overlay"] = png.name
    st.results["pointing_game"] = {"accuracy": accuracy, "centre_baseline": centre_accuracy, "frames": n}
    return f"pointing game {accuracy:.2f} over {n} test frames (centre baseline {centre_accuracy:.2f})"


# --- helpers --------------------------------------------------------------------------------


def _dominant_class(mask: np.ndarray, n_classes: int, min_fraction: float = 0.03) -> int | None:
    counts = np.bincount(mask.ravel(), minlength=n_classes)
    counts[0] = 0  # background
    best = int(counts.argmax())
    return best if counts[best] >= min_fraction * mask.size else None


def _crop_mask(mask: np.ndarray, roi) -> np.ndarray:
    if roi is None:
        return mask
    x0, y0, x1, y1 = roi
    return mask[y0:y1, x0:x1]


def _resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(mask.astype(np.uint8)).resize((size[1], size[0]), Image.NEAREST))


def _outline_mask(png: Path, mask: np.ndarray) -> None:
    """Draw the ground-truth organ outline (white) on the overlay, so a person can judge the map."""
    from PIL import Image
    from scipy import ndimage

    from sonotell.files import atomic_path

    img = Image.open(png).convert("RGB")
    arr = np.array(img)
    top = arr.shape[0] - (arr.shape[1])  # save_overlay puts a title bar above a square image
    scale = arr.shape[1] // mask.shape[1]
    edge = mask & ~ndimage.binary_erosion(mask)
    big = np.kron(edge, np.ones((scale, scale), bool))
    region = arr[top : top + big.shape[0], : big.shape[1]]
    region[big] = (255, 255, 255)
    with atomic_path(png) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")


def _write_report(st: DemoState) -> Path:
    lines = [
        "# sonotell demo report",
        "",
        f"Seed {st.seed}; synthetic benchmark of {st.subjects} subjects; all data made by the demo.",
        "",
    ]
    lines += ["## Stages", "", "| stage | status | seconds | note |", "|---|---|---|---|"]
    lines += [f"| {r.name} | {r.status} | {r.seconds:.1f} | {r.note} |" for r in st.stages]
    s = st.label_summary
    if s:
        lines += ["", "## Labels from speech (vs. the benchmark's ground truth)", ""]
        keys = [
            k
            for k in (
                "precision",
                "recall",
                "f1",
                "median_start_error_s",
                "p90_start_error_s",
                "frame_accuracy",
                "clinician_recall",
                "other_rejection",
                "negation_errors",
                "term_wer",
                "real_time_factor",
            )
            if s.get(k) is not None
        ]
        lines += _md_table([s], keys)
    comp = st.results.get("comparison")
    if comp:
        test = st.results.get("split", {}).get("test_scans", [])
        lines += ["", "## Speech-trained vs truth-trained on held-out subjects", ""]
        lines += _md_table(comp)
        lines += [
            "",
            f"Macro over the organs, against the benchmark's truth on {len(test)} held-out scans. Clip level counts",
            "each scan once (mean of its frames' probabilities); F1 at the per-organ threshold chosen on the",
            "training split (stored in model.pt, used by `sonotell predict`). 'all present' says every organ is",
            "in every frame; 'prior' guesses each organ at its training rate (AUROC 0.5 and AP = prevalence for",
            "both). Per organ: `train/<source>/metrics.json`.",
        ]
    rows = st.results.get("classification")
    if rows:
        lines += ["", "## Organ classification on held-out subjects", ""]
        lines += _md_table(rows)
        lines += [
            "",
            "Ground truth of test frames: the organ covering most of the frame's mask. 'speech' trains on",
            "frames labelled only by what was said; 'truth' trains the same network on mask labels.",
            "",
        ]
        lines += [
            f"![confusion, labels from {src}]({st.files[f'confusion_{src}']})"
            for src in ("speech", "truth")
            if f"confusion_{src}" in st.files
        ]
    if "pointing_game" in st.results:
        pg = st.results["pointing_game"]
        lines += [
            "",
            "## Localisation",
            "",
            f"Grad-CAM of the speech-trained model, pointing game against organ masks: {pg['accuracy']:.2f} "
            f"over {pg['frames']} test frames (a map peaked at the centre scores {pg['centre_baseline']:.2f}).",
            "",
        ]
        lines += [f"![localisation overlay]({st.files['overlay']})"]
    if "sheet" in st.files:
        lines += [
            "",
            "## Predictions on held-out scans (`sonotell predict`)",
            "",
            f"Per-frame probabilities and a summary in `{st.files['predictions']}`; a contact sheet:",
            "",
            f"![contact sheet]({st.files['sheet']})",
        ]
    lines += ["", "## The same steps as commands", ""] + [f"- {name}: `{cmd}`" for name, cmd in COMMANDS.items()]
    write_json(
        st.out_dir / "demo.json",
        {"stages": [r.__dict__ for r in st.stages], "labels": s, "results": st.results, "files": st.files},
    )
    return write_text(st.out_dir / "report.md", "\n".join(lines) + "\n")


def _md_table(rows: list[dict], keys: list[str] | None = None) -> list[str]:
    """A Markdown table's lines: a header of ``keys`` (default: the first row's), then one line per row."""
    keys = list(rows[0]) if keys is None else keys
    return [
        "| " + " | ".join(keys) + " |",
        "|" + "---|" * len(keys),
        *("| " + " | ".join(_fmt(r[k]) for k in keys) + " |" for r in rows),
    ]


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)

"""``sonotell predict``: a trained classifier over new scans, narrated or silent.

Each video is streamed (decode -> sector crop -> resize -> batch -> model), so memory stays flat
in the video's length: only the current batch of frames, the clip window and one best frame per
label are held. Per scan it writes::

    <scan_id>.probs.csv (or .parquet)   one row per frame: frame_index, time_s, one probability per label
    <scan_id>.sheet.png                 contact sheet: the most confident frame of every label
    <scan_id>.overlay.mp4               optional: the frames with the Grad-CAM map of the top label

plus ``summary.csv`` / ``summary.json``: per scan and label the peak and mean probability, the
share of frames where it is predicted and the time spans where it is (``start_s-end_s``).

Example:
    >>> predict_scans("runs/clf/model.pt", scans, "predictions")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from sonotell.errors import InputError
from sonotell.files import atomic_path, write_json
from sonotell.progress import Progress, silent
from sonotell.types import Scan

log = logging.getLogger(__name__)


def scans_from(paths: list[str | Path]) -> list[Scan]:
    """Scans to predict on: videos, folders of videos, ingest manifests or dataset files; audio is not needed."""
    from sonotell.io.ingest import discover

    scans: list[Scan] = []
    for p in map(Path, paths):
        if not p.exists():
            raise InputError(p, "not found")
        if p.is_dir() and (p / "bench.json").exists() or p.suffix.lower() in (".yaml", ".yml"):
            from sonotell.data.dataset import load_dataset

            scans += load_dataset(p).scans
        elif p.is_dir():
            found = discover(p)
            if not found:
                raise InputError(p, "no video files in this folder")
            scans += [Scan(v.stem, "", v) for v, _ in found]
        elif p.suffix.lower() == ".csv":
            from sonotell.io.manifest import read_manifest

            scans += read_manifest(p).scans
        else:
            scans.append(Scan(p.stem, "", p))
    ids = [s.scan_id for s in scans]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise InputError(paths[0], f"two scans share the id {dup[0]!r} (rename one video)")
    return scans


def dataset_label_sets(paths: list[str | Path]) -> list[tuple[Path, list[str]]]:
    """(path, label set) of each input that is a dataset file or benchmark folder with a label set."""
    from sonotell.data.dataset import load_dataset

    out = []
    for p in map(Path, paths):
        if p.is_dir() and (p / "bench.json").exists() or p.suffix.lower() in (".yaml", ".yml"):
            names = list(load_dataset(p).label_names)
            if names:
                out.append((p, names))
    return out


def check_label_set(
    meta: dict, lexicon: str | Path | None, where: Path, data: list[tuple[Path, list[str]]] | None = None
) -> None:
    """Refuse a model whose label set differs from ``lexicon``'s or a dataset's, naming both (one line)."""
    for path, names in data or []:
        if list(names) != list(meta["classes"]):
            raise InputError(
                path,
                f"the data's label set ({', '.join(names)}) differs from the model's "
                f"({', '.join(meta['classes'])}); give data labelled with the model's lexicon",
            )
    if lexicon is None:
        return
    from sonotell.data.dataset import lexicon_fingerprint
    from sonotell.speech.lexicon import load_lexicon

    lex = load_lexicon(lexicon)
    if list(lex.labels) != list(meta["classes"]):
        raise InputError(
            where,
            f"the model's label set ({', '.join(meta['classes'])}) differs from lexicon "
            f"{str(lexicon)!r} ({', '.join(lex.labels)})",
        )
    if meta.get("lexicon_fingerprint") and meta["lexicon_fingerprint"] != lexicon_fingerprint(lex):
        log.warning("%s: same labels, but the lexicon's spoken forms changed since training", where)


@dataclass
class ScanPrediction:
    scan_id: str
    fps: float
    probs: np.ndarray  # (N, K)
    best: dict = field(default_factory=dict)  # label index -> (prob, frame_index, frame uint8)


def iter_scan_frames(scan: Scan, size: tuple[int, int]) -> Iterator[np.ndarray]:
    """The scan's frames, sector-cropped (its ROI, else detected) and resized as the frame cache does."""
    from sonotell.io.crop import crop, detect_video_roi
    from sonotell.io.video import _resize, iter_frames

    roi = scan.roi if scan.roi is not None else detect_video_roi(scan.video_path)
    frames = (_resize(np.ascontiguousarray(crop(frame, roi)), size) for frame in iter_frames(scan.video_path))
    yield from prefetch(frames)


def prefetch(items: Iterator, depth: int = 128) -> Iterator:
    """``items`` produced on a background thread, at most ``depth`` ahead (bounded memory).

    Decoding (PyAV) and the forward pass (torch) both release the GIL, so the two overlap and
    the input pipeline costs little beyond the model itself.
    """
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def run() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                q.put(item)
            q.put(done)
        except BaseException as e:  # re-raised on the consumer's thread
            q.put(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        while (item := q.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(0.05)


def iter_clips(frames: Iterator[np.ndarray], t: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(i, clip)`` with the (t, H, W) clip centred on frame i, edges repeated (as in training), streaming."""
    before, after = t // 2, t - 1 - t // 2
    buf: list[np.ndarray] = []  # frames i - before .. newest
    first = 0  # index of buf[0]
    n = 0
    for n, f in enumerate(frames, start=1):
        buf.append(f)
        i = n - 1 - after  # the frame whose window is now complete
        if i >= 0:
            yield i, _window(buf, first, i, before, after, n)
            if i - before >= first:
                buf.pop(0)
                first += 1
    for i in range(max(0, n - after), n):
        yield i, _window(buf, first, i, before, after, n)


def _window(buf: list[np.ndarray], first: int, i: int, before: int, after: int, n: int) -> np.ndarray:
    idx = np.clip(np.arange(i - before, i + after + 1), 0, n - 1)
    return np.stack([buf[max(0, min(j - first, len(buf) - 1))] for j in idx])


def predict_scan(
    model, meta: dict, scan: Scan, *, batch_size: int = 64, overlay_path: Path | None = None
) -> ScanPrediction:
    """Probabilities of every frame of ``scan`` (streamed); optionally the Grad-CAM overlay video."""
    from sonotell.io.video import probe_video

    cfg = meta["config"]
    size, t, multilabel = tuple(cfg["size"]), int(cfg["n_frames"]), bool(meta["multilabel"])
    fps = scan.fps or probe_video(scan.video_path).fps or 25.0
    pred = ScanPrediction(scan.scan_id, float(fps), np.zeros((0, len(meta["classes"])), np.float32))
    chunks: list[np.ndarray] = []
    writer = _OverlayWriter(overlay_path, fps, model, meta) if overlay_path is not None else None
    batch_idx: list[int] = []
    batch: list[np.ndarray] = []

    def flush() -> None:
        x = torch.from_numpy(np.stack(batch).astype(np.float32) / 255.0)
        with torch.no_grad():
            logits = model(x)
        p = (torch.sigmoid(logits) if multilabel else torch.softmax(logits, 1)).numpy()
        chunks.append(p)
        for k in range(p.shape[1]):
            j = int(p[:, k].argmax())
            if p[j, k] > pred.best.get(k, (-1.0,))[0]:
                pred.best[k] = (float(p[j, k]), batch_idx[j], batch[j][t // 2].copy())
        if writer is not None:
            writer.add(x, p)
        batch.clear()
        batch_idx.clear()

    try:
        for i, clip in iter_clips(iter_scan_frames(scan, size), t):
            batch.append(clip)
            batch_idx.append(i)
            if len(batch) == batch_size:
                flush()
        if batch:
            flush()
    finally:
        if writer is not None:
            writer.close()
    pred.probs = np.concatenate(chunks) if chunks else pred.probs
    return pred


class _OverlayWriter:
    """Streams overlay frames (Grad-CAM of each frame's top label) into a video, batch by batch."""

    def __init__(self, path: Path, fps: float, model, meta: dict):
        import queue
        import threading

        from sonotell.eval.localisation import write_video

        self.model, self.classes = model, meta["classes"]
        self.layer = model.cam_layer()
        self.q: queue.Queue = queue.Queue(maxsize=4)  # bounded: the encoder never falls far behind
        self.error: list[BaseException] = []

        def frames():
            while (item := self.q.get()) is not None:
                yield from item

        def run():
            try:
                write_video(path, frames(), fps, codec="mpeg4")
            except BaseException as e:  # re-raised in close(), on the caller's thread
                self.error.append(e)
                while self.q.get() is not None:
                    pass

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def add(self, x: torch.Tensor, p: np.ndarray) -> None:
        from sonotell.eval.gradcam import GradCAM
        from sonotell.eval.localisation import overlay

        target = torch.from_numpy(p.argmax(1))
        mid = x[:, x.shape[1] // 2] if x.ndim == 4 else x
        if self.layer is not None:
            heats = GradCAM(self.model, self.layer)(x, target=target).numpy()
        else:
            heats = np.zeros((len(x), 2, 2), np.float32)
        frames = [_scale(overlay(mid[i].numpy(), heats[i]), 4) for i in range(len(x))]
        self.q.put(frames)

    def close(self) -> None:
        self.q.put(None)
        self.thread.join()
        if self.error:
            raise self.error[0]


def _scale(rgb: np.ndarray, k: int) -> np.ndarray:
    return np.repeat(np.repeat(rgb, k, 0), k, 1) if rgb.shape[0] < 128 else rgb


def label_thresholds(meta: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per-label (frame, clip) thresholds stored by `sonotell train` (chosen on its training split).

    A label that was not trainable (no present frame in training) is never predicted (threshold
    +inf). A checkpoint from before thresholds were stored falls back to 0.5 (multi-label).
    """
    classes, stored = meta["classes"], meta.get("thresholds") or {}
    out = []
    for level in ("frame", "clip"):
        by_label = stored.get(level)
        if by_label is None:
            out.append(np.full(len(classes), 0.5))
            continue
        out.append(np.array([np.inf if by_label.get(c) is None else float(by_label[c]) for c in classes]))
    return out[0], out[1]


def summarise(pred: ScanPrediction, meta: dict, min_span_s: float = 0.2) -> list[dict]:
    """Per label: peak / mean probability, frames over the stored threshold, the spans and the scan verdict.

    A frame is predicted when its probability reaches the label's frame threshold; the scan is
    (``present``) when the mean probability of its frames reaches the clip threshold, as the clip-level
    metrics of `sonotell train` count it.
    """
    classes, probs = meta["classes"], pred.probs
    frame_t, clip_t = label_thresholds(meta)
    on = probs >= frame_t[None, :]
    rows = []
    for k, name in enumerate(classes):
        spans = _spans(on[:, k], pred.fps, min_span_s)
        mean = float(probs[:, k].mean()) if len(probs) else float("nan")
        rows.append(
            {
                "scan_id": pred.scan_id,
                "label": name,
                "frames": int(len(probs)),
                "peak_prob": float(probs[:, k].max()) if len(probs) else float("nan"),
                "mean_prob": mean,
                "threshold": float(frame_t[k]) if np.isfinite(frame_t[k]) else None,
                "predicted_share": float(on[:, k].mean()) if len(probs) else 0.0,
                "present": bool(len(probs) and mean >= clip_t[k]),
                "spans": ";".join(f"{a:.2f}-{b:.2f}" for a, b in spans),
            }
        )
    return rows


def _spans(on: np.ndarray, fps: float, min_s: float) -> list[tuple[float, float]]:
    out, start = [], None
    for i, v in enumerate(list(on) + [False]):
        if v and start is None:
            start = i
        elif not v and start is not None:
            if (i - start) / fps >= min_s:
                out.append((start / fps, i / fps))
            start = None
    return out


def write_probs(path: Path, pred: ScanPrediction, classes: list[str]) -> Path:
    import pandas as pd

    n = len(pred.probs)
    table = pd.DataFrame(
        {"scan_id": pred.scan_id, "frame_index": np.arange(n), "time_s": np.round(np.arange(n) / pred.fps, 4)}
    )
    for k, name in enumerate(classes):
        table[name] = np.round(pred.probs[:, k], 5)
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, index=False)
    return path


def contact_sheet(path: Path, pred: ScanPrediction, classes: list[str], thumb: int = 160) -> Path:
    """The most confident frame of every label, captioned with label, time and probability."""
    from PIL import Image, ImageDraw

    cells = [(classes[k], *pred.best[k]) for k in sorted(pred.best)]
    cols = max(1, min(4, len(cells)))
    rows = max(1, -(-len(cells) // cols))
    sheet = Image.new("RGB", (cols * thumb, rows * (thumb + 18)), "black")
    draw = ImageDraw.Draw(sheet)
    for n, (name, prob, index, frame) in enumerate(cells):
        x, y = (n % cols) * thumb, (n // cols) * (thumb + 18)
        sheet.paste(Image.fromarray(frame).convert("RGB").resize((thumb, thumb)), (x, y + 18))
        draw.text((x + 3, y + 3), f"{name} {prob:.2f} @ {index / pred.fps:.1f}s", fill="white")
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return path


def predict_scans(
    model_path: str | Path,
    scans: list[Scan],
    out_dir: str | Path,
    *,
    lexicon: str | Path | None = None,
    data_label_sets: list[tuple[Path, list[str]]] | None = None,
    batch_size: int = 64,
    overlay: bool = False,
    parquet: bool = False,
    progress: Progress = silent,
) -> Path:
    """Predict every scan into ``out_dir``; return ``summary.json``. A scan that fails is listed, not fatal."""
    import pandas as pd

    from sonotell.methods.frame_classifier import load_classifier

    model, meta = load_classifier(model_path)
    check_label_set(meta, lexicon, Path(model_path), data_label_sets)
    out_dir = Path(out_dir)
    inputs = {Path(model_path).resolve(), *(s.video_path.resolve() for s in scans)}
    if out_dir.resolve() in inputs:
        raise InputError(out_dir, "the output folder is one of the inputs: choose another --out")
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_grad_enabled(False)
    rows, failed, errors = [], [], []
    try:
        for n, scan in enumerate(scans):
            progress(n, len(scans), scan.scan_id)
            try:
                video = out_dir / f"{scan.scan_id}.overlay.mp4" if overlay else None
                if video is not None:
                    torch.set_grad_enabled(True)
                pred = predict_scan(model, meta, scan, batch_size=batch_size, overlay_path=video)
            except InputError as e:
                failed.append({"scan_id": scan.scan_id, "error": str(e)})
                errors.append(e)
                continue
            finally:
                torch.set_grad_enabled(False)
            write_probs(out_dir / f"{scan.scan_id}.probs.{'parquet' if parquet else 'csv'}", pred, meta["classes"])
            contact_sheet(out_dir / f"{scan.scan_id}.sheet.png", pred, meta["classes"])
            rows += summarise(pred, meta)
    finally:
        torch.set_grad_enabled(True)
    progress(len(scans), len(scans), "done")
    if not rows and failed:
        raise errors[0]  # every scan failed: the first one's own one-line error
    with atomic_path(out_dir / "summary.csv") as tmp:
        pd.DataFrame(
            rows,
            columns=[
                "scan_id",
                "label",
                "frames",
                "peak_prob",
                "mean_prob",
                "threshold",
                "predicted_share",
                "present",
                "spans",
            ],
        ).to_csv(tmp, index=False)
    return write_json(
        out_dir / "summary.json",
        {
            "model": str(model_path),
            "classes": meta["classes"],
            "multilabel": meta["multilabel"],
            "thresholds": meta.get("thresholds"),
            "n_scans": len(scans),
            "n_failed": len(failed),
            "failed": failed,
            "labels": rows,
        },
    )

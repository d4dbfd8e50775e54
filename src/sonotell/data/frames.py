"""Single frames with multi-label organ labels (``FrameSet``) and their loaders.

A frame folder is a saved ``frameset.npz``, the Vitale abdominal layout (``images/*/*.jpg`` with
RGB organ masks ``annotations/*/*.png``) or a narrated benchmark with masks (``bench.json``).
Used by the deep-clustering and FixMatch recipes.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sonotell.data.augment import standardise_image
from sonotell.errors import InputError
from sonotell.files import atomic_path
from sonotell.progress import Progress, silent

log = logging.getLogger(__name__)


@dataclass
class FrameSet:
    """Single frames at working resolution with multi-hot labels and the subject of each.

    ``labels`` rows of unlabelled frames are zeros; ``labelled`` says which rows are labels.
    """

    images: np.ndarray  # (N, H, W) float32 in [0, 1]
    labels: np.ndarray  # (N, K) float32 multi-hot
    labelled: np.ndarray  # (N,) bool
    groups: np.ndarray  # (N,) subject / patient id, for grouped splits
    names: list[str]
    classes: list[str]
    meta: dict = field(default_factory=dict)
    weak_labels: np.ndarray | None = None  # (N, K) labels from speech for the labelled frames, if any

    def __post_init__(self) -> None:
        n = len(self.images)
        if not (len(self.labels) == len(self.labelled) == len(self.groups) == len(self.names) == n):
            raise ValueError("FrameSet: images, labels, labelled, groups and names differ in length")
        if self.labels.ndim != 2 or self.labels.shape[1] != len(self.classes):
            raise ValueError(f"FrameSet: labels {self.labels.shape} do not match {len(self.classes)} classes")
        if self.weak_labels is not None and self.weak_labels.shape != self.labels.shape:
            raise ValueError(f"FrameSet: weak labels {self.weak_labels.shape} differ from labels {self.labels.shape}")

    def save(self, path: str | Path) -> Path:
        extra = {} if self.weak_labels is None else {"weak_labels": self.weak_labels}
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(
                    f,
                    images=self.images,
                    labels=self.labels,
                    labelled=self.labelled,
                    groups=self.groups.astype(str),
                    names=np.array(self.names),
                    classes=np.array(self.classes),
                    **extra,
                )
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> "FrameSet":
        path = Path(path)
        try:
            z = np.load(path, allow_pickle=False)
            weak = z["weak_labels"].astype(np.float32) if "weak_labels" in z.files else None
            return cls(
                z["images"].astype(np.float32),
                z["labels"].astype(np.float32),
                z["labelled"].astype(bool),
                z["groups"].astype(str),
                z["names"].tolist(),
                z["classes"].tolist(),
                weak_labels=weak,
            )
        except (OSError, KeyError, ValueError) as e:
            raise InputError(path, f"not a frame set ({e})") from None

    def drop_absent_classes(self) -> "FrameSet":
        """Drop classes with no labelled positive (with a warning naming them)."""
        present = self.labels[self.labelled].sum(axis=0) > 0
        if present.all():
            return self
        if not present.any():
            raise InputError(None, "no class occurs in any labelled frame")
        absent = [c for c, p in zip(self.classes, present) if not p]
        log.warning("classes that never occur in the labelled frames are dropped: %s", ", ".join(absent))
        return FrameSet(
            self.images,
            self.labels[:, present],
            self.labelled,
            self.groups,
            self.names,
            [c for c, p in zip(self.classes, present) if p],
            self.meta,
            None if self.weak_labels is None else self.weak_labels[:, present],
        )


# The Vitale abdominal set's mask colours (one table: the benchmark builder snaps masks with it too).
ORGAN_COLOURS = {
    "liver": (100, 0, 100),
    "kidney": (255, 255, 0),
    "vessels": (255, 0, 0),
    "spleen": (255, 0, 255),
    "pancreas": (0, 0, 255),
    "bone": (255, 255, 255),
    "gallbladder": (0, 255, 0),
    "adrenal": (0, 255, 255),
}
ORGANS = list(ORGAN_COLOURS)
MASK_CLASSES = ["background"] + ORGANS


def snap_mask(rgb: np.ndarray) -> np.ndarray:
    """RGB annotation (H, W, 3) -> class indices (index into ``MASK_CLASSES``) by the nearest colour."""
    palette = np.array([(0, 0, 0)] + [ORGAN_COLOURS[o] for o in ORGANS], np.int32)
    d = ((rgb[:, :, None, :3].astype(np.int32) - palette[None, None]) ** 2).sum(-1)
    return d.argmin(-1).astype(np.uint8)


def subject_of(name: str) -> str:
    """Subject of an abdominal frame: its filename's letter prefix (``a12.jpg`` -> ``a``)."""
    m = re.match(r"[A-Za-z]+", name)
    return m.group(0) if m else name


def load_abdominal_frames(
    root: str | Path, size: tuple[int, int] = (64, 64), min_area_fraction: float = 0.005, progress: Progress = silent
) -> FrameSet:
    """Frames of the Vitale abdominal set (``images/*/*.jpg``, RGB masks ``annotations/*/*.png``).

    An organ is present when its (nearest-colour) mask area exceeds ``min_area_fraction`` of
    the frame; frames without a mask are unlabelled. Classes never present are dropped.
    """
    from PIL import Image

    root = Path(root)
    images = sorted(root.glob("images/*/*.jpg")) + sorted(root.glob("images/*/*.png"))
    if not images:
        raise InputError(root, "no images/*/*.jpg frames (expected the abdominal frame layout)")
    masks = {p.stem: p for p in sorted(root.glob("annotations/*/*.png"))}
    stems = {p.stem for p in images}
    orphans = sorted(set(masks) - stems)
    if orphans:
        log.warning("%d masks without a matching image ignored: %s", len(orphans), ", ".join(orphans[:5]))
    classes = list(ORGANS)
    palette = np.array([(0, 0, 0)] + [ORGAN_COLOURS[c] for c in classes], np.float32)
    frames, labels, labelled, names = [], [], [], []
    for i, path in enumerate(images):
        try:
            with Image.open(path) as im:
                arr = np.asarray(im)
        except OSError as e:
            raise InputError(path, f"unreadable image ({e})") from None
        frames.append(standardise_image(arr, size, str(path)))
        y = np.zeros(len(classes), np.float32)
        if path.stem in masks:
            with Image.open(masks[path.stem]) as m:
                rgb = np.asarray(m.convert("RGB"), np.float32)[::4, ::4]
            nearest = ((rgb[:, :, None, :] - palette[None, None]) ** 2).sum(-1).argmin(-1)
            area = np.bincount(nearest.ravel(), minlength=len(palette))[1:] / nearest.size
            y = (area > min_area_fraction).astype(np.float32)
        labels.append(y)
        labelled.append(path.stem in masks)
        names.append(path.name)
        progress(i + 1, len(images), path.name)
    fs = FrameSet(
        np.stack(frames), np.stack(labels), np.array(labelled), np.array([subject_of(n) for n in names]), names, classes
    )
    return fs.drop_absent_classes()


def labels_from_events(events, start_s: float, end_s: float, classes: list[str]) -> np.ndarray:
    """Multi-hot of the classes named (not negated) by spoken term events overlapping [start_s, end_s]."""
    y = np.zeros(len(classes), np.float32)
    index = {c: i for i, c in enumerate(classes)}
    for e in events:
        label, negated = (e["label"], e.get("negated", False)) if isinstance(e, dict) else (e.label, e.negated)
        e_start, e_end = (e["start_s"], e["end_s"]) if isinstance(e, dict) else (e.start_s, e.end_s)
        if not negated and label in index and e_end >= start_s and e_start <= end_s:
            y[index[label]] = 1.0
    return y


def load_benchmark_frames(
    root: str | Path,
    size: tuple[int, int] = (64, 64),
    *,
    events_of=None,
    min_area_fraction: float = 0.005,
    pad_s: float = 0.5,
    unlabelled_stride: int = 10,
    progress: Progress = silent,
) -> FrameSet:
    """Frames of a narrated benchmark with organ masks (e.g. ``abdominal``) as a ``FrameSet``.

    Consecutive video frames sharing a mask show one annotated image: its middle frame is a
    labelled frame whose ground truth is the organs covering ``min_area_fraction`` of the mask.
    Its *weak* label is what was said while it was on screen (+- ``pad_s``): the events that
    ``events_of(scan)`` returns (e.g. ``SpeechPipeline.label_scan(scan).events``), or the
    benchmark's own narration events when ``events_of`` is None (an oracle transcript). Every
    ``unlabelled_stride``-th other frame is kept unlabelled.
    """
    from sonotell.data.format import load_benchmark
    from sonotell.io.video import iter_frames

    bench = load_benchmark(root)
    classes = list(bench.label_names or bench.classes)
    mask_index = {name: i for i, name in enumerate(bench.mask_classes)}
    images, labels, weak, labelled, groups, names = [], [], [], [], [], []
    for n, scan in enumerate(bench.scans):
        truth = bench.truth(scan.scan_id)
        events = truth["events"] if events_of is None else events_of(scan)
        masked = sorted(int(k) for k in truth.get("masks", {}))
        runs: list[list[int]] = []
        for i in masked:
            if runs and i == runs[-1][-1] + 1:
                runs[-1].append(i)
            else:
                runs.append([i])
        keyframes = {run[len(run) // 2]: run for run in runs}
        in_runs = {i for run in runs for i in run}
        fps = float(scan.fps or 1.0)
        for i, frame in enumerate(iter_frames(scan.video_path, size)):
            if i in keyframes:
                run = keyframes[i]
                mask = bench.mask(scan.scan_id, i)
                area = np.bincount(mask.ravel(), minlength=len(bench.mask_classes)) / mask.size
                y = np.array(
                    [area[mask_index[c]] > min_area_fraction if c in mask_index else 0 for c in classes], np.float32
                )
                labels.append(y)
                weak.append(labels_from_events(events, run[0] / fps - pad_s, (run[-1] + 1) / fps + pad_s, classes))
                labelled.append(True)
            elif i in in_runs or i % unlabelled_stride:
                continue
            else:
                labels.append(np.zeros(len(classes), np.float32))
                weak.append(np.zeros(len(classes), np.float32))
                labelled.append(False)
            images.append(standardise_image(frame, size, str(scan.video_path)))
            groups.append(scan.subject_id)
            names.append(f"{scan.scan_id}#{i}")
        progress(n + 1, len(bench.scans), scan.scan_id)
    if not images:
        raise InputError(root, "no frames in the benchmark's videos")
    fs = FrameSet(
        np.stack(images),
        np.stack(labels),
        np.array(labelled),
        np.array(groups),
        names,
        classes,
        weak_labels=np.stack(weak),
    )
    return fs.drop_absent_classes()


def load_frames(folder: str | Path, size: tuple[int, int], progress: Progress = silent, **kwargs) -> FrameSet:
    """A ``FrameSet`` from a folder: ``frameset.npz`` (saved ``FrameSet``) or the abdominal layout."""
    folder = Path(folder)
    if not folder.exists():
        raise InputError(folder, "no such folder")
    if folder.is_file() and folder.suffix == ".npz":
        fs = FrameSet.load(folder)
    elif (folder / "frameset.npz").exists():
        fs = FrameSet.load(folder / "frameset.npz")
    elif (folder / "images").is_dir():
        return load_abdominal_frames(folder, size, progress=progress, **kwargs)
    elif (folder / "bench.json").exists():
        return load_benchmark_frames(folder, size, progress=progress, **kwargs)
    else:
        raise InputError(
            folder, "expected frameset.npz, a benchmark folder (bench.json) or an images/ + annotations/ frame layout"
        )
    if tuple(fs.images.shape[1:]) != tuple(size):
        fs.images = np.stack([standardise_image(im, size) for im in fs.images])
    return fs.drop_absent_classes()

"""The benchmark folder format: what ``sonotell bench build`` writes and every experiment reads.

A benchmark folder holds::

    bench.json              {name, classes, label_names, mask_classes, config, seed, task_classes?}
    manifest.csv            one row per scan (see ``MANIFEST_COLUMNS``); paths relative to the folder
    truth/<scan_id>.json    {scan_id, subject_id, label, labels, events, segments, masks, ...}
    masks/*.png             uint8 class-index maps (index i = ``mask_classes[i]``, 0 = background)
    videos/, audio/         the scans' media

Times in truth files are on the video clock (audio time = video time - ``audio_offset_s``).

Example:
    >>> bench = load_benchmark("bench_out/synthetic")  # doctest: +SKIP
    >>> bench.scans[0].scan_id, bench.truth(bench.scans[0].scan_id)["events"][0]["label"]  # doctest: +SKIP
    ('s00_scan0', 'liver')
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sonotell.errors import InputError
from sonotell.files import atomic_path, write_json
from sonotell.types import Scan

SCAN_COLUMNS = (
    "scan_id",
    "subject_id",
    "video_path",
    "audio_path",
    "audio_offset_s",
    "fps",
    "n_frames",
    "width",
    "height",
    "audio_sample_rate_hz",
    "audio_duration_s",
    "roi",
)
MANIFEST_COLUMNS = SCAN_COLUMNS + ("label", "labels", "voice", "voice_split")
REQUIRED_COLUMNS = (
    "scan_id",
    "subject_id",
    "video_path",
    "audio_path",
    "audio_offset_s",
    "fps",
    "n_frames",
    "label",
    "labels",
)
BENCH_KEYS = ("name", "classes", "label_names", "mask_classes", "config", "seed")
TRUTH_KEYS = ("scan_id", "subject_id", "label", "labels", "events", "segments", "masks")
EVENT_KEYS = ("label", "term", "start_s", "end_s", "speaker", "negated")
SEGMENT_KEYS = ("speaker", "start_s", "end_s", "text")


@dataclass
class Benchmark:
    """A loaded benchmark folder.

    Attributes:
        root: the folder.
        name: benchmark name (``synthetic``, ``pocus``, ``abdominal``).
        scans: one ``Scan`` per manifest row, paths absolute.
        table: the manifest as a DataFrame (paths as written, relative to ``root``).
        classes: clip-level classes (values of ``label``).
        label_names: multi-label names (findings / organs, values of ``labels``).
        mask_classes: names of mask indices, ``mask_classes[0] == "background"``.
        task_classes: the benchmark's own clip-classification task, a subset of ``classes``
            (pocus: COVID-19 / pneumonia / regular, as in Bonmati et al.); all classes by default.
    """

    root: Path
    name: str
    scans: list[Scan]
    table: pd.DataFrame
    classes: list[str]
    label_names: list[str] = field(default_factory=list)
    mask_classes: list[str] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    seed: int | None = None
    task_classes: list[str] = field(default_factory=list)
    _truths: dict = field(default_factory=dict, repr=False, compare=False)

    def scan(self, scan_id: str) -> Scan:
        for s in self.scans:
            if s.scan_id == scan_id:
                return s
        raise KeyError(scan_id)

    def truth(self, scan_id: str) -> dict:
        """The ground truth of one scan (events, segments, masks, ...), validated; a fresh copy per call."""
        if scan_id not in self._truths:
            self._truths[scan_id] = self._read_truth(scan_id)
        return copy.deepcopy(self._truths[scan_id])

    def _read_truth(self, scan_id: str) -> dict:
        path = self.root / "truth" / f"{scan_id}.json"
        truth = _read_json(path, "truth file missing")
        validate_truth(truth, path)
        return truth

    def mask(self, scan_id: str, frame_index: int) -> np.ndarray | None:
        """The class-index mask (H, W) uint8 of a frame, or None when that frame has none."""
        if scan_id not in self._truths:
            self.truth(scan_id)
        rel = self._truths[scan_id]["masks"].get(str(int(frame_index)))
        if rel is None:
            return None
        path = self.root / rel
        if not path.exists():
            raise InputError(path, "mask file listed in truth but missing")
        from PIL import Image

        with Image.open(path) as im:
            return np.asarray(im.convert("L") if im.mode not in ("L", "P") else im, dtype=np.uint8)

    def labels_of(self, scan_id: str) -> list[str]:
        row = self.table.loc[self.table["scan_id"] == scan_id].iloc[0]
        return split_labels(row["labels"])


def split_labels(value: Any) -> list[str]:
    """``"a;b"`` -> ``["a", "b"]``; empty / NaN -> ``[]``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    return [v for v in str(value).split(";") if v]


def _read_json(path: Path, missing: str) -> Any:
    """A JSON file's content; ``InputError(path, missing)`` when absent, or naming the parse error."""
    if not path.exists():
        raise InputError(path, missing)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise InputError(path, f"not valid JSON ({e})") from None


def resolve_benchmark(benchmark: "Benchmark | str | Path") -> Benchmark:
    """A loaded ``Benchmark`` as is; else a folder path, or a name built under ``bench_out/``."""
    if isinstance(benchmark, Benchmark):
        return benchmark
    path = Path(benchmark)
    if not path.exists() and (Path("bench_out") / str(benchmark)).exists():
        path = Path("bench_out") / str(benchmark)
    return load_benchmark(path)


def load_benchmark(path: str | Path) -> Benchmark:
    """Read and validate a benchmark folder; any problem raises ``InputError`` naming the file."""
    root = Path(path)
    if not root.is_dir():
        raise InputError(root, "benchmark folder not found")
    meta_path = root / "bench.json"
    meta = _read_json(meta_path, "bench.json missing (not a benchmark folder, or its build did not finish)")
    missing = [k for k in BENCH_KEYS if k not in meta]
    if missing:
        raise InputError(meta_path, f"missing keys: {', '.join(missing)}")
    manifest_path = root / "manifest.csv"
    table = read_manifest(manifest_path)
    scans = [_row_to_scan(root, row, manifest_path, i) for i, row in enumerate(table.to_dict("records"))]
    for i, row in enumerate(table.to_dict("records")):
        label = _str(row["label"])
        if label and label not in meta["classes"]:
            raise InputError(
                manifest_path, f"row {i + 2} (scan {row['scan_id']}): label {label!r} not in bench.json classes"
            )
        if not (root / "truth" / f"{row['scan_id']}.json").exists():
            raise InputError(root / "truth" / f"{row['scan_id']}.json", "truth file missing")
    return Benchmark(
        root=root,
        name=str(meta["name"]),
        scans=scans,
        table=table,
        classes=list(meta["classes"]),
        label_names=list(meta["label_names"]),
        mask_classes=list(meta["mask_classes"]),
        config=dict(meta["config"] or {}),
        seed=meta["seed"],
        task_classes=_task_classes(meta, meta_path),
    )


# Folders written before bench.json recorded ``task_classes``: the one builder whose task is not every class.
# (A table here, not a call into ``sonotell.bench``: the data layer never imports the builders above it.)
LEGACY_TASK_CLASSES = {"pocus": ("COVID-19", "pneumonia", "regular")}


def _task_classes(meta: dict, meta_path: Path) -> list[str]:
    """``task_classes`` from bench.json; older folders lack it, so take the builder's task by benchmark name."""
    task = meta.get("task_classes")
    if task is None:
        task = list(LEGACY_TASK_CLASSES.get(meta["name"], meta["classes"]))
    unknown = [c for c in task if c not in meta["classes"]]
    if unknown:
        raise InputError(meta_path, f"task_classes {unknown} not among classes {meta['classes']}")
    return [str(c) for c in task]


def read_manifest(path: Path) -> pd.DataFrame:
    """Read ``manifest.csv`` keeping ids as strings; check columns and duplicate scan ids."""
    if not path.exists():
        raise InputError(path, "manifest.csv missing")
    try:
        table = pd.read_csv(
            path,
            dtype={
                "scan_id": str,
                "subject_id": str,
                "label": str,
                "labels": str,
                "roi": str,
                "voice": str,
                "voice_split": str,
            },
            keep_default_na=False,
        )
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise InputError(path, f"unreadable manifest ({e.__class__.__name__}: {e})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(path, f"missing columns: {', '.join(missing)}")
    if table.empty:
        raise InputError(path, "manifest lists no scans")
    dup = table["scan_id"][table["scan_id"].duplicated()].unique().tolist()
    if dup:
        raise InputError(path, f"duplicate scan ids: {', '.join(map(str, dup[:5]))}")
    for c in MANIFEST_COLUMNS:
        if c not in table.columns:
            table[c] = ""
    return table


def write_manifest(path: Path, rows: list[dict]) -> Path:
    """Write manifest rows (dicts with ``MANIFEST_COLUMNS``) atomically, in the column order above."""
    table = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    return path


def write_bench_json(
    root: Path,
    *,
    name: str,
    classes: list[str],
    label_names: list[str],
    mask_classes: list[str],
    config: dict,
    seed: int,
    task_classes: list[str] | None = None,
) -> Path:
    meta = {
        "name": name,
        "classes": classes,
        "label_names": label_names,
        "mask_classes": mask_classes,
        "config": config,
        "seed": seed,
    }
    return write_json(
        root / "bench.json", {**meta, "task_classes": list(classes if task_classes is None else task_classes)}
    )


def validate_truth(truth: Any, path: Path) -> None:
    """Check the keys and time spans of a truth dict; raise ``InputError`` naming ``path``."""
    if not isinstance(truth, dict):
        raise InputError(path, "truth must be a JSON object")
    missing = [k for k in TRUTH_KEYS if k not in truth]
    if missing:
        raise InputError(path, f"missing keys: {', '.join(missing)}")
    for kind, keys in (("events", EVENT_KEYS), ("segments", SEGMENT_KEYS)):
        for i, item in enumerate(truth[kind]):
            lack = [k for k in keys if k not in item]
            if lack:
                raise InputError(path, f"{kind}[{i}] missing keys: {', '.join(lack)}")
            if not float(item["end_s"]) >= float(item["start_s"]):
                raise InputError(path, f"{kind}[{i}] ends before it starts ({item['start_s']} > {item['end_s']})")
    if not isinstance(truth["masks"], dict):
        raise InputError(path, "masks must map frame index -> png path")


def _row_to_scan(root: Path, row: dict, manifest_path: Path, i: int) -> Scan:
    where = f"row {i + 2} (scan {row['scan_id']})"
    if not _str(row["scan_id"]):
        raise InputError(manifest_path, f"row {i + 2}: empty scan_id")
    if not _str(row["subject_id"]):
        raise InputError(manifest_path, f"{where}: empty subject_id")
    video = root / _str(row["video_path"])
    if not _str(row["video_path"]) or not video.exists():
        raise InputError(manifest_path, f"{where}: video file not found: {video}")
    audio = root / _str(row["audio_path"]) if _str(row["audio_path"]) else None
    if audio is not None and not audio.exists():
        raise InputError(manifest_path, f"{where}: audio file not found: {audio}")
    try:
        return Scan(
            scan_id=_str(row["scan_id"]),
            subject_id=_str(row["subject_id"]),
            video_path=video,
            audio_path=audio,
            audio_offset_s=float(row["audio_offset_s"] or 0.0),
            fps=_num(row.get("fps"), float),
            n_frames=_num(row.get("n_frames"), int),
            width=_num(row.get("width"), int),
            height=_num(row.get("height"), int),
            audio_sample_rate_hz=_num(row.get("audio_sample_rate_hz"), int),
            audio_duration_s=_num(row.get("audio_duration_s"), float),
            roi=parse_roi(row.get("roi")),
        )
    except (TypeError, ValueError) as e:
        raise InputError(manifest_path, f"{where}: bad value ({e})") from None


def parse_roi(value: Any) -> tuple[int, int, int, int] | None:
    """``"x0,y0,x1,y1"`` -> tuple; empty -> None."""
    s = _str(value)
    if not s:
        return None
    parts = [int(float(p)) for p in s.replace(" ", "").split(",")]
    if len(parts) != 4:
        raise ValueError(f"roi {s!r} must be x0,y0,x1,y1")
    return tuple(parts)  # type: ignore[return-value]


def format_roi(roi: tuple[int, int, int, int] | None) -> str:
    return "" if roi is None else ",".join(str(int(v)) for v in roi)


def _str(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return str(v).strip()


def _num(v: Any, kind: type) -> Any:
    s = _str(v)
    return None if s == "" else kind(float(s))

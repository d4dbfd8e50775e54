"""``Dataset``: a user's scans and their labels, the one input of every learning command.

A dataset is an ingest manifest + a labels folder (from ``sonotell label``, or a reviewed
folder from ``sonotell review export``) + the subjects of the manifest + a label set (the
lexicon's labels). Per frame and label the state is *present* (1), *absent* (0, a negated
mention) or *unknown* (-1). A benchmark (``sonotell bench build``) is a dataset that also
carries ground truth; its labels folder is optional.

It is read from a manifest CSV, a benchmark folder, or a dataset file (YAML)::

    manifest: scans/manifest.csv     # paths relative to this file
    labels: labels/                  # optional: without it, no labels (pretraining only)
    lexicon: lung                    # optional: default, the lexicon the labels were made with

Example:
    >>> ds = load_dataset("scans/manifest.csv", labels="labels/", lexicon="lung")  # doctest: +SKIP
    >>> train_ids, test_ids = ds.split(test_fraction=0.25, seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from sonotell import labels as labels_io
from sonotell.errors import InputError
from sonotell.labels import ABSENT, PRESENT, UNKNOWN, FrameStates
from sonotell.types import Scan

__all__ = ["ABSENT", "PRESENT", "UNKNOWN", "Dataset", "FrameStates", "load_dataset"]
DATASET_SUFFIXES = (".yaml", ".yml")


@dataclass
class Dataset:
    """Scans, their subjects, a label set and (optionally) labels and ground truth.

    Attributes:
        path: the file or folder it was read from.
        scans: the manifest's scans (paths absolute).
        label_names: the label set, in index order.
        labels_dir: the labels folder, or None.
        lexicon: the lexicon's name or path, or None.
        lexicon_fingerprint: hash of the lexicon's labels and spoken forms, or None.
        benchmark: the ``Benchmark`` whose ground truth this dataset carries, or None.
    """

    path: Path
    scans: list[Scan]
    label_names: list[str]
    labels_dir: Path | None = None
    lexicon: str | None = None
    lexicon_fingerprint: str | None = None
    benchmark: object = None
    _states: dict = field(default_factory=dict, repr=False)
    _lexicon: object = field(default=None, repr=False)

    @property
    def subjects(self) -> list[str]:
        return sorted({s.subject_id for s in self.scans})

    @property
    def has_truth(self) -> bool:
        return self.benchmark is not None

    def scan(self, scan_id: str) -> Scan:
        for s in self.scans:
            if s.scan_id == scan_id:
                return s
        raise KeyError(scan_id)

    def labelled_scans(self) -> list[str]:
        """Scans that have a frame-labels CSV in the labels folder."""
        if self.labels_dir is None:
            return []
        have = set(labels_io.frame_files(self.labels_dir))
        return [s.scan_id for s in self.scans if s.scan_id in have]

    def frame_states(self, scan_id: str) -> FrameStates:
        """The labels folder's per-frame states of one scan (every label unknown when it has none)."""
        if scan_id not in self._states:
            self._states[scan_id] = self._read_states(scan_id)
        return self._states[scan_id]

    def truth_states(
        self, scan_id: str, frame_index: np.ndarray, fps: float, min_mask_fraction: float = 0.03
    ) -> np.ndarray:
        """Ground-truth states (N, K) of frames: a label is present where the benchmark shows it.

        Uses the truth's ``visible`` spans when it has them; else its organ masks (a label is
        present when its mask covers ``min_mask_fraction`` of the frame, all unknown on frames
        without a mask); else the scan's clip-level ``labels`` / ``label``. Every other label of
        the set is absent.
        """
        if self.benchmark is None:
            raise InputError(self.path, "this dataset carries no ground truth (not a benchmark)")
        truth = self.benchmark.truth(scan_id)
        t = (np.asarray(frame_index, float) + 0.5) / fps
        out = np.full((len(t), len(self.label_names)), ABSENT, np.int8)
        index = {name: k for k, name in enumerate(self.label_names)}
        spans = truth.get("visible")
        if spans is not None:
            for span in spans:
                k = index.get(self._our_label(span["label"]))
                if k is not None:
                    out[(t >= float(span["start_s"])) & (t < float(span["end_s"])), k] = PRESENT
        elif truth.get("masks"):
            names = list(getattr(self.benchmark, "mask_classes", []))
            for i, f in enumerate(np.asarray(frame_index, int)):
                mask = self.benchmark.mask(scan_id, int(f))
                if mask is None:
                    out[i] = UNKNOWN
                    continue
                counts = np.bincount(mask.ravel(), minlength=len(names))
                for c in np.flatnonzero(counts[1:] >= min_mask_fraction * mask.size) + 1:
                    k = index.get(self._our_label(names[c])) if c < len(names) else None
                    if k is not None:
                        out[i, k] = PRESENT
        else:
            for name in [*(truth.get("labels") or []), truth.get("label") or ""]:
                k = index.get(self._our_label(name))
                if k is not None:
                    out[:, k] = PRESENT
        return out

    def _our_label(self, name: str) -> str | None:
        """A benchmark's label name ("b_lines") as the label set's ("B-lines"), through the lexicon."""
        if name in self.label_names or self.lexicon is None:
            return name
        if self._lexicon is None:
            from sonotell.speech.lexicon import load_lexicon

            self._lexicon = load_lexicon(self.lexicon)
        return self._lexicon.resolve_label(name)

    def split(self, test_fraction: float = 0.25, seed: int = 0, min_subjects: int = 2) -> tuple[list[str], list[str]]:
        """Scan ids of training and held-out subjects (patient-level; at least one subject each side).

        Refuses, with ``InputError``, a dataset of fewer than ``min_subjects`` subjects.
        """
        subjects = self.subjects
        if len(subjects) < max(2, min_subjects):
            raise InputError(
                self.path,
                f"{len(subjects)} subject(s) ({', '.join(subjects)}): need at least {max(2, min_subjects)} "
                "to hold out whole subjects for testing; add scans of other subjects",
            )
        rng = np.random.default_rng(seed)
        order = [subjects[i] for i in rng.permutation(len(subjects))]
        n_test = min(len(subjects) - 1, max(1, int(round(test_fraction * len(subjects)))))
        test = set(order[:n_test])
        train_ids = [s.scan_id for s in self.scans if s.subject_id not in test]
        test_ids = [s.scan_id for s in self.scans if s.subject_id in test]
        return train_ids, test_ids

    def as_benchmark(self) -> "object":
        """The benchmark itself, or a benchmark-shaped view of a user's dataset for the recipes that read one.

        The view's truth of a scan holds the speech events of its labels folder (no segments, no
        masks): what was said, never ground truth.
        """
        if self.benchmark is not None:
            return self.benchmark
        return dataset_view(self)

    def _read_states(self, scan_id: str) -> FrameStates:
        """Through ``sonotell.labels``: several labels per frame; a column outside the label set is an error."""
        if self.labels_dir is None or not labels_io.frames_path(self.labels_dir, scan_id).exists():
            return FrameStates.empty(self.label_names)
        return labels_io.read_frames(self.labels_dir, scan_id, self.label_names)


def dataset_view(ds: Dataset):
    """A user's dataset as a ``Benchmark`` (what the paper recipes read): speech in place of truth.

    A scan's "truth" holds its labels folder's speech events (no narration segments, no masks);
    its clip ``label`` is the label present on most of its frames and its ``labels`` every label
    present on any frame. Nothing in it is ground truth.
    """
    from sonotell.data.format import Benchmark

    class_of, labels_of = {}, {}
    for s in ds.scans:
        st = ds.frame_states(s.scan_id).state
        counts = (st == PRESENT).sum(0) if len(st) else np.zeros(len(ds.label_names), int)
        class_of[s.scan_id] = ds.label_names[int(counts.argmax())] if counts.any() else ""
        labels_of[s.scan_id] = ";".join(n for n, c in zip(ds.label_names, counts, strict=True) if c)
    table = pd.DataFrame(
        {
            "scan_id": [s.scan_id for s in ds.scans],
            "subject_id": [s.subject_id for s in ds.scans],
            "label": [class_of[s.scan_id] for s in ds.scans],
            "labels": [labels_of[s.scan_id] for s in ds.scans],
            "voice": "",
            "voice_split": "",
        }
    )
    view = Benchmark(
        root=ds.path.parent,
        name=ds.path.stem,
        scans=list(ds.scans),
        table=table,
        classes=list(ds.label_names),
        label_names=list(ds.label_names),
        mask_classes=[],
        config={},
        seed=None,
    )
    for s in ds.scans:
        view._truths[s.scan_id] = _speech_truth(ds, s)
    return view


def _speech_truth(ds: Dataset, scan: Scan) -> dict:
    events = []
    if ds.labels_dir is not None and labels_io.doc_path(ds.labels_dir, scan.scan_id).exists():
        events = list(labels_io.read_scan_doc(ds.labels_dir, scan.scan_id).get("events", []))
    return {
        "scan_id": scan.scan_id,
        "subject_id": scan.subject_id,
        "label": "",
        "labels": [],
        "events": events,
        "segments": [],
        "masks": {},
    }


def lexicon_fingerprint(lexicon) -> str:
    """A short hash of a lexicon's labels and spoken forms (what a model's label map depends on).

    Example:
        >>> from sonotell.speech.lexicon import Lexicon
        >>> len(lexicon_fingerprint(Lexicon.from_dict({"labels": {"liver": ["hepatic"]}})))
        12
    """
    blob = json.dumps([(f.text, f.label, f.kind) for f in lexicon.forms])
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def load_dataset(path: str | Path, *, labels: str | Path | None = None, lexicon: str | Path | None = None) -> Dataset:
    """Read a dataset from a manifest CSV, a benchmark folder (or its manifest) or a dataset YAML.

    ``labels`` / ``lexicon`` override the dataset file's. Raises ``InputError`` naming the file for
    a labels folder of another manifest or lexicon, or a folder without labels.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "dataset not found (give a manifest CSV, a benchmark folder or a dataset YAML)")
    if path.suffix.lower() in DATASET_SUFFIXES:
        spec = _read_spec(path)
        root = path.parent
        manifest = root / str(spec["manifest"])
        if labels is None and spec.get("labels"):
            labels = root / str(spec["labels"])
        lexicon = lexicon if lexicon is not None else spec.get("lexicon")
        if lexicon is not None and not Path(str(lexicon)).suffix == "" and not Path(str(lexicon)).is_absolute():
            lexicon = root / str(lexicon)
        ds = load_dataset(manifest, labels=labels, lexicon=lexicon)
        ds.path = path
        return ds
    bench_root = path if path.is_dir() else (path.parent if (path.parent / "bench.json").exists() else None)
    benchmark = None
    if bench_root is not None:
        from sonotell.data.format import load_benchmark

        benchmark = load_benchmark(bench_root)
        scans = list(benchmark.scans)
        if path.is_file():  # a manifest inside a benchmark folder: its rows only
            scans = _manifest_rows(path, scans)
            if len(scans) < len(benchmark.scans):
                from dataclasses import replace

                keep = {s.scan_id for s in scans}
                table = benchmark.table.loc[benchmark.table["scan_id"].isin(keep)].reset_index(drop=True)
                benchmark = replace(benchmark, scans=scans, table=table)
    elif path.is_dir():
        raise InputError(path, "a folder that is not a benchmark (no bench.json): give the ingest manifest CSV")
    else:
        from sonotell.io.manifest import read_manifest

        scans = read_manifest(path).scans
    labels_dir = Path(labels) if labels is not None else None
    made_with = _labels_lexicon(labels_dir, scans) if labels_dir is not None else None
    lex_name = str(lexicon) if lexicon is not None else made_with
    label_names: list[str] = []
    fingerprint = None
    if lex_name is not None:
        from sonotell.speech.lexicon import load_lexicon

        lex = load_lexicon(lex_name)
        label_names, fingerprint = lex.labels, lexicon_fingerprint(lex)
        if made_with is not None and lexicon is not None:
            theirs = lexicon_fingerprint(load_lexicon(made_with))
            if theirs != fingerprint:
                raise InputError(
                    labels_dir,
                    f"lexicon fingerprint mismatch: labels made with lexicon {made_with!r} ({theirs}), "
                    f"dataset lexicon {lex_name!r} ({fingerprint})",
                )
    elif benchmark is not None:
        label_names = list(benchmark.label_names or benchmark.classes)
    return Dataset(path, scans, label_names, labels_dir, lex_name, fingerprint, benchmark)


def _manifest_rows(path: Path, scans: list[Scan]) -> list[Scan]:
    """The benchmark's scans listed in a manifest CSV inside its folder (a subset), in the benchmark's order."""
    try:
        table = pd.read_csv(path, keep_default_na=False, dtype=str)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, OSError) as e:
        raise InputError(path, f"unreadable manifest ({e.__class__.__name__})") from None
    if "scan_id" not in table.columns:
        raise InputError(path, "no scan_id column (not a manifest)")
    wanted = set(table["scan_id"])
    unknown = sorted(wanted - {s.scan_id for s in scans})
    if unknown:
        raise InputError(path, f"scan {unknown[0]!r} is not in the benchmark {path.parent} ({len(unknown)} unknown)")
    return [s for s in scans if s.scan_id in wanted]


def _read_spec(path: Path) -> dict:
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise InputError(path, f"not valid YAML ({e.__class__.__name__})") from None
    if not isinstance(spec, dict) or "manifest" not in spec:
        raise InputError(path, "a dataset file needs a 'manifest' key (and optionally 'labels', 'lexicon')")
    unknown = sorted(set(spec) - {"manifest", "labels", "lexicon"})
    if unknown:
        raise InputError(path, f"unknown keys {unknown} (use manifest, labels, lexicon)")
    return spec


def _labels_lexicon(labels_dir: Path, scans: list[Scan]) -> str | None:
    """Check a labels folder against the manifest's scans; return the lexicon it was made with."""
    if not labels_dir.is_dir():
        raise InputError(labels_dir, "labels folder not found")
    ids = list(labels_io.frame_files(labels_dir))
    if not ids:
        raise InputError(labels_dir, "no frame-labels CSV (<scan_id>.labels.csv): run `sonotell label` first")
    by_id = {s.scan_id: s for s in scans}
    foreign = [i for i in ids if i not in by_id]
    if foreign and len(foreign) == len(ids):
        raise InputError(
            labels_dir,
            f"labels folder made from another manifest: none of its scans ({', '.join(foreign[:3])}…) "
            "is in the manifest",
        )
    lexicons = set()
    for scan_id in ids:
        meta_path = labels_io.doc_path(labels_dir, scan_id)
        if scan_id not in by_id or not meta_path.exists():
            continue
        meta = labels_io.read_json(meta_path)
        if meta.get("subject_id") not in (None, by_id[scan_id].subject_id):
            raise InputError(
                meta_path,
                f"labels folder made from another manifest: scan {scan_id} has subject "
                f"{meta.get('subject_id')!r} here, {by_id[scan_id].subject_id!r} in the manifest",
            )
        if meta.get("lexicon"):
            lexicons.add(str(meta["lexicon"]))
    if len(lexicons) > 1:
        raise InputError(labels_dir, f"labels made with several lexicons ({', '.join(sorted(lexicons))})")
    return lexicons.pop() if lexicons else None

"""A labels folder: the one reader and writer of ``sonotell label`` / ``review export`` outputs (format v2).

A labels folder holds, per scan:

* ``<scan_id>.labels.csv``: one row per video frame; columns ``scan_id, frame_index, time_s``, then one
  column per lexicon label whose value is ``present``, ``absent`` or ``unknown``, then per label
  ``confidence:<label>`` (the weight of the mentions that decided the state, 0 when unknown), then
  ``source`` (``speech`` | ``reviewed``).
* ``<scan_id>.json``: what the speech pipeline heard (events, words, segments, info) and the format
  version (``labels_format: 2``); written after the CSV, so its presence marks the scan done.

and ``summary.csv`` / ``summary.json`` (per scan counts; the recipe fingerprint, lexicon, config and
``labels_format``). Format v1 (columns ``label``, ``confidence``, ``absent``: one label per frame) is
read too: upgraded in memory, with one warning per folder (``sonotell labels upgrade`` writes a v2 copy).

Every other module reads and writes labels through this one; no other module knows the file names.

Example:
    >>> import numpy as np
    >>> states = FrameStates(np.arange(3), np.arange(3) / 10, np.array([[1, -1], [1, 0], [-1, 0]], np.int8),
    ...                      np.full(3, "speech"), label_names=["liver", "kidney"])
    >>> states.present_labels(1), states.absent_labels(1)
    (['liver'], ['kidney'])
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sonotell.errors import InputError
from sonotell.files import atomic_path, write_json

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
PRESENT, ABSENT, UNKNOWN = 1, 0, -1
STATE_NAMES = {PRESENT: "present", ABSENT: "absent", UNKNOWN: "unknown"}
STATE_OF = {v: k for k, v in STATE_NAMES.items()}
FRAMES_SUFFIX = ".labels.csv"
DOC_SUFFIX = ".json"
SUMMARY_CSV = "summary.csv"
SUMMARY_JSON = "summary.json"
BASE_COLUMNS = ("scan_id", "frame_index", "time_s")
SOURCE_COLUMN = "source"
CONFIDENCE_PREFIX = "confidence:"
V1_COLUMNS = ("label", "confidence", "absent")
V1_UNLABELLED = "unlabelled"
SOURCES = ("speech", "reviewed", "truth")
# summary.csv: these per-scan columns first; a writer adds its own (timings, views), then "error"
SUMMARY_COLUMNS = (
    "scan_id",
    "subject_id",
    "status",
    "n_frames",
    "labelled_frames",
    "n_events",
    "n_negated",
    "labels",
)
# per-scan JSON keys whose values are measurements of a run, not results (left out of outputs_digest)
MEASURED_INFO_KEYS = ("elapsed_s", "real_time_factor", "cpu_s", "cpu_real_time_factor")
_WARNED_V1: set[str] = set()


@dataclass
class FrameStates:
    """Per-frame label states of one scan: ``state[i, k]`` for frame ``frame_index[i]`` and label ``label_names[k]``.

    Several labels may be present on one frame. ``confidence[i, k]`` is the weight of the mentions that
    decided the state (0 where unknown); ``source[i]`` is ``speech``, ``reviewed`` or ``truth``.
    """

    frame_index: np.ndarray  # (N,) int
    time_s: np.ndarray  # (N,) float
    state: np.ndarray  # (N, K) int8: PRESENT, ABSENT or UNKNOWN
    source: np.ndarray  # (N,) str
    confidence: np.ndarray | None = None  # (N, K) float32, or None (1.0 where known)
    label_names: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.frame_index = np.asarray(self.frame_index, int)
        self.time_s = np.asarray(self.time_s, float)
        self.state = np.asarray(self.state, np.int8)
        if self.state.ndim != 2 or len(self.state) != len(self.frame_index):
            raise ValueError(f"state must be (N, K) for {len(self.frame_index)} frames, got shape {self.state.shape}")
        self.source = np.asarray(self.source, str)
        if self.confidence is None:
            self.confidence = np.where(self.state == UNKNOWN, 0.0, 1.0).astype(np.float32)
        self.confidence = np.asarray(self.confidence, np.float32)
        if self.confidence.shape != self.state.shape:
            raise ValueError(f"confidence shape {self.confidence.shape} differs from state shape {self.state.shape}")
        self.label_names = list(self.label_names)
        if self.label_names and len(self.label_names) != self.state.shape[1]:
            raise ValueError(f"{len(self.label_names)} label names for {self.state.shape[1]} state columns")

    @classmethod
    def empty(cls, label_names: list[str]) -> "FrameStates":
        k = len(label_names)
        return cls(np.zeros(0, int), np.zeros(0), np.zeros((0, k), np.int8), np.zeros(0, str), label_names=label_names)

    def __len__(self) -> int:
        return len(self.frame_index)

    def present_labels(self, i: int) -> list[str]:
        return [n for n, s in zip(self.label_names, self.state[i], strict=True) if s == PRESENT]

    def absent_labels(self, i: int) -> list[str]:
        return [n for n, s in zip(self.label_names, self.state[i], strict=True) if s == ABSENT]

    def single_labels(self) -> list[str]:
        """Per frame the one label present, or ``unlabelled`` (none or several): the old one-label view."""
        out = []
        for row in self.state:
            on = np.flatnonzero(row == PRESENT)
            out.append(self.label_names[int(on[0])] if len(on) == 1 else V1_UNLABELLED)
        return out

    def reindexed(self, label_names: list[str], *, drop: bool = False) -> "FrameStates":
        """The same frames over another label set (labels not held here are unknown).

        An own label outside ``label_names`` is a ``ValueError`` unless ``drop``.
        """
        foreign = [n for n in self.label_names if n not in label_names]
        if foreign and not drop:
            raise ValueError(f"labels {foreign} are not in the label set")
        state = np.full((len(self), len(label_names)), UNKNOWN, np.int8)
        conf = np.zeros(state.shape, np.float32)
        for k, name in enumerate(self.label_names):
            if name not in label_names:
                continue
            j = label_names.index(name)
            state[:, j], conf[:, j] = self.state[:, k], self.confidence[:, k]
        return FrameStates(self.frame_index, self.time_s, state, self.source, conf, list(label_names))


# -- file names ---------------------------------------------------------------------------


def frames_path(folder: str | Path, scan_id: str) -> Path:
    """``<folder>/<scan_id>.labels.csv`` (a scan id never names a file outside the folder)."""
    from sonotell.io.manifest import check_scan_id

    check_scan_id(scan_id)
    return Path(folder) / f"{scan_id}{FRAMES_SUFFIX}"


def doc_path(folder: str | Path, scan_id: str) -> Path:
    """``<folder>/<scan_id>.json``: the scan's events, words, segments and info."""
    from sonotell.io.manifest import check_scan_id

    check_scan_id(scan_id)
    return Path(folder) / f"{scan_id}{DOC_SUFFIX}"


def labels_paths(folder: str | Path, scan_id: str) -> tuple[Path, Path]:
    """The two files of a scan: its frame CSV and its JSON."""
    return frames_path(folder, scan_id), doc_path(folder, scan_id)


def frame_files(folder: str | Path) -> dict[str, Path]:
    """``scan_id -> <scan_id>.labels.csv`` of every frame CSV in a folder (sorted by scan id)."""
    found = sorted(Path(folder).glob(f"*{FRAMES_SUFFIX}"))
    return {p.name[: -len(FRAMES_SUFFIX)]: p for p in found}


def scan_ids(folder: str | Path, *, complete: bool = True) -> list[str]:
    """Scans with a frame CSV (and, when ``complete``, their JSON: a finished scan)."""
    folder = Path(folder)
    return [s for s in frame_files(folder) if not complete or (folder / f"{s}{DOC_SUFFIX}").is_file()]


def folder_files(folder: str | Path) -> list[Path]:
    """Every labels file of a folder (frame CSVs, their JSONs, the summaries): the inputs a reader depends on."""
    folder = Path(folder)
    out = []
    for scan_id, csv_path in frame_files(folder).items():
        out += [csv_path, folder / f"{scan_id}{DOC_SUFFIX}"]
    return out + [folder / SUMMARY_CSV, folder / SUMMARY_JSON]


def output_names(folder: str | Path, ids: list[str]) -> list[Path]:
    """Every file writing ``ids`` into ``folder`` may create (to refuse writing over a command's inputs)."""
    folder = Path(folder)
    return [folder, folder / SUMMARY_CSV, folder / SUMMARY_JSON, *(p for s in ids for p in labels_paths(folder, s))]


# -- JSON ---------------------------------------------------------------------------------


def read_json(path: str | Path) -> dict:
    """A JSON object from a labels folder; unreadable, truncated or not an object: one-line ``InputError``."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise InputError(path, f"not valid JSON ({e.__class__.__name__}): truncated or not a labels file") from None
    if not isinstance(doc, dict):
        raise InputError(path, f"expected a JSON object, found {type(doc).__name__}")
    return doc


def read_scan_doc(folder: str | Path, scan_id: str) -> dict:
    """A scan's ``<scan_id>.json``, checked: an object whose ``events`` (if any) are a list of event objects."""
    path = doc_path(folder, scan_id)
    doc = read_json(path)
    events = doc.get("events", [])
    if not isinstance(events, list):
        raise InputError(path, "'events' is not a list: not a label file of `sonotell label`")
    for i, e in enumerate(events):
        if not isinstance(e, dict) or not isinstance(e.get("label"), str):
            raise InputError(path, f"event {i} has no label")
        for key in ("start_s", "end_s"):
            try:
                v = float(e[key])
            except (KeyError, TypeError, ValueError):
                raise InputError(path, f"event {i}: {key} is missing or not a number") from None
            if not math.isfinite(v):
                raise InputError(path, f"event {i}: {key} is not finite")
    return doc


def read_summary(folder: str | Path) -> dict:
    """``summary.json`` of a labels folder ({} when there is none)."""
    path = Path(folder) / SUMMARY_JSON
    return read_json(path) if path.exists() else {}


# -- frame CSV ----------------------------------------------------------------------------


def states_table(states: FrameStates, scan_id: str):
    """The v2 frame table of ``states`` as a DataFrame (the CSV's rows and columns)."""
    import pandas as pd

    cols: dict[str, object] = {
        "scan_id": [scan_id] * len(states),
        "frame_index": states.frame_index,
        "time_s": np.round(states.time_s, 6),
    }
    names = np.array([STATE_NAMES[PRESENT], STATE_NAMES[ABSENT], STATE_NAMES[UNKNOWN]], object)
    for k, name in enumerate(states.label_names):
        cols[name] = names[np.select([states.state[:, k] == PRESENT, states.state[:, k] == ABSENT], [0, 1], 2)]
    for k, name in enumerate(states.label_names):
        cols[CONFIDENCE_PREFIX + name] = np.round(states.confidence[:, k].astype(float), 4)
    cols[SOURCE_COLUMN] = states.source
    return pd.DataFrame(cols)


def write_frames(folder: str | Path, scan_id: str, states: FrameStates) -> Path:
    """Write ``<scan_id>.labels.csv`` (format v2) atomically."""
    if not states.label_names:
        raise ValueError("FrameStates without label names cannot be written")
    bad = [n for n in states.label_names if n in (*BASE_COLUMNS, SOURCE_COLUMN, *V1_COLUMNS) or "," in n]
    if bad:
        raise ValueError(f"label names {bad} cannot be CSV columns")
    path = frames_path(folder, scan_id)
    table = states_table(states, scan_id)
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
    return path


def read_frames(
    folder: str | Path, scan_id: str, label_names: list[str] | None = None, *, path: str | Path | None = None
) -> FrameStates:
    """A scan's frame states (v2, or v1 upgraded in memory), over ``label_names`` when given.

    A column that is no label of ``label_names``, a bad ``frame_index`` or an unknown state value
    is a one-line ``InputError`` naming the file. Labels of the set without a column are unknown.
    """
    path = Path(path) if path is not None else frames_path(folder, scan_id)
    table = _read_csv(path)
    if "label" in table.columns and not any(c.startswith(CONFIDENCE_PREFIX) for c in table.columns):
        return _from_v1(path, table, label_names)
    missing = [c for c in ("frame_index", "time_s") if c not in table.columns]
    if missing:
        raise InputError(path, f"missing column(s) {', '.join(missing)} (not a `sonotell label` output)")
    frame_index, time_s = _frame_columns(path, table)
    own = [c for c in table.columns if c not in (*BASE_COLUMNS, SOURCE_COLUMN) and not c.startswith(CONFIDENCE_PREFIX)]
    conf_cols = [c[len(CONFIDENCE_PREFIX) :] for c in table.columns if c.startswith(CONFIDENCE_PREFIX)]
    names = list(label_names) if label_names is not None else own
    _refuse_foreign(path, "column", [c for c in own if c not in names], names)
    for name in conf_cols:
        if name not in own:
            raise InputError(path, f"column {CONFIDENCE_PREFIX + name!r} has no state column {name!r}")
    n = len(table)
    state = np.full((n, len(names)), UNKNOWN, np.int8)
    conf = np.zeros((n, len(names)), np.float32)
    for name in own:
        k = names.index(name)
        values = table[name].astype(str).str.strip().str.lower()
        bad = ~values.isin(list(STATE_OF))
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(
                path, f"row {i + 2}, column {name!r}: {table[name].iloc[i]!r} is not present, absent or unknown"
            )
        state[:, k] = values.map(STATE_OF).to_numpy(np.int8)
        if name in conf_cols:
            conf[:, k] = _number_column(path, table, CONFIDENCE_PREFIX + name, default=0.0)
        else:
            conf[:, k] = np.where(state[:, k] == UNKNOWN, 0.0, 1.0)
    source = _source_column(path, table)
    return FrameStates(frame_index, time_s, state, source, conf, names)


def _read_csv(path: Path):
    import pandas as pd

    if not path.exists():
        raise InputError(path, "frame labels file not found")
    try:
        table = pd.read_csv(path, keep_default_na=False, dtype=str)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, OSError) as e:
        raise InputError(path, f"unreadable labels CSV ({e.__class__.__name__})") from None
    table.columns = [str(c).strip() for c in table.columns]
    dupes = sorted({c for c in table.columns if list(table.columns).count(c) > 1})
    if dupes:
        raise InputError(path, f"column {dupes[0]!r} appears twice")
    unnamed = [c for c in table.columns if not c or c.startswith("Unnamed:")]
    if unnamed:
        raise InputError(path, "a column has no name")
    return table


def _number_column(path: Path, table, column: str, default: float | None = None) -> np.ndarray:
    import pandas as pd

    raw = table[column].astype(str).str.strip()
    if default is not None:
        raw = raw.where(raw != "", str(default))
    values = pd.to_numeric(raw, errors="coerce").to_numpy(float)
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(path, f"row {i + 2}, column {column!r}: {table[column].iloc[i]!r} is not a number")
    return values


def _frame_columns(path: Path, table) -> tuple[np.ndarray, np.ndarray]:
    fi = _number_column(path, table, "frame_index")
    frac = fi != np.round(fi)
    neg = fi < 0
    if frac.any() or neg.any():
        i = int(np.flatnonzero(frac | neg)[0])
        raise InputError(path, f"row {i + 2}: frame_index {table['frame_index'].iloc[i]!r} is not a whole number ≥ 0")
    return fi.astype(np.int64), _number_column(path, table, "time_s")


def _source_column(path: Path, table) -> np.ndarray:
    if SOURCE_COLUMN not in table.columns:
        return np.full(len(table), "speech")
    values = table[SOURCE_COLUMN].astype(str).str.strip().replace("", "speech")
    bad = ~values.isin(list(SOURCES))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(path, f"row {i + 2}: source {values.iloc[i]!r} is not one of {', '.join(SOURCES)}")
    return values.to_numpy(str)


def _from_v1(path: Path, table, label_names: list[str] | None) -> FrameStates:
    """A format-1 table (one ``label`` per frame, ``;``-joined ``absent``) as frame states."""
    key = str(path.parent.resolve())
    if key not in _WARNED_V1:
        _WARNED_V1.add(key)
        log.warning(
            "%s: labels folder of format 1 (one label per frame); read as format 2 in memory. "
            "Write a format-2 copy with `sonotell labels upgrade %s --out NEW`",
            path.parent,
            path.parent,
        )
    missing = [c for c in ("frame_index", "time_s", "label") if c not in table.columns]
    if missing:
        raise InputError(path, f"missing column(s) {', '.join(missing)} (not a `sonotell label` output)")
    frame_index, time_s = _frame_columns(path, table)
    labels = table["label"].astype(str).str.strip().tolist()
    absent = table["absent"].astype(str).tolist() if "absent" in table.columns else [""] * len(table)
    conf = (
        _number_column(path, table, "confidence", default=1.0) if "confidence" in table.columns else np.ones(len(table))
    )
    seen = list(  # row by row, its absent labels first (the order the old reader reported them in)
        dict.fromkeys(
            n for x, neg in zip(labels, absent, strict=True) for n in [*_split(neg), x] if n and n != V1_UNLABELLED
        )
    )
    names = list(label_names) if label_names is not None else seen
    _refuse_foreign(path, "label", [x for x in seen if x not in names], names)
    state = np.full((len(table), len(names)), UNKNOWN, np.int8)
    confidence = np.zeros(state.shape, np.float32)
    for i, (label, neg) in enumerate(zip(labels, absent, strict=True)):
        for name in _split(neg):
            state[i, names.index(name)] = ABSENT
            confidence[i, names.index(name)] = 1.0
        if label and label != V1_UNLABELLED:
            state[i, names.index(label)] = PRESENT
            confidence[i, names.index(label)] = conf[i]
    return FrameStates(frame_index, time_s, state, _source_column(path, table), confidence, names)


def _refuse_foreign(path: Path, what: str, foreign: list[str], names: list[str]) -> None:
    """A ``column`` / ``label`` of the file that the label set does not have: one-line ``InputError``."""
    if foreign:
        raise InputError(
            path,
            f"{what} {foreign[0]!r} is not in the lexicon's label set ({', '.join(names)}): labels made with "
            "another lexicon?",
        )


def _split(joined: str) -> list[str]:
    return [a.strip() for a in str(joined).split(";") if a.strip()]


def frames_format(path: str | Path) -> int:
    """1 or 2: the format of a frame CSV, from its header."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as f:
            header = [c.strip() for c in f.readline().rstrip("\r\n").split(",")]
    except (OSError, UnicodeDecodeError):
        raise InputError(path, "unreadable labels CSV") from None
    return 1 if "label" in header and not any(c.startswith(CONFIDENCE_PREFIX) for c in header) else FORMAT_VERSION


def folder_format(folder: str | Path) -> int | None:
    """The format of a labels folder (from its first frame CSV), or None when it holds none."""
    files = frame_files(folder)
    return frames_format(next(iter(files.values()))) if files else None


# -- a whole scan, a whole folder ----------------------------------------------------------


def write_scan(folder: str | Path, scan_id: str, states: FrameStates, doc: dict) -> Path:
    """Write the scan's frame CSV, then its JSON (with ``labels_format``): the JSON's presence marks it done."""
    csv_path = write_frames(folder, scan_id, states)
    out = {**doc, "labels_format": FORMAT_VERSION, "label_names": list(states.label_names)}
    out["frame_labels_csv"] = csv_path.name
    return write_json(doc_path(folder, scan_id), out)


def is_done(folder: str | Path, scan_id: str, fingerprint: str) -> bool:
    """The scan has both files, in format v2, from the recipe ``fingerprint``."""
    csv_path, json_path = labels_paths(folder, scan_id)
    if not (csv_path.exists() and json_path.exists()):
        return False
    try:
        doc = json.loads(json_path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("fingerprint") == fingerprint and doc.get("labels_format") == 2


def write_summary(folder: str | Path, rows: list[dict], columns: list[str] | tuple[str, ...] | None, doc: dict) -> Path:
    """``summary.csv`` (``rows``; ``columns`` fixes their order, so a table of failures has them too), then
    ``summary.json`` (``doc`` with ``labels_format``)."""
    import pandas as pd

    folder = Path(folder)
    with atomic_path(folder / SUMMARY_CSV) as tmp:
        pd.DataFrame(rows, columns=list(columns) if columns is not None else None).to_csv(tmp, index=False)
    return write_json(folder / SUMMARY_JSON, {**doc, "labels_format": FORMAT_VERSION})


def read_summary_rows(folder: str | Path) -> list[dict]:
    """The rows of ``summary.csv``."""
    import pandas as pd

    path = Path(folder) / SUMMARY_CSV
    try:
        return pd.read_csv(path, keep_default_na=False).to_dict("records")
    except (OSError, pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise InputError(path, f"unreadable summary ({e.__class__.__name__})") from None


def outputs_digest(folder: str | Path) -> dict[str, str]:
    """SHA-256 per scan of its label files, for comparing two runs (engines, machines, resumed or not).

    The frame CSV counts byte for byte; the JSON counts as written except the wall and CPU
    times in ``info`` (``MEASURED_INFO_KEYS``), which are measurements of the run, not results.
    """
    import hashlib

    digests = {}
    for scan_id, csv_path in frame_files(folder).items():
        doc = read_json(doc_path(folder, scan_id))
        doc["info"] = {k: v for k, v in doc.get("info", {}).items() if k not in MEASURED_INFO_KEYS}
        h = hashlib.sha256(csv_path.read_bytes())
        h.update(json.dumps(doc, sort_keys=True).encode())
        digests[scan_id] = h.hexdigest()
    return digests


def summary_counts(states: FrameStates) -> dict:
    """Per scan: frames with any label present, and the labels present somewhere (``;``-joined)."""
    present = states.state == PRESENT
    return {
        "n_frames": len(states),
        "labelled_frames": int(present.any(1).sum()) if len(states) else 0,
        "labels": ";".join(sorted(n for n, on in zip(states.label_names, present.any(0), strict=True) if on)),
    }

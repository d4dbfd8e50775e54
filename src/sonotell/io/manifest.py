"""The scan manifest: one CSV row per narrated scan (schema in docs/ingest.md).

Required columns are ``scan_id``, ``subject_id`` and ``video_path``; the other ``Scan`` fields
are optional (empty cell = unknown) and any extra column (``label``, ``labels``, ``voice`` …)
is kept in the table untouched. Paths are stored relative to the manifest's folder when they
lie under it, so a manifest and its data move together.

Example:
    >>> write_manifest("scans.csv", [Scan("s1", "p1", Path("s1.mp4"))])  # doctest: +SKIP
    >>> scans = read_manifest("scans.csv").scans  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from pathlib import Path

import pandas as pd

from sonotell.errors import InputError
from sonotell.files import atomic_path
from sonotell.io.audio import AUDIO_SUFFIXES
from sonotell.io.video import DICOM_SUFFIXES, VIDEO_SUFFIXES, is_dicom
from sonotell.types import Scan

REQUIRED_COLUMNS = ("scan_id", "subject_id", "video_path")
SCAN_COLUMNS = tuple(f.name for f in fields(Scan))
_INT_COLUMNS = ("n_frames", "width", "height", "audio_sample_rate_hz")
_FLOAT_COLUMNS = ("audio_offset_s", "fps", "audio_duration_s")
_POSITIVE_COLUMNS = ("n_frames", "width", "height", "audio_sample_rate_hz", "fps")  # 0 or less: a broken probe


@dataclass
class Manifest:
    """A read manifest: the scans (paths resolved to absolute) and the full table (extra columns kept)."""

    path: Path
    scans: list[Scan]
    table: pd.DataFrame

    def scan(self, scan_id: str) -> Scan:
        for s in self.scans:
            if s.scan_id == scan_id:
                return s
        raise KeyError(scan_id)


MAX_SCAN_ID_LENGTH = 200


def scan_id_problem(scan_id: str) -> str | None:
    """Why ``scan_id`` cannot name files (``None`` when it can).

    A scan id becomes file and folder names (``<out>/<scan_id>.labels.csv``, the frame cache), so
    it must stay inside the folder it is joined to: no path separators, no ``.``/``..`` or other
    leading dot, no control characters, not empty, at most 200 characters.

    Example:
        >>> scan_id_problem("..")
        "starts with '.' (hidden name or '..')"
    """
    if not scan_id or not scan_id.strip():
        return "is empty"
    if "/" in scan_id or "\\" in scan_id:
        return "contains a path separator ('/' or '\\\\')"
    if scan_id.startswith("."):
        return "starts with '.' (hidden name or '..')"
    if any(ord(c) < 32 or ord(c) == 127 for c in scan_id):
        return "contains control characters"
    if len(scan_id) > MAX_SCAN_ID_LENGTH:
        return f"is longer than {MAX_SCAN_ID_LENGTH} characters"
    return None


def check_scan_id(scan_id: str, where: str | Path | None = None) -> str:
    """``scan_id`` unchanged when it is a safe file name, else ``InputError`` naming ``where`` and the id."""
    problem = scan_id_problem(scan_id)
    if problem is not None:
        raise InputError(where, f"scan_id {scan_id!r} refused: it {problem}")
    return scan_id


def format_roi(roi: tuple[int, int, int, int] | None) -> str:
    return "" if roi is None else ",".join(str(int(v)) for v in roi)


def parse_roi(text: object, where: str | Path | None = None) -> tuple[int, int, int, int] | None:
    """Parse ``"x0,y0,x1,y1"`` (spaces/semicolons also accepted); empty -> None.

    Example:
        >>> parse_roi("10,4,90,60")
        (10, 4, 90, 60)
    """
    if text is None or (isinstance(text, float) and math.isnan(text)) or str(text).strip() == "":
        return None
    parts = str(text).replace(",", " ").replace(";", " ").split()
    try:
        x0, y0, x1, y1 = (int(round(float(p))) for p in parts)
    except ValueError:
        raise InputError(where, f"roi {text!r}: expected four integers 'x0 y0 x1 y1'") from None
    if x1 <= x0 or y1 <= y0 or min(x0, y0) < 0:
        raise InputError(where, f"roi {text!r}: needs 0 <= x0 < x1 and 0 <= y0 < y1")
    return (x0, y0, x1, y1)


def scans_to_table(
    scans: list[Scan], root: str | Path | None = None, extra: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Scans as a DataFrame with the manifest columns; paths relative to ``root`` when under it."""
    rows = []
    for s in scans:
        row = {}
        for name in SCAN_COLUMNS:
            v = getattr(s, name)
            if name in ("video_path", "audio_path"):
                v = "" if v is None else _relative(Path(v), root)
            elif name == "roi":
                v = format_roi(v)
            row[name] = v
        rows.append(row)
    table = pd.DataFrame(rows, columns=list(SCAN_COLUMNS))
    if extra is not None and len(extra):
        extra = extra.drop(columns=[c for c in extra.columns if c in SCAN_COLUMNS]).reset_index(drop=True)
        table = pd.concat([table, extra], axis=1)
    return table


def write_manifest(path: str | Path, scans: list[Scan], extra: pd.DataFrame | None = None) -> Path:
    """Validate ids and write ``path`` atomically; ``extra`` holds additional columns, row-aligned."""
    path = Path(path)
    _check_unique([s.scan_id for s in scans], path)
    table = scans_to_table(scans, root=path.parent.resolve(), extra=extra)
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
    return path


def read_manifest(path: str | Path, *, check_files: bool = True) -> Manifest:
    """Read and validate a manifest: columns, duplicate ids, values, and (optionally) that files exist.

    Raises ``InputError`` naming the manifest (and row) for the first problem found.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "manifest not found")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise InputError(path, "manifest is empty (no header, no rows)") from None
    except Exception as e:  # pandas raises several parser errors
        raise InputError(path, f"unreadable manifest ({e.__class__.__name__}: {e})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(
            path, f"manifest is missing column(s) {', '.join(missing)} (required: {', '.join(REQUIRED_COLUMNS)})"
        )
    if table.empty:
        raise InputError(path, "manifest lists no scans (header only)")
    _check_unique(list(table["scan_id"]), path)
    root = path.parent.resolve()
    scans = [_row_to_scan(row, i, path, root, check_files) for i, row in enumerate(table.to_dict("records"))]
    return Manifest(path=path, scans=scans, table=table)


def _row_to_scan(row: dict, i: int, path: Path, root: Path, check_files: bool) -> Scan:
    where = f"{path} row {i + 2}"  # +2: header line and 1-based lines
    scan_id = row["scan_id"].strip()
    if not scan_id:
        raise InputError(where, "empty scan_id")
    check_scan_id(scan_id, where)
    if not row["video_path"].strip():
        raise InputError(where, f"scan {scan_id!r} has no video_path")
    values: dict = {"scan_id": scan_id, "subject_id": row["subject_id"].strip() or scan_id}
    values["video_path"] = _resolve(row["video_path"], root)
    audio = row.get("audio_path", "").strip()
    values["audio_path"] = _resolve(audio, root) if audio else None
    for name in _INT_COLUMNS + _FLOAT_COLUMNS:
        text = str(row.get(name, "")).strip()
        if not text:
            continue
        try:
            num = float(text)
        except ValueError:
            raise InputError(where, f"column {name}: {text!r} is not a number") from None
        values[name] = _checked_number(name, text, num, where)
    values.setdefault("audio_offset_s", 0.0)
    values["roi"] = parse_roi(row.get("roi"), where)
    scan = Scan(**values)
    if check_files:
        _check_media(scan.video_path, "video", VIDEO_SUFFIXES | DICOM_SUFFIXES, path, i + 2, scan_id)
        if scan.audio_path is not None:
            _check_media(scan.audio_path, "audio", AUDIO_SUFFIXES | VIDEO_SUFFIXES, path, i + 2, scan_id)
    return scan


def _checked_number(name: str, text: str, num: float, where: str) -> int | float:
    """A manifest number that means something: finite; frames, sizes and rates above 0; counts whole."""
    if not math.isfinite(num):
        raise InputError(where, f"column {name}: {text!r} is not a finite number")
    if name in _POSITIVE_COLUMNS and num <= 0:
        raise InputError(where, f"column {name}: {text!r} must be above 0")
    if name == "audio_duration_s" and num < 0:
        raise InputError(where, f"column {name}: {text!r} is negative")
    if name in _INT_COLUMNS:
        if num != int(num):
            raise InputError(where, f"column {name}: {text!r} is not a whole number")
        return int(num)
    return num


def _check_media(p: Path, kind: str, suffixes: set[str], manifest: Path, line: int, scan_id: str) -> None:
    """A manifest names only media files that exist: never a folder, a device or ``/etc/passwd``."""
    where = f"listed in {manifest} (scan {scan_id!r})"
    if not p.exists():
        raise InputError(p, f"{kind} {where} not found (row {line})")
    if not p.is_file():
        raise InputError(p, f"{kind} {where} is not a regular file (row {line})")
    if p.suffix.lower() not in suffixes and not (kind == "video" and is_dicom(p)):
        raise InputError(p, f"{kind} {where} is not a media file (row {line}; expected {', '.join(sorted(suffixes))})")


def _check_unique(ids: list[str], path: Path) -> None:
    seen: set[str] = set()
    dups = sorted({i for i in ids if i in seen or seen.add(i)})
    if dups:
        raise InputError(path, f"duplicate scan_id(s): {', '.join(dups[:10])}")


def _resolve(text: str, root: Path) -> Path:
    p = Path(text.strip())
    return p if p.is_absolute() else root / p


def _relative(p: Path, root: str | Path | None) -> str:
    if root is None:
        return str(p)
    try:
        return (
            os.path.relpath(Path(p).resolve(), Path(root).resolve())
            if Path(p).resolve().is_relative_to(Path(root).resolve())
            else str(Path(p).resolve())
        )
    except (OSError, ValueError):
        return str(p)

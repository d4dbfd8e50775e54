"""The one place ``sonotell deid`` reads and writes a labels folder (``<scan_id>.labels.csv`` + ``<scan_id>.json``).

``sonotell.labels`` (another branch) will own labels folders; at the merge these two functions become calls to it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from sonotell.errors import InputError
from sonotell.files import atomic_path, write_json


def read_scan_labels(labels_dir: Path, scan_id: str) -> tuple[pd.DataFrame | None, dict | None]:
    """The frame-labels table and the JSON document of one scan; None for a file that is not there."""
    csv_path, json_path = Path(labels_dir) / f"{scan_id}.labels.csv", Path(labels_dir) / f"{scan_id}.json"
    table = pd.read_csv(csv_path, dtype={"absent": str}, keep_default_na=False) if csv_path.exists() else None
    doc = None
    if json_path.exists():
        try:
            doc = json.loads(json_path.read_text())
        except ValueError:
            raise InputError(json_path, "not valid JSON") from None
        if not isinstance(doc, dict):
            raise InputError(json_path, "not a labels document (a JSON object)")
    return table, doc


def write_scan_labels(labels_dir: Path, scan_id: str, table: pd.DataFrame | None, doc: dict | None) -> None:
    """Write the table (CSV) then the document (JSON), each atomically."""
    labels_dir.mkdir(parents=True, exist_ok=True)
    if table is not None:
        with atomic_path(labels_dir / f"{scan_id}.labels.csv") as tmp:
            table.to_csv(tmp, index=False)
    if doc is not None:
        if table is not None:
            doc["frame_labels_csv"] = f"{scan_id}.labels.csv"
        write_json(labels_dir / f"{scan_id}.json", doc)

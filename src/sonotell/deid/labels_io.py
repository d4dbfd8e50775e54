"""How ``sonotell deid`` copies a scan's labels: through ``sonotell.labels``, the one owner of labels folders.

The frame states are copied as they are (a format-1 folder is written as format 2); only the scan's
JSON document (words, segments, ids) is redacted by the caller.
"""

from __future__ import annotations

from pathlib import Path

from sonotell import labels
from sonotell.files import write_json


def read_scan_labels(labels_dir: Path, scan_id: str) -> tuple[labels.FrameStates | None, dict | None]:
    """The frame states and the JSON document of one scan; None for a file that is not there."""
    states = labels.read_frames(labels_dir, scan_id) if labels.frames_path(labels_dir, scan_id).exists() else None
    doc = labels.read_scan_doc(labels_dir, scan_id) if labels.doc_path(labels_dir, scan_id).exists() else None
    return states, doc


def write_scan_labels(labels_dir: Path, scan_id: str, states: labels.FrameStates | None, doc: dict | None) -> None:
    """Write the frame states then the document, each atomically (the document alone when there are no frames)."""
    labels_dir.mkdir(parents=True, exist_ok=True)
    if states is not None and doc is not None:
        labels.write_scan(labels_dir, scan_id, states, doc)
    elif states is not None:
        labels.write_frames(labels_dir, scan_id, states)
    elif doc is not None:
        write_json(labels.doc_path(labels_dir, scan_id), doc)

"""Rebuild a labels folder's frame files from its events, without running speech recognition again.

``realign_folder(OLD, NEW)`` reads each scan's ``<scan_id>.json`` (what the pipeline heard: events,
words, info) from a labels folder of either format and writes a format-2 folder: the events aligned
again with the ``align`` rules of the folder's recipe (new keys such as ``max_view_s`` from
``speech.yaml`` or ``overrides``) and the lexicon's scopes. A label of ``view`` scope needs the scan's
views: from the JSON when the pipeline recorded them (``view_starts``), else found on the scan's
video when ``scans`` names it, else unknown (the mention then holds ``max_view_s`` either side).

Example:
    >>> realign_folder("labels_v1", "labels_v2", scans=read_manifest("bench/lung/manifest.csv").scans)  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

from sonotell import labels as labels_io
from sonotell.errors import InputError
from sonotell.files import check_run_fingerprint
from sonotell.progress import Progress, silent
from sonotell.speech.align import RETIRED_KEYS, AlignConfig, align_states
from sonotell.speech.lexicon import load_lexicon
from sonotell.speech.pipeline import recipe_fingerprint, scan_view_starts
from sonotell.types import Scan, TermEvent

log = logging.getLogger(__name__)

SUMMARY_COLUMNS = (
    *labels_io.SUMMARY_COLUMNS,
    "views",
    "error",
)


def realign_folder(
    old: str | Path,
    new: str | Path,
    *,
    scans: list[Scan] | None = None,
    lexicon: str | None = None,
    overrides: dict | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> dict:
    """Write the format-2 frame files of every scan of ``old`` into ``new``; return the summary.

    ``lexicon``: when the folder names none (or to read it with another lexicon of the same labels).
    ``overrides``: ``align`` settings that replace the folder's (e.g. ``{"max_view_s": 10}``).
    ``new`` must not be ``old``. A scan whose files are bad is listed as failed with its one-line error.
    """
    progress = progress or silent
    old, new = Path(old), Path(new)
    if not old.is_dir():
        raise InputError(old, "labels folder not found")
    if new.resolve() == old.resolve():
        raise InputError(new, "the new labels folder must not be the old one (a command never overwrites its inputs)")
    ids = labels_io.scan_ids(old)
    if not ids:
        raise InputError(old, "no labelled scans (<scan_id>.labels.csv + <scan_id>.json) in this folder")
    summary = labels_io.read_summary(old)
    lex_name = lexicon or summary.get("lexicon") or labels_io.read_scan_doc(old, ids[0]).get("lexicon")
    if not lex_name:
        raise InputError(old / labels_io.SUMMARY_JSON, "the folder names no lexicon: pass one (--lexicon)")
    lex = load_lexicon(str(lex_name))
    config = copy.deepcopy(summary.get("config") or {})
    saved_align = {k: v for k, v in (config.get("align") or {}).items() if k not in RETIRED_KEYS}
    align = AlignConfig.from_dict({**saved_align, **(overrides or {})})
    config["align"] = align.to_dict()
    fingerprint = recipe_fingerprint(config, lex)
    by_id = {s.scan_id: s for s in scans or []}
    need_views = "view" in lex.scopes.values()
    new.mkdir(parents=True, exist_ok=True)
    check_run_fingerprint(new, fingerprint, overwrite=overwrite, what="sonotell label")
    rows = []
    for n, scan_id in enumerate(ids):
        progress(n, len(ids), scan_id)
        try:
            scan = by_id.get(scan_id)
            rows.append(_realign_scan(old, new, scan_id, lex, str(lex_name), align, fingerprint, scan, need_views))
        except InputError as e:
            rows.append({"scan_id": scan_id, "status": "failed", "error": str(e)})
    progress(len(ids), len(ids), "realigned")
    ordered = [{**dict.fromkeys(SUMMARY_COLUMNS, ""), **r} for r in rows]
    failed = [{"scan_id": r["scan_id"], "error": r["error"]} for r in ordered if r["status"] == "failed"]
    counts: dict[str, int] = {}
    for r in ordered:
        for lab in filter(None, str(r["labels"]).split(";")):
            counts[lab] = counts.get(lab, 0) + 1
    out = {
        "fingerprint": fingerprint,
        "lexicon": str(lex_name),
        "config": config,
        "realigned_from": str(old.resolve()),
        "n_scans": len(ids),
        "n_done": len(ids) - len(failed),
        "n_failed": len(failed),
        "failed": failed,
        "scans_with_label": counts,
        "views": {k: sum(r["views"] == k for r in ordered) for k in ("recorded", "detected", "unknown", "not needed")},
    }
    labels_io.write_summary(new, ordered, SUMMARY_COLUMNS, out)
    return {**out, "labels_format": labels_io.FORMAT_VERSION}


def _realign_scan(
    old: Path,
    new: Path,
    scan_id: str,
    lex,
    lex_name: str,
    align: AlignConfig,
    fingerprint: str,
    scan: Scan | None,
    need_views: bool,
) -> dict:
    doc = labels_io.read_scan_doc(old, scan_id)
    path = labels_io.doc_path(old, scan_id)
    previous = labels_io.read_frames(old, scan_id, lex.labels)
    info = doc.get("info") or {}
    n_frames = int(info.get("n_frames") or len(previous))
    fps = info.get("fps")
    if not fps:
        t = previous.time_s
        fps = 1.0 / float(t[1] - t[0]) if len(t) > 1 and t[1] > t[0] else None
    if not fps:
        raise InputError(path, "no frame rate (info.fps) and fewer than two frames to infer it from")
    events = []
    for e in doc.get("events", []):
        label = lex.resolve_label(e["label"]) if e["label"] not in lex.labels else e["label"]
        if label is None:
            raise InputError(path, f"event label {e['label']!r} is not in the lexicon's label set")
        fields = {k: e[k] for k in ("term", "confidence", "negated", "speaker") if k in e}
        events.append(TermEvent(label, fields.pop("term", label), float(e["start_s"]), float(e["end_s"]), **fields))
    views, how = doc.get("view_starts"), "recorded"
    if not need_views:
        views, how = None, "not needed"
    elif views is None and scan is not None:
        try:
            views, how = scan_view_starts(scan, align), "detected"
        except InputError as e:  # an unreadable video: the views stay unknown, the labels are still made
            log.warning("%s; views unknown", e)
            how = "unknown"
    elif views is None:
        how = "unknown"
    times = previous.time_s if len(previous) == n_frames and info.get("variable_frame_rate") else None
    states = align_states(
        events,
        lex.labels,
        fps=float(fps),
        n_frames=n_frames,
        config=align,
        times=times,
        scopes=lex.scopes,
        view_starts=views,
    )
    if len(previous) == n_frames:
        states.source = previous.source  # frames a person reviewed stay marked so
    out_doc = {**doc, "fingerprint": fingerprint, "lexicon": lex_name, "realigned": True}
    if views is not None:
        out_doc["view_starts"] = [int(v) for v in views]
    labels_io.write_scan(new, scan_id, states, out_doc)
    return {
        "scan_id": scan_id,
        "subject_id": doc.get("subject_id", ""),
        "status": "done",
        **labels_io.summary_counts(states),
        "n_events": sum(not e.negated for e in events),
        "n_negated": sum(bool(e.negated) for e in events),
        "views": how,
        "error": "",
    }

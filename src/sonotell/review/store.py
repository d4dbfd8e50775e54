"""Review files beside the labels, the reviewed events they give, and the reviewed-labels export.

A labels folder (the output of ``sonotell label``) holds per scan ``<scan_id>.json`` (events, words,
segments, info) and ``<scan_id>.labels.csv``; a reviewer's decisions go to ``<scan_id>.review.json``
in the same folder. The pipeline's files are never written here.

Pipeline events get a stable id from their content, so rerunning ``label`` with the same output keeps
every review; a decision about an event that is no longer in the output is kept and reported as an
*orphan*: its reviewer-made version (accepted or edited) still counts as reviewed truth.

Review file (``format: sonotell.review/1``)::

    {"format": ..., "scan_id": "s1", "reviewed": false, "reviewed_by": null, "reviewed_at": null,
     "decisions": {"e1a2b3c4d5": {"status": "accepted|edited|rejected|added", "label": ..., "start_s": ...,
                   "end_s": ..., "negated": false, "term": ..., "speaker": ..., "by": "ana", "at": "...",
                   "rev": 3, "base": {the pipeline event, or null for an added one}}},
     "history": [{"at", "by", "event_id", "before", "after"}]}

Example:
    >>> ev = {"label": "liver", "term": "liver", "start_s": 1.0, "end_s": 1.4, "confidence": 0.4, "negated": False}
    >>> eid = event_ids([ev])[0]
    >>> review = {"decisions": {eid: {"status": "edited", "label": "spleen", "start_s": 1.0, "end_s": 1.5,
    ...                               "negated": False}}}
    >>> [(e["label"], e["end_s"], e["source"]) for e in reviewed_events([ev], review)]
    [('spleen', 1.5, 'reviewed')]
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from sonotell import labels as labels_io
from sonotell.errors import InputError
from sonotell.files import write_json
from sonotell.labels import FrameStates
from sonotell.speech.align import AlignConfig, align_states
from sonotell.types import TermEvent

REVIEW_FORMAT = "sonotell.review/1"
STATUSES = ("accepted", "edited", "rejected", "added")
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def event_id(event: dict) -> str:
    """A content id of a pipeline event: the same event in a rerun of ``label`` gets the same id."""
    key = "|".join(
        str(x)
        for x in (
            event["label"],
            event.get("term", ""),
            f"{float(event['start_s']):.2f}",
            f"{float(event['end_s']):.2f}",
            bool(event.get("negated")),
            event.get("speaker"),
        )
    )
    return "e" + hashlib.sha1(key.encode()).hexdigest()[:10]


def event_ids(events: list[dict]) -> list[str]:
    """Ids of a scan's pipeline events (a repeated identical event gets ``-2``, ``-3`` ...)."""
    seen: dict[str, int] = {}
    out = []
    for e in events:
        base = event_id(e)
        seen[base] = seen.get(base, 0) + 1
        out.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return out


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def review_path(labels_dir: Path, scan_id: str) -> Path:
    return Path(labels_dir) / f"{scan_id}.review.json"


def empty_review(scan_id: str) -> dict:
    return {
        "format": REVIEW_FORMAT,
        "scan_id": scan_id,
        "reviewed": False,
        "reviewed_by": None,
        "reviewed_at": None,
        "decisions": {},
        "history": [],
    }


def load_review(labels_dir: Path, scan_id: str) -> dict:
    """The scan's review file (an empty review when there is none); a broken file is an ``InputError``."""
    path = review_path(labels_dir, scan_id)
    if not path.exists():
        return empty_review(scan_id)
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InputError(path, f"unreadable review file ({e.__class__.__name__})") from None
    if not isinstance(doc, dict) or doc.get("format") != REVIEW_FORMAT or not isinstance(doc.get("decisions"), dict):
        raise InputError(path, f"not a review file (expected format {REVIEW_FORMAT!r})")
    for eid, d in doc["decisions"].items():
        if not isinstance(d, dict) or d.get("status") not in STATUSES:
            raise InputError(path, f"decision {eid!r}: status must be one of {', '.join(STATUSES)}")
        if d["status"] != "rejected":
            for k in ("label", "start_s", "end_s"):
                if k not in d:
                    raise InputError(path, f"decision {eid!r}: missing {k}")
    out = empty_review(scan_id)
    out.update(doc)
    return out


def scan_lock(labels_dir: Path, scan_id: str) -> threading.Lock:
    """One lock per review file: concurrent requests update it one at a time (read, change one event, write)."""
    key = str(review_path(labels_dir, scan_id).resolve())
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.Lock())


def save_review(labels_dir: Path, scan_id: str, review: dict) -> Path:
    return write_json(review_path(labels_dir, scan_id), review)


def reviewed_events(
    events: list[dict], review: dict, *, keep_rejected: bool = False, accept_undecided: bool = False
) -> list[dict]:
    """The scan's events after the review: rejected ones dropped, edits applied, added and orphaned ones kept.

    Each event gets ``id``, ``status`` (``speech`` when undecided) and ``source`` (``speech`` | ``reviewed``);
    reviewed events have confidence 1.0 (a person checked them). Sorted by start. ``keep_rejected`` lists
    rejected events too (status ``rejected``), for display. ``accept_undecided``: the scan was marked reviewed, so
    the events the reviewer left as they were are accepted.
    """
    decisions = review.get("decisions", {})
    out, known = [], set()
    for eid, e in zip(event_ids(events), events, strict=True):
        known.add(eid)
        d = decisions.get(eid)
        if d is None and accept_undecided:
            out.append({**e, "id": eid, "status": "accepted", "source": "reviewed", "confidence": 1.0})
        elif d is None:
            out.append({**e, "id": eid, "status": "speech", "source": "speech"})
        elif d["status"] != "rejected" or keep_rejected:
            out.append(_decided(eid, d, e))
    for eid, d in decisions.items():
        if eid in known or not (d.get("label") or (d.get("base") or {}).get("label")):
            continue
        if d["status"] != "rejected" or keep_rejected:
            out.append({**_decided(eid, d, d.get("base") or {}), "orphan": d["status"] != "added"})
    return sorted(out, key=lambda e: (e["start_s"], e["end_s"]))


def _decided(eid: str, d: dict, base: dict) -> dict:
    fields = ("label", "start_s", "end_s", "negated")
    ev = {**base, **{k: d[k] for k in fields if d.get(k) is not None}}
    ev.setdefault("term", d.get("term") or ev["label"])
    ev.setdefault("speaker", d.get("speaker"))
    ev["negated"] = bool(ev.get("negated"))
    return {**ev, "confidence": 1.0, "id": eid, "status": d["status"], "source": "reviewed"}


def conflicting(events: list[dict]) -> bool:
    """Two overlapping events that disagree: different labels, or one label said and negated."""
    evs = sorted(events, key=lambda e: e["start_s"])
    for i, a in enumerate(evs):
        for b in evs[i + 1 :]:
            if b["start_s"] >= a["end_s"]:
                break
            if a["label"] != b["label"] or bool(a.get("negated")) != bool(b.get("negated")):
                return True
    return False


# -- a labels folder ----------------------------------------------------------------------------


@dataclass
class LabelsFolder:
    """The output of ``sonotell label`` read for review: which scans, which lexicon, which alignment."""

    path: Path
    summary: dict
    scan_ids: list[str]

    @classmethod
    def open(cls, path: str | Path) -> LabelsFolder:
        path = Path(path)
        if not path.is_dir():
            raise InputError(path, "labels folder not found")
        summary = labels_io.read_summary(path)
        ids = labels_io.scan_ids(path)
        if not ids:
            raise InputError(path, "no labelled scans (<scan_id>.labels.csv + <scan_id>.json) in this folder")
        return cls(path, summary, ids)

    @property
    def lexicon_name(self) -> str | None:
        return self.summary.get("lexicon")

    @property
    def align_config(self) -> AlignConfig:
        return AlignConfig.from_dict((self.summary.get("config") or {}).get("align"))

    @property
    def label_names(self) -> list[str] | None:
        """The lexicon's labels (the frame files' columns), or None when the folder names no lexicon."""
        if not self.lexicon_name:
            return None
        from sonotell.speech.lexicon import load_lexicon

        return load_lexicon(self.lexicon_name).labels

    @property
    def scopes(self) -> dict[str, str]:
        if not self.lexicon_name:
            return {}
        from sonotell.speech.lexicon import load_lexicon

        return load_lexicon(self.lexicon_name).scopes

    def scan_doc(self, scan_id: str) -> dict:
        if scan_id not in self.scan_ids:
            raise KeyError(scan_id)
        doc = labels_io.read_scan_doc(self.path, scan_id)
        if not isinstance(doc.get("events"), list):
            raise InputError(
                labels_io.doc_path(self.path, scan_id), "no events list: not a label file of `sonotell label`"
            )
        return doc

    def frames(self, scan_id: str) -> FrameStates:
        names = self.scan_doc(scan_id).get("label_names") or self.label_names
        return labels_io.read_frames(self.path, scan_id, names)

    def review(self, scan_id: str) -> dict:
        return load_review(self.path, scan_id)


def frame_timing(doc: dict, frames) -> tuple[float, int]:
    """(fps, n_frames) of a scan: from the label file's info, else from the frame table (a table or a callable)."""
    info = doc.get("info") or {}
    if info.get("n_frames") and info.get("fps"):
        return float(info["fps"]), int(info["n_frames"])
    frames = frames() if callable(frames) else frames
    n = int(info.get("n_frames") or len(frames))
    fps = info.get("fps")
    if not fps:
        times = list(frames.time_s[:2])
        fps = 1.0 / (times[1] - times[0]) if len(times) == 2 and times[1] > times[0] else 1.0
    return float(fps), n


def _term_event(e: dict) -> TermEvent:
    return TermEvent(
        e["label"],
        e.get("term") or e["label"],
        float(e["start_s"]),
        float(e["end_s"]),
        float(e.get("confidence", 1.0)),
        bool(e.get("negated")),
        e.get("speaker"),
    )


def reviewed_frame_table(folder: LabelsFolder, scan_id: str) -> FrameStates:
    """The scan's frame states with its review applied (``FrameStates``; ``source`` per frame).

    No decision: the pipeline's own states, ``source = speech``. Otherwise the frames are aligned again
    from the reviewed events with the pipeline's alignment rules and the lexicon's scopes (views as the
    pipeline found them); a frame is ``reviewed`` when the scan is marked reviewed or a decided event's
    window (before or after the decision) covers it.
    """
    doc, frames, review = folder.scan_doc(scan_id), folder.frames(scan_id), folder.review(scan_id)
    if not review["decisions"] and not review.get("reviewed"):
        frames.source = np.full(len(frames), "speech")
        return frames
    fps, n = frame_timing(doc, frames)
    cfg = folder.align_config
    events = reviewed_events(doc["events"], review, accept_undecided=bool(review.get("reviewed")))
    states = align_states(
        [_term_event(e) for e in events],
        frames.label_names,
        fps=fps,
        n_frames=n,
        config=cfg,
        scopes=folder.scopes,
        view_starts=doc.get("view_starts"),
    )
    touched = np.zeros(n, bool)
    if review.get("reviewed"):
        touched[:] = True
    else:
        spans = [(float(e["start_s"]), float(e["end_s"])) for e in events if e["source"] == "reviewed"]
        spans += [
            (float(d["base"]["start_s"]), float(d["base"]["end_s"]))
            for d in review["decisions"].values()
            if d.get("base")
        ]
        for s, e in spans:
            lo, hi = max(0, int((s - cfg.before_s) * fps)), min(n - 1, int((e + cfg.after_s) * fps) + 1)
            touched[lo : hi + 1] = True
    states.source = np.where(touched, "reviewed", "speech")
    return states


def export_reviewed(labels_dir: str | Path, out_dir: str | Path, *, only_reviewed: bool = False, progress=None) -> dict:
    """Write the reviewed labels into ``out_dir``: the labels-folder format of ``sonotell label`` (``source`` filled).

    Per scan ``<scan_id>.labels.csv`` and ``<scan_id>.json`` (its events are the reviewed events), then
    ``summary.csv`` / ``summary.json``. ``only_reviewed`` keeps the scans marked reviewed only.
    Returns the summary.
    """
    from sonotell.progress import silent

    progress = progress or silent
    folder = LabelsFolder.open(labels_dir)
    out_dir = Path(out_dir)
    if out_dir.resolve() == folder.path.resolve():
        raise InputError(
            out_dir, "export folder must not be the labels folder (the pipeline's files are never overwritten)"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for k, scan_id in enumerate(folder.scan_ids):
        review = folder.review(scan_id)
        if only_reviewed and not review.get("reviewed"):
            continue
        doc = folder.scan_doc(scan_id)
        states = reviewed_frame_table(folder, scan_id)
        events = reviewed_events(doc["events"], review, accept_undecided=bool(review.get("reviewed")))
        out_doc = {
            **doc,
            "events": [_plain_event(e) for e in events],
            "review": {
                "reviewed": bool(review.get("reviewed")),
                "reviewed_by": review.get("reviewed_by"),
                "n_decisions": len(review["decisions"]),
            },
        }
        labels_io.write_scan(out_dir, scan_id, states, out_doc)
        rows.append(
            {
                "scan_id": scan_id,
                "subject_id": doc.get("subject_id", scan_id),
                "status": "done",
                **labels_io.summary_counts(states),
                "n_events": sum(not e["negated"] for e in events),
                "n_negated": sum(bool(e["negated"]) for e in events),
                "reviewed": bool(review.get("reviewed")),
                "reviewed_frames": int((states.source == "reviewed").sum()),
            }
        )
        progress(k + 1, len(folder.scan_ids), scan_id)
    summary = {
        **{k: v for k, v in folder.summary.items() if k in ("fingerprint", "lexicon", "config")},
        "source_labels": str(folder.path.resolve()),
        "n_scans": len(rows),
        "n_done": len(rows),
        "n_failed": 0,
        "failed": [],
        "n_reviewed": sum(r["reviewed"] for r in rows),
    }
    labels_io.write_summary(out_dir, rows, None, summary)
    return {**summary, "labels_format": labels_io.FORMAT_VERSION}


def _plain_event(e: dict) -> dict:
    """A ``TermEvent`` dict (the contract) plus where it came from."""
    return {
        "label": e["label"],
        "term": e.get("term") or e["label"],
        "start_s": float(e["start_s"]),
        "end_s": float(e["end_s"]),
        "confidence": float(e.get("confidence", 1.0)),
        "negated": bool(e.get("negated")),
        "speaker": e.get("speaker"),
        "source": e["source"],
    }


def reviewed_truth(labels_dir: str | Path) -> dict[str, dict]:
    """Per scan marked reviewed: a truth dict (``scan_id``, ``events``, ``fps``, ``n_frames``) for ``eval labels``."""
    folder = LabelsFolder.open(labels_dir)
    out = {}
    for scan_id in folder.scan_ids:
        review = folder.review(scan_id)
        if not review.get("reviewed"):
            continue
        doc = folder.scan_doc(scan_id)
        fps, n = frame_timing(doc, lambda s=scan_id: folder.frames(s))
        out[scan_id] = {
            "scan_id": scan_id,
            "events": [_plain_event(e) for e in reviewed_events(doc["events"], review, accept_undecided=True)],
            "segments": [],
            "fps": fps,
            "n_frames": n,
        }
    return out

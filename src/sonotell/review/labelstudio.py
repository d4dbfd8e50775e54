"""Label Studio round trip: tasks + a labelling config out, its JSON export back into review files.

``export_label_studio`` writes ``config.xml`` (a video with a ``TimelineLabels`` control: one label per
lexicon label and one ``no <label>`` per label for negated mentions, the narration as an ``Audio`` synced
with the video, plus the transcript) and ``tasks.json`` (one task per scan; the pipeline's events as
predictions with their scores). Media URLs are ``<media_url_prefix><path relative to the manifest's folder>``
(the prefix set once for the whole export); with ``previews`` the video is the browser preview (H.264 with
the narration inside, ``sonotell.io.preview``), which any browser plays. Label Studio's timeline regions count
video frames from 1: frame ``k`` (1-based) covers ``[(k-1)/fps, k/fps)``; a region is the frames an event
covers, so its end frame ``k`` means the event ends at ``k/fps`` (not at the start of its last frame).

``import_label_studio`` reads Label Studio's JSON export (a list of tasks with ``annotations``) and
writes each task's latest annotation as the scan's review: every pipeline event the annotation keeps
(same label, same frames) is accepted, a changed one is edited, a missing one rejected, a new region added.

Example:
    >>> frames_to_seconds(*seconds_to_frames(1.0, 1.4, fps=10), fps=10)
    (1.0, 1.4)
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from xml.sax.saxutils import quoteattr

from sonotell.errors import InputError
from sonotell.files import write_json, write_text
from sonotell.review.store import (
    LabelsFolder,
    event_ids,
    frame_timing,
    load_review,
    now_iso,
)

NEGATED_PREFIX = "no "
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"]
FROM_NAME, TO_NAME, AUDIO_NAME = "events", "video", "narration"


def seconds_to_frames(start_s: float, end_s: float, fps: float) -> tuple[int, int]:
    """Label Studio's 1-based frames covered by ``[start_s, end_s)``: the first and the last (at least one)."""
    eps = 1e-6  # 1.5 s at 10 fps is 15.000000000000002 frames: not a 16th frame
    a = math.floor(start_s * fps + eps) + 1
    return a, max(a, math.ceil(end_s * fps - eps))


def frames_to_seconds(start: int, end: int, fps: float) -> tuple[float, float]:
    """The time span of frames ``start..end`` (1-based, inclusive): from the first's start to the last's end."""
    return round((int(start) - 1) / fps, 6), round(int(end) / fps, 6)


def labelling_config(labels: list[str], fps: float) -> str:
    """The Label Studio labelling config: video, narration (synced), timeline labels (said, negated), transcript."""
    rows = []
    for i, lab in enumerate(labels):
        colour = PALETTE[i % len(PALETTE)]
        rows.append(f"    <Label value={quoteattr(lab)} background={quoteattr(colour)}/>")
        rows.append(f'    <Label value={quoteattr(NEGATED_PREFIX + lab)} background="#999999"/>')
    return (
        "\n".join(
            [
                "<View>",
                '  <Header value="$scan_id"/>',
                f'  <Video name="{TO_NAME}" value="$video" frameRate="{fps:g}" timelineHeight="120"'
                f' sync="{AUDIO_NAME}"/>',
                f'  <Audio name="{AUDIO_NAME}" value="$audio" sync="{TO_NAME}"/>',
                f'  <TimelineLabels name="{FROM_NAME}" toName="{TO_NAME}">',
                *rows,
                "  </TimelineLabels>",
                '  <Text name="transcript" value="$transcript"/>',
                "</View>",
            ]
        )
        + "\n"
    )


def _region(eid: str, ev: dict, fps: float) -> dict:
    a, b = seconds_to_frames(float(ev["start_s"]), float(ev["end_s"]), fps)
    label = (NEGATED_PREFIX if ev.get("negated") else "") + ev["label"]
    return {
        "id": eid,
        "from_name": FROM_NAME,
        "to_name": TO_NAME,
        "type": "timelinelabels",
        "value": {"ranges": [{"start": a, "end": b}], "timelinelabels": [label]},
        "score": float(ev.get("confidence", 1.0)),
    }


def export_label_studio(
    labels_dir: str | Path,
    out_dir: str | Path,
    *,
    media_url_prefix: str = "/data/local-files/?d=",
    manifest: str | Path | None = None,
    labels: list[str] | None = None,
    previews: str | Path | None = None,
) -> dict:
    """Write ``config.xml`` and ``tasks.json`` for Label Studio; returns ``{"tasks": n, "fps": fps}``.

    ``media_url_prefix`` goes before each media file's path relative to the manifest's folder (default: Label
    Studio's local-files serving, with ``LOCAL_FILES_DOCUMENT_ROOT`` at that folder). ``previews``: a cache
    folder of ``sonotell.io.preview`` (made there when missing): the tasks' videos are the previews,
    ``previews/<scan_id>.mp4`` relative to that folder. All scans must share one frame rate.
    """
    from sonotell.io.manifest import read_manifest
    from sonotell.speech.lexicon import load_lexicon

    folder = LabelsFolder.open(labels_dir)
    labels = labels or load_lexicon(folder.lexicon_name or "").labels
    scans, root = {}, folder.path
    if manifest is not None:
        scans = {s.scan_id: s for s in read_manifest(manifest, check_files=False).scans}
        root = Path(manifest).resolve().parent
    tasks, rates = [], set()
    for scan_id in folder.scan_ids:
        doc = folder.scan_doc(scan_id)
        fps, n = frame_timing(doc, lambda s=scan_id: folder.frames(s))
        rates.add(round(fps, 3))
        events = doc["events"]
        video, audio = _media_urls(scans.get(scan_id), scan_id, root, media_url_prefix, previews)
        transcript = " ".join(w["text"] for w in doc.get("words", []))
        result = [
            _region(eid, e, fps) for eid, e in zip(event_ids(events), events, strict=True) if e["label"] in labels
        ]
        score = sum(r["score"] for r in result) / len(result) if result else 0.0
        tasks.append(
            {
                "data": {
                    "scan_id": scan_id,
                    "video": video,
                    "audio": audio,
                    "transcript": transcript or "(no words)",
                    "fps": fps,
                    "n_frames": n,
                },
                "predictions": [
                    {
                        "model_version": f"sonotell-{folder.summary.get('fingerprint', 'speech')}",
                        "score": round(score, 4),
                        "result": result,
                    }
                ],
            }
        )
    if len(rates) > 1:
        raise InputError(
            folder.path, f"scans have different frame rates {sorted(rates)}: export them in groups of one rate"
        )
    fps = rates.pop()
    out_dir = Path(out_dir)
    write_text(out_dir / "config.xml", labelling_config(labels, fps))
    write_json(out_dir / "tasks.json", tasks)
    return {"tasks": len(tasks), "fps": fps, "labels": labels}


def _media_urls(scan, scan_id: str, root: Path, prefix: str, previews: str | Path | None) -> tuple[str, str]:
    """(video URL, narration URL) of a scan: the prefix, then the file's path relative to ``root`` (posix)."""
    from urllib.parse import quote

    def url(path: Path, base: Path) -> str:
        try:
            rel = Path(path).resolve().relative_to(base.resolve()).as_posix()
        except ValueError:
            rel = Path(path).name  # outside the folder: the name alone (serve it under the prefix)
        return prefix + quote(rel)

    if scan is None:
        return prefix + quote(f"{scan_id}.mp4"), prefix + quote(f"{scan_id}.mp4")
    audio = url(scan.audio_source, root)
    if previews is not None:
        from sonotell.io.preview import ensure_preview

        return url(ensure_preview(scan, previews), Path(previews)), audio
    return url(scan.video_path, root), audio


# -- import: validate every task first, then write every review file or none ---------------------------------------


def import_label_studio(export_json: str | Path, labels_dir: str | Path, *, mark_reviewed: bool = True) -> dict:
    """Turn Label Studio's JSON export into review files in ``labels_dir``; returns counts per status.

    Every task is checked before anything is written (types, frame ranges inside the scan, labels of
    the lexicon, existing review files readable): a bad export is one ``InputError`` naming the task,
    and no review file changes. A task without a kept (not cancelled) annotation is skipped. The
    review files are then written together (all staged, then renamed), under their review locks.
    """
    from sonotell.review.store import read_strict_json
    from sonotell.speech.lexicon import load_lexicon

    export_json = Path(export_json)
    tasks = read_strict_json(export_json, "not a Label Studio JSON export")
    if not isinstance(tasks, list):
        raise InputError(export_json, "a Label Studio JSON export is a list of tasks")
    folder = LabelsFolder.open(labels_dir)
    lexicon_labels = set(load_lexicon(folder.lexicon_name or "").labels)
    counts = {"scans": 0, "accepted": 0, "edited": 0, "rejected": 0, "added": 0, "skipped_tasks": 0}
    planned: dict[str, tuple[int, list[dict]]] = {}
    for i, task in enumerate(tasks):
        where = f"{export_json} task {i}"
        scan_id, annotation = _task_annotation(task, where)
        if scan_id not in folder.scan_ids or annotation is None:
            counts["skipped_tasks"] += 1
            continue
        if scan_id in planned:
            raise InputError(where, f"scan {scan_id!r} is annotated in task {planned[scan_id][0]} too: keep one task")
        doc = folder.scan_doc(scan_id)
        fps, n = frame_timing(doc, lambda s=scan_id: folder.frames(s))
        duration = max(n / fps, float((doc.get("info") or {}).get("duration_s") or 0.0))
        planned[scan_id] = (i, _annotation_events(annotation, fps, duration, lexicon_labels, where))
    for scan_id in planned:  # an unreadable review file fails now, before any lock file or review is written
        load_review(folder.path, scan_id)
    _write_reviews(folder, planned, mark_reviewed, counts)
    return counts


def _task_annotation(task, where: str) -> tuple[str | None, dict | None]:
    """(scan id, the latest kept annotation) of a task; (None, None) for a task of another project."""
    if not isinstance(task, dict):
        raise InputError(where, "a task must be a JSON object")
    data = task.get("data")
    if data is None:
        return None, None
    if not isinstance(data, dict):
        raise InputError(where, "data must be a JSON object")
    scan_id = data.get("scan_id")
    if scan_id is None:
        return None, None
    if not isinstance(scan_id, str):
        raise InputError(where, "data.scan_id must be text")
    anns = task.get("annotations")
    if anns is None:
        return scan_id, None
    if not isinstance(anns, list) or not all(isinstance(a, dict) for a in anns):
        raise InputError(where, "annotations must be a list of objects")
    for a in anns:
        if not isinstance(a.get("was_cancelled", False), bool):
            raise InputError(where, "annotation was_cancelled must be true or false")
        for k in ("updated_at", "created_at"):
            if a.get(k) is not None and not isinstance(a[k], str):
                raise InputError(where, f"annotation {k} must be text")
        if a.get("id") is not None and not _is_id(a["id"]):
            raise InputError(where, "annotation id must be a number or text")
        if not isinstance(a.get("result", []), list) or not all(isinstance(r, dict) for r in a.get("result") or []):
            raise InputError(where, "annotation result must be a list of objects")
    kept = [a for a in anns if not a.get("was_cancelled")]
    if not kept:  # nothing decided (none, or every annotation cancelled): the scan keeps its review
        return scan_id, None
    return scan_id, max(kept, key=_annotation_order)


def _is_id(x) -> bool:
    return isinstance(x, str) or (isinstance(x, int) and not isinstance(x, bool))


def _annotation_order(a: dict) -> tuple:
    ident = a.get("id")
    return (
        a.get("updated_at") or a.get("created_at") or "",
        (0, ident, "") if isinstance(ident, int) else (1, 0, str(ident)),
    )


def _annotator(ann: dict) -> str:
    who = ann.get("completed_by")
    if isinstance(who, dict):
        who = who.get("email")
    return who if isinstance(who, str) and who else str(who) if _is_id(who) else "label-studio"


def _annotation_events(ann: dict, fps: float, duration: float, labels: set[str], where: str) -> list[dict]:
    """The annotation's timeline regions as events, every field checked (frames inside the scan, labels known)."""
    import math

    last_frame = math.floor(duration * fps + 1e-6) + 1  # the end frame of an event that ends with the scan
    by = _annotator(ann)
    out = []
    for r in ann.get("result") or []:
        if r.get("type") != "timelinelabels":
            continue
        rid = r.get("id")
        name = f"region {rid!r}" if _is_id(rid) else "a region"
        value = r.get("value")
        if not isinstance(value, dict):
            raise InputError(where, f"{name}: value must be a JSON object")
        names = value.get("timelinelabels")
        if not isinstance(names, list) or len(names) != 1 or not isinstance(names[0], str):
            raise InputError(where, f"{name}: one label per region expected, got {str(names)[:80]}")
        negated = names[0].startswith(NEGATED_PREFIX)
        label = names[0][len(NEGATED_PREFIX) :] if negated else names[0]
        if label not in labels:
            raise InputError(where, f"label {label[:80]!r} is not in the lexicon")
        ranges = value.get("ranges")
        if not isinstance(ranges, list) or not ranges:
            raise InputError(where, f"{name}: ranges must be a non-empty list")
        for rng in ranges:
            start, end = (rng.get("start"), rng.get("end")) if isinstance(rng, dict) else (None, None)
            if not (_is_frame(start) and _is_frame(end)):
                raise InputError(where, f"{name}: a range needs integer start and end frames")
            start, end = int(start), int(end)
            if not 1 <= start <= end <= last_frame:
                raise InputError(
                    where,
                    f"{name}: frames {start}..{end} are outside the scan (1 <= start <= end <= {last_frame}, "
                    f"{duration:g} s at {fps:g} fps)",
                )
            s, e = frames_to_seconds(start, end, fps)
            out.append(
                {
                    "id": str(rid) if _is_id(rid) else f"r{len(out)}",
                    "label": label,
                    "start_s": s,
                    "end_s": min(e, duration),
                    "negated": negated,
                    "by": by,
                }
            )
    return out


def _is_frame(x) -> bool:
    if isinstance(x, bool):
        return False
    return isinstance(x, int) or (isinstance(x, float) and x.is_integer())


def _write_reviews(folder: LabelsFolder, planned: dict[str, tuple[int, list[dict]]], mark_reviewed, counts) -> None:
    """Under the scans' review locks: merge each annotation into its review, stage every file, then rename all."""
    import contextlib

    from sonotell.files import atomic_path
    from sonotell.review.store import review_path, scan_lock

    with contextlib.ExitStack() as locks:
        for scan_id in sorted(planned):
            locks.enter_context(scan_lock(folder.path, scan_id))
        reviews = {
            scan_id: _merged_review(folder, scan_id, regions, mark_reviewed, counts)
            for scan_id, (_, regions) in planned.items()
        }
        with contextlib.ExitStack() as staged:  # a failure while writing any file renames none of them
            for scan_id, review in reviews.items():
                tmp = staged.enter_context(atomic_path(review_path(folder.path, scan_id)))
                tmp.write_text(json.dumps(review, indent=2) + "\n")
    counts["scans"] = len(reviews)


def _merged_review(folder: LabelsFolder, scan_id: str, regions: list[dict], mark_reviewed: bool, counts: dict) -> dict:
    """The scan's review with the annotation's decisions: kept events accepted, changed edited, missing rejected."""
    doc = folder.scan_doc(scan_id)
    fps, _ = frame_timing(doc, lambda: folder.frames(scan_id))
    events = doc["events"]
    review = load_review(folder.path, scan_id)
    stamp = now_iso()
    decisions = {}
    by_id: dict[str, dict] = {}
    extra = []
    for r in regions:  # a region's first range answers its event; more ranges are new events
        if r["id"] in by_id:
            extra.append(r)
        else:
            by_id[r["id"]] = r
    for eid, e in zip(event_ids(events), events, strict=True):
        r = by_id.pop(eid, None)
        if r is None:
            decisions[eid] = {
                "status": "rejected",
                **{k: e[k] for k in ("label", "start_s", "end_s")},
                "negated": bool(e.get("negated")),
                "by": "label-studio",
                "base": e,
            }
            continue
        same_frames = seconds_to_frames(e["start_s"], e["end_s"], fps) == seconds_to_frames(
            r["start_s"], r["end_s"], fps
        )
        same = same_frames and r["label"] == e["label"] and r["negated"] == bool(e.get("negated"))
        fields = (
            {k: e[k] for k in ("label", "start_s", "end_s")}
            if same
            else {k: r[k] for k in ("label", "start_s", "end_s")}
        )
        decisions[eid] = {
            "status": "accepted" if same else "edited",
            **fields,
            "negated": r["negated"],
            "by": r["by"],
            "base": e,
        }
    for k, r in enumerate([*by_id.values(), *extra]):
        decisions[f"ls{r['id']}-{k}"[:40]] = {
            "status": "added",
            **{x: r[x] for x in ("label", "start_s", "end_s", "negated")},
            "by": r["by"],
            "base": None,
        }
    for eid, d in decisions.items():
        old = review["decisions"].get(eid)
        d.update(
            at=stamp,
            rev=(old or {}).get("rev", 0) + 1,
            term=(d.get("base") or {}).get("term") or d["label"],
            speaker=(d.get("base") or {}).get("speaker"),
        )
        counts[d["status"]] += 1
        review["history"].append(
            {
                "at": stamp,
                "by": d["by"],
                "event_id": eid,
                "before": old,
                "after": {k: v for k, v in d.items() if k != "base"},
                "via": "label-studio",
            }
        )
    review["decisions"] = decisions
    if mark_reviewed:
        review.update(reviewed=True, reviewed_by="label-studio", reviewed_at=stamp)
    return review

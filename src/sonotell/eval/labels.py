"""How good are labels made from speech? Event P/R/F1, timestamp error, frame accuracy, diarization, negation, term WER.

Predicted and true events are dicts (or ``TermEvent``) with ``label``, ``start_s``, ``end_s``,
``negated`` and ``speaker``. A predicted positive event matches a true positive event of
the same label whose start is within ``tolerance_s`` (one-to-one, closest first). Only the
clinician's mentions are targets; negated mentions are scored separately as negation errors.

Example:
    >>> truth = [{"label": "liver", "start_s": 1.0, "end_s": 1.4}]
    >>> pred = [{"label": "liver", "start_s": 1.1, "end_s": 1.5}, {"label": "spleen", "start_s": 3.0, "end_s": 3.2}]
    >>> s = event_scores(pred, truth, tolerance_s=0.5)
    >>> s["tp"], s["fp"], s["fn"], round(s["f1"], 3)
    (1, 1, 0, 0.667)
"""

from __future__ import annotations

from dataclasses import asdict, is_dataclass
from typing import Callable, Iterable

import numpy as np

from sonotell.speech.align import AlignConfig, align_states
from sonotell.speech.lexicon import normalise
from sonotell.types import UNLABELLED, TermEvent

CLINICIAN = "clinician"


def _as_dict(e) -> dict:
    return asdict(e) if is_dataclass(e) else dict(e)


def _positive(events: Iterable, speaker: str | None = CLINICIAN) -> list[dict]:
    out = []
    for e in map(_as_dict, events):
        if e.get("negated"):
            continue
        if speaker is not None and e.get("speaker") not in (None, speaker):
            continue
        out.append(e)
    return out


def match_events(pred: list[dict], truth: list[dict], tolerance_s: float) -> list[tuple[int, int, float]]:
    """One-to-one matches (pred index, truth index, start error in s), closest pairs first."""
    pairs = sorted(
        (abs(p["start_s"] - t["start_s"]), i, j)
        for i, p in enumerate(pred)
        for j, t in enumerate(truth)
        if p["label"] == t["label"] and abs(p["start_s"] - t["start_s"]) <= tolerance_s
    )
    used_p, used_t, out = set(), set(), []
    for err, i, j in pairs:
        if i in used_p or j in used_t:
            continue
        used_p.add(i)
        used_t.add(j)
        out.append((i, j, err))
    return out


def event_scores(pred: Iterable, truth: Iterable, tolerance_s: float = 0.5) -> dict:
    """tp/fp/fn, precision/recall/F1 and the start errors of matched events (positive mentions only)."""
    p, t = _positive(pred, speaker=None), _positive(truth)
    matches = match_events(p, t, tolerance_s)
    tp = len(matches)
    return {
        "tp": tp,
        "fp": len(p) - tp,
        "fn": len(t) - tp,
        **prf(tp, len(p) - tp, len(t) - tp),
        "start_errors_s": [m[2] for m in matches],
    }


def prf(tp: int, fp: int, fn: int) -> dict:
    precision = tp / (tp + fp) if tp + fp else (1.0 if fn == 0 else 0.0)
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def negation_errors(pred: Iterable, truth: Iterable, tolerance_s: float = 0.5) -> dict:
    """Negated truths labelled positive (missed negations) and positive truths predicted negated (false negations)."""
    p = [_as_dict(e) for e in pred]
    t = [_as_dict(e) for e in truth if _as_dict(e).get("speaker") in (None, CLINICIAN)]

    def near(a, b):
        return a["label"] == b["label"] and abs(a["start_s"] - b["start_s"]) <= tolerance_s

    negated_truth = [e for e in t if e.get("negated")]
    missed = sum(any(near(q, e) and not q.get("negated") for q in p) for e in negated_truth)
    false_neg = sum(any(near(q, e) and q.get("negated") for q in p) for e in t if not e.get("negated"))
    return {"negated_truths": len(negated_truth), "missed_negations": missed, "false_negations": false_neg}


TOLERANCES_S = (0.5, 1.0)
POLARITIES = ("positive", "negated", "all")


def polarity_counts(pred: Iterable, truth: Iterable, tolerances_s: Iterable[float] = TOLERANCES_S) -> dict:
    """tp/fp/fn of positive mentions, of negated mentions and of both, per start tolerance.

    A hit needs the same label, the same negation and a start within the tolerance (one-to-one,
    closest first). Targets are the clinician's mentions; every predicted event counts.

    Example:
        >>> t = [{"label": "a", "start_s": 1.0, "negated": True}, {"label": "b", "start_s": 3.0}]
        >>> p = [{"label": "a", "start_s": 1.7, "negated": True}, {"label": "b", "start_s": 3.2, "negated": True}]
        >>> c = polarity_counts(p, t)
        >>> c["0.5"]["negated"], c["1"]["negated"], c["1"]["all"]
        ({'tp': 0, 'fp': 2, 'fn': 1}, {'tp': 1, 'fp': 1, 'fn': 0}, {'tp': 1, 'fp': 1, 'fn': 1})
    """
    p = [_as_dict(e) for e in pred]
    t = [e for e in map(_as_dict, truth) if e.get("speaker") in (None, CLINICIAN)]
    out = {}
    for tol in tolerances_s:
        row = {}
        for neg in (False, True):
            pp = [e for e in p if bool(e.get("negated")) == neg]
            tt = [e for e in t if bool(e.get("negated")) == neg]
            tp = len(match_events(pp, tt, tol))
            row["negated" if neg else "positive"] = {"tp": tp, "fp": len(pp) - tp, "fn": len(tt) - tp}
        row["all"] = {k: row["positive"][k] + row["negated"][k] for k in ("tp", "fp", "fn")}
        out[f"{tol:g}"] = row
    return out


def negation_flag_counts(pred: Iterable, truth: Iterable, tolerance_s: float = 0.5) -> dict:
    """Of the mentions found (a predicted event of the true mention's label within the tolerance,
    whatever its negation), how many carry the right negation flag."""
    p = [_as_dict(e) for e in pred]
    t = [e for e in map(_as_dict, truth) if e.get("speaker") in (None, CLINICIAN)]
    found = match_events(p, t, tolerance_s)
    right = sum(bool(p[i].get("negated")) == bool(t[j].get("negated")) for i, j, _ in found)
    return {"found": len(found), "flag_right": right}


def speaker_counts(pred: Iterable, truth: Iterable, tolerances_s: Iterable[float] = TOLERANCES_S) -> dict:
    """Per true speaker: mentions said and mentions found (same label and negation, within each tolerance).
    For the clinician that is recall; for anyone else a found mention is a term that was not rejected."""
    p = [_as_dict(e) for e in pred]
    out: dict[str, dict] = {}
    truth = [_as_dict(e) for e in truth]
    for who in sorted({str(e.get("speaker") or CLINICIAN) for e in truth}):
        mine = [e for e in truth if str(e.get("speaker") or CLINICIAN) == who]
        row = {"said": len(mine)}
        for tol in tolerances_s:
            row[f"found@{tol:g}"] = sum(
                len(
                    match_events(
                        [q for q in p if bool(q.get("negated")) == neg],
                        [e for e in mine if bool(e.get("negated")) == neg],
                        tol,
                    )
                )
                for neg in (False, True)
            )
        out[who] = row
    return out


def pool_polarity(per_scan: list[dict]) -> dict:
    """Summed ``polarity_counts`` of several scans, with precision / recall / F1."""
    out: dict[str, dict] = {}
    for s in per_scan:
        for tol, row in s.get("by_polarity", {}).items():
            for kind, c in row.items():
                acc = out.setdefault(tol, {}).setdefault(kind, {"tp": 0, "fp": 0, "fn": 0})
                for k in ("tp", "fp", "fn"):
                    acc[k] += c[k]
    for row in out.values():
        for c in row.values():
            c.update({k: round(v, 4) for k, v in prf(c["tp"], c["fp"], c["fn"]).items()})
    return out


def frame_accuracy(pred_labels: list[str], true_labels: list[str]) -> dict:
    """Accuracy over all frames, and over frames the truth labels (where the words point somewhere)."""
    if len(pred_labels) != len(true_labels):
        raise ValueError(f"{len(pred_labels)} predicted vs {len(true_labels)} true frame labels")
    a, b = np.asarray(pred_labels, object), np.asarray(true_labels, object)
    labelled = b != UNLABELLED
    return {
        "n_frames": len(a),
        "correct": int((a == b).sum()),
        "n_labelled": int(labelled.sum()),
        "correct_labelled": int((a == b)[labelled].sum()),
    }


def truth_frame_labels(
    truth_events: Iterable,
    scan_id: str,
    fps: float,
    n_frames: int,
    config: AlignConfig | dict | None = None,
    *,
    scopes: dict[str, str] | None = None,
    view_starts: list[int] | None = None,
) -> list[str]:
    """The frame labels the true events give under the same alignment (window, scopes, views): per frame the one
    label present, or ``unlabelled`` (none, or several: frame accuracy scores one label per frame)."""
    evs = [
        TermEvent(
            e["label"],
            e.get("term", e["label"]),
            e["start_s"],
            e["end_s"],
            1.0,
            bool(e.get("negated")),
            e.get("speaker"),
        )
        for e in _positive(truth_events)
    ]
    names = list(dict.fromkeys(e.label for e in evs))
    states = align_states(evs, names, fps=fps, n_frames=n_frames, config=config, scopes=scopes, view_starts=view_starts)
    return states.single_labels()


def speaker_coverage(pred_segments: Iterable[dict], truth_segments: Iterable[dict], target: str = CLINICIAN) -> dict:
    """Seconds of true clinician speech covered by predicted clinician speech, and of others' speech not covered."""
    kept = [(s["start_s"], s["end_s"]) for s in pred_segments if s.get("speaker") == target]

    def covered(a, b):
        return sum(max(0.0, min(b, e) - max(a, s)) for s, e in kept)

    clin = [(s["start_s"], s["end_s"]) for s in truth_segments if s.get("speaker") == target]
    other = [(s["start_s"], s["end_s"]) for s in truth_segments if s.get("speaker") != target]
    return {
        "clinician_s": sum(e - s for s, e in clin),
        "clinician_kept_s": sum(min(e - s, covered(s, e)) for s, e in clin),
        "other_s": sum(e - s for s, e in other),
        "other_rejected_s": sum(e - s - min(e - s, covered(s, e)) for s, e in other),
    }


def term_word_pairs(words: Iterable, truth_events: Iterable, margin_s: float = 0.05) -> list[tuple[str, str]]:
    """(said term, recognised words over its span) for every clinician term: the input of the term WER."""
    ws = [_as_dict(w) for w in words]
    out = []
    for e in (_as_dict(e) for e in truth_events):
        if e.get("speaker") not in (None, CLINICIAN):
            continue
        hyp = [
            normalise(w["text"])
            for w in ws
            if e["start_s"] - margin_s <= (w["start_s"] + w["end_s"]) / 2 <= e["end_s"] + margin_s
        ]
        out.append((normalise(e.get("term", e["label"])), " ".join(h for h in hyp if h)))
    return out


def term_wer(pairs: list[tuple[str, str]]) -> float | None:
    """Word error rate (jiwer) of the recognised words on the lexicon terms."""
    import jiwer

    pairs = [(r, h) for r, h in pairs if r]
    if not pairs:
        return None
    out = jiwer.process_words([r for r, _ in pairs], [h for _, h in pairs])
    return float(out.wer)


def evaluate_scan(
    pred: dict,
    truth: dict,
    *,
    resolve: Callable[[str], str | None] | None = None,
    fps: float | None = None,
    n_frames: int | None = None,
    align_config: AlignConfig | dict | None = None,
    tolerance_s: float = 0.5,
) -> dict:
    """All label metrics of one scan: ``pred`` as written by ``sonotell label`` (events, words, segments, frame
    labels)."""
    truth_events = [dict(e) for e in truth.get("events", [])]
    outside = 0
    if resolve is not None:  # score the lexicon's labels only (a benchmark may also name diagnoses)
        kept = []
        for e in truth_events:
            label = resolve(e["label"])
            if label is None:
                outside += 1
                continue
            kept.append({**e, "label": label})
        truth_events = kept
    out = {"scan_id": truth.get("scan_id"), "truth_events_outside_lexicon": outside}
    ev = event_scores(pred.get("events", []), truth_events, tolerance_s)
    out.update({k: ev[k] for k in ("tp", "fp", "fn")}, start_errors_s=ev["start_errors_s"])
    out.update(negation_errors(pred.get("events", []), truth_events, tolerance_s))
    out["by_polarity"] = polarity_counts(pred.get("events", []), truth_events, sorted({*TOLERANCES_S, tolerance_s}))
    flags = negation_flag_counts(pred.get("events", []), truth_events, tolerance_s)
    out["mentions_found"], out["negation_flag_right"] = flags["found"], flags["flag_right"]
    out["by_speaker"] = speaker_counts(pred.get("events", []), truth_events)
    if truth.get("voice") is not None:
        out["voice"] = truth["voice"]
    out.update(speaker_coverage(pred.get("segments", []), truth.get("segments", [])))
    out["term_pairs"] = term_word_pairs(pred.get("words", []), truth_events)
    if fps and n_frames and pred.get("frame_labels") is not None:
        true_frames = truth_frame_labels(
            truth_events,
            out["scan_id"] or "",
            fps,
            n_frames,
            align_config,
            scopes=pred.get("label_scopes"),
            view_starts=pred.get("view_starts"),
        )
        out.update(frame_accuracy(list(pred["frame_labels"]), true_frames))
    info = pred.get("info", {})
    out["duration_s"], out["elapsed_s"], out["cpu_s"] = (
        info.get("duration_s", 0.0),
        info.get("elapsed_s", 0.0),
        info.get("cpu_s", 0.0),
    )
    return out


def summarise(per_scan: list[dict]) -> dict:
    """Pool per-scan results: counts summed, errors concatenated, then the rates."""
    tp, fp, fn = (sum(s.get(k, 0) for s in per_scan) for k in ("tp", "fp", "fn"))
    errors = [e for s in per_scan for e in s.get("start_errors_s", [])]
    total = lambda k: sum(s.get(k, 0) for s in per_scan)  # noqa: E731
    out = {"n_scans": len(per_scan), "tp": tp, "fp": fp, "fn": fn, **prf(tp, fp, fn)}
    out["median_start_error_s"] = float(np.median(errors)) if errors else None
    out["p90_start_error_s"] = float(np.percentile(errors, 90)) if errors else None
    out["frame_accuracy"] = total("correct") / total("n_frames") if total("n_frames") else None
    out["labelled_frame_accuracy"] = total("correct_labelled") / total("n_labelled") if total("n_labelled") else None
    out["clinician_recall"] = total("clinician_kept_s") / total("clinician_s") if total("clinician_s") else None
    out["other_rejection"] = total("other_rejected_s") / total("other_s") if total("other_s") else None
    out["truth_events_outside_lexicon"] = total("truth_events_outside_lexicon")
    out["negated_truths"] = total("negated_truths")
    out["negation_errors"] = total("missed_negations") + total("false_negations")
    out["negation_flag_accuracy"] = (
        total("negation_flag_right") / total("mentions_found") if total("mentions_found") else None
    )
    out["by_polarity"] = pool_polarity(per_scan)
    by_speaker: dict[str, dict] = {}
    for s in per_scan:
        for who, row in s.get("by_speaker", {}).items():
            acc = by_speaker.setdefault(who, {})
            for k, v in row.items():
                acc[k] = acc.get(k, 0) + v
    out["by_speaker"] = by_speaker
    voices = sorted({s["voice"] for s in per_scan if s.get("voice") is not None})
    if voices:
        out["by_voice"] = {v: pool_polarity([s for s in per_scan if s.get("voice") == v]) for v in voices}
    out["term_wer"] = term_wer([p for s in per_scan for p in s.get("term_pairs", [])])
    out["real_time_factor"] = total("elapsed_s") / total("duration_s") if total("duration_s") else None
    out["cpu_real_time_factor"] = total("cpu_s") / total("duration_s") if total("duration_s") else None
    return out


def read_scan_labels(labels_dir, scan_id: str) -> tuple[dict, object] | None:
    """A scan's ``<scan_id>.json`` with ``frame_labels`` (one label per frame, ``unlabelled`` for none or several)
    and ``label_scopes`` from its lexicon, and its ``FrameStates`` (None if absent).

    None when the scan has no label file: the scorers skip (or list) such scans.
    """
    from sonotell import labels as labels_io

    if not labels_io.doc_path(labels_dir, scan_id).exists():
        return None
    pred = labels_io.read_scan_doc(labels_dir, scan_id)
    frames = None
    if labels_io.frames_path(labels_dir, scan_id).exists():
        frames = labels_io.read_frames(labels_dir, scan_id, pred.get("label_names"))
        pred["frame_labels"] = frames.single_labels()
    if pred.get("lexicon"):
        from sonotell.errors import InputError
        from sonotell.speech.lexicon import load_lexicon

        try:
            pred["label_scopes"] = load_lexicon(pred["lexicon"]).scopes
        except InputError:  # the lexicon file moved: the truth is aligned with moment scope
            pred["label_scopes"] = None
    return pred, frames


def evaluate_labels_dir(
    labels_dir,
    benchmark,
    *,
    lexicon=None,
    scan_ids: list[str] | None = None,
    tolerance_s: float = 0.5,
    align_config: AlignConfig | dict | None = None,
) -> tuple[dict, list[dict]]:
    """Score the label files of ``sonotell label`` (in ``labels_dir``) against a benchmark's truth.

    Returns (pooled summary, per-scan rows). Scans without a label file are skipped.
    """
    resolve = lexicon.resolve_label if lexicon is not None else None
    table = getattr(benchmark, "table", None)
    voices = dict(zip(table["scan_id"], table["voice"])) if table is not None and "voice" in table else {}
    per_scan = []
    for scan in benchmark.scans:
        if scan_ids is not None and scan.scan_id not in scan_ids:
            continue
        read = read_scan_labels(labels_dir, scan.scan_id)
        if read is None:
            continue
        pred = read[0]
        truth = benchmark.truth(scan.scan_id)
        if voices.get(scan.scan_id):
            truth = {**truth, "voice": voices[scan.scan_id]}
        per_scan.append(
            evaluate_scan(
                pred,
                truth,
                resolve=resolve,
                fps=scan.fps,
                n_frames=scan.n_frames,
                align_config=align_config,
                tolerance_s=tolerance_s,
            )
        )
    return summarise(per_scan), per_scan


def evaluate_labels_against(
    labels_dir, truths: dict[str, dict], *, tolerance_s: float = 0.5, align_config: AlignConfig | dict | None = None
) -> tuple[dict, list[dict]]:
    """Score the label files in ``labels_dir`` against given truths (e.g. a person's reviewed events).

    ``truths`` maps scan id -> ``{"events": [...], "fps": ..., "n_frames": ...}``; scans without a label file are
    skipped.
    """
    per_scan = []
    for scan_id, truth in truths.items():
        read = read_scan_labels(labels_dir, scan_id)
        if read is None:
            continue
        pred = read[0]
        per_scan.append(
            evaluate_scan(
                pred,
                {"scan_id": scan_id, **truth},
                fps=truth.get("fps"),
                n_frames=truth.get("n_frames"),
                align_config=align_config,
                tolerance_s=tolerance_s,
            )
        )
    return summarise(per_scan), per_scan


TRUTH_COLUMNS = ("scan_id", "label", "start_s", "end_s", "negated", "speaker")
_TRUE, _FALSE = {"true", "1", "yes", "y"}, {"false", "0", "no", "n", ""}


def read_truth_events(path) -> dict[str, list[dict]]:
    """A hand-written truth file: a CSV of events, one row per mention, by scan.

    Columns ``scan_id, label, start_s, end_s`` (seconds on the video clock) are required;
    ``negated`` (true/false, default false), ``speaker`` (default ``clinician``: only the
    clinician's mentions are targets), ``term`` and ``voice`` (who narrated, for per-voice
    scores) are optional. A bad row is an ``InputError`` naming the file and the line.
    """
    import csv
    from pathlib import Path

    from sonotell.errors import InputError

    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
            header = rows[0].keys() if rows else []
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(path, f"cannot read the truth file ({e.__class__.__name__})") from None
    missing = [c for c in ("scan_id", "label", "start_s", "end_s") if c not in header]
    if not rows or missing:
        raise InputError(
            path,
            f"a truth events CSV needs the columns {', '.join(TRUTH_COLUMNS)} "
            f"(missing: {', '.join(missing) or 'every row'})",
        )
    out: dict[str, list[dict]] = {}
    for n, r in enumerate(rows, start=2):
        try:
            start, end = float(r["start_s"]), float(r["end_s"])
        except (TypeError, ValueError):
            raise InputError(
                path, f"line {n}: start_s and end_s must be numbers (got {r['start_s']!r}, {r['end_s']!r})"
            ) from None
        neg = str(r.get("negated") or "").strip().lower()
        if neg not in _TRUE | _FALSE:
            raise InputError(path, f"line {n}: negated must be true or false, not {r.get('negated')!r}")
        if not r["scan_id"] or not r["label"] or end < start:
            raise InputError(path, f"line {n}: needs a scan_id, a label and end_s >= start_s")
        event = {
            "label": r["label"],
            "term": r.get("term") or r["label"],
            "start_s": start,
            "end_s": end,
            "negated": neg in _TRUE,
            "speaker": r.get("speaker") or CLINICIAN,
        }
        if r.get("voice"):
            event["voice"] = r["voice"]
        out.setdefault(r["scan_id"], []).append(event)
    return out


def evaluate_labels_events(
    labels_dir, truth_path, *, lexicon=None, tolerance_s: float = 0.5, align_config: AlignConfig | dict | None = None
) -> tuple[dict, list[dict]]:
    """Score a labels folder against a hand-written truth events CSV (``read_truth_events``).

    Frame accuracy uses each label CSV's own frame times. Scans of the truth file without a label
    file are listed in ``summary["scans_without_labels"]`` and not scored.
    """
    resolve = lexicon.resolve_label if lexicon is not None else None
    per_scan, missing = [], []
    for scan_id, events in read_truth_events(truth_path).items():
        read = read_scan_labels(labels_dir, scan_id)
        if read is None:
            missing.append(scan_id)
            continue
        pred, frames = read
        fps = n_frames = None
        if frames is not None:
            n_frames = len(frames)
            if n_frames > 1:
                fps = 1.0 / float(frames.time_s[1] - frames.time_s[0])
        voices = {e["voice"] for e in events if "voice" in e}
        truth = {"scan_id": scan_id, "events": events, **({"voice": voices.pop()} if len(voices) == 1 else {})}
        per_scan.append(
            evaluate_scan(
                pred,
                truth,
                resolve=resolve,
                fps=fps,
                n_frames=n_frames,
                align_config=align_config,
                tolerance_s=tolerance_s,
            )
        )
    summary = summarise(per_scan)
    summary["scans_without_labels"] = missing
    return summary, per_scan

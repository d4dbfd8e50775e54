"""Align spoken-term events to video frames: a window around each event, a confidence, conflicts, "unlabelled".

A frame at time t takes the label of an event whose window ``[start_s - before_s, end_s + after_s]``
contains t. Inside the spoken span the weight is the event's confidence; it decays linearly
to ``edge_weight`` x confidence at the window's edges. When two labels compete for a frame
the higher weight wins, unless they are within ``conflict_margin`` of each other: then the
frame is left unlabelled (``conflict: drop``) or goes to the nearer event (``conflict: nearest``).
Negated events ("no effusion") never label a frame: they make their label *absent* over the same
window (``FrameLabel.absent``). Where one label is both said and negated near a frame, the stronger
weight wins; within ``conflict_margin`` the label is neither present nor absent there (unknown).

Example:
    >>> from sonotell.types import TermEvent
    >>> labels = align_events([TermEvent("liver", "liver", 1.0, 1.4)], "s1", fps=10, n_frames=30)
    >>> [l.label for l in labels[6:19:6]]
    ['unlabelled', 'liver', 'unlabelled']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sonotell.config import Section, setting
from sonotell.types import UNLABELLED, FrameLabel, TermEvent


@dataclass(frozen=True)
class AlignConfig(Section):
    """Window and conflict rules (the papers: ±0.3 s around a term, or a 1 s / 25-frame clip).

    Defaults from ``configs/pipelines/speech.yaml`` (section ``align``).
    """

    SECTION = "align"
    before_s: float = setting("pipelines", "speech", "align", "before_s", ge=0.0)
    after_s: float = setting("pipelines", "speech", "align", "after_s", ge=0.0)
    edge_weight: float = setting("pipelines", "speech", "align", "edge_weight", ge=0.0, le=1.0)
    min_confidence: float = setting("pipelines", "speech", "align", "min_confidence", ge=0.0, le=1.0)
    conflict: str = setting("pipelines", "speech", "align", "conflict", choices=("drop", "nearest", "confidence"))
    conflict_margin: float = setting("pipelines", "speech", "align", "conflict_margin", ge=0.0)


def event_weight(event: TermEvent, t: float, cfg: AlignConfig) -> float:
    """The event's support for a frame at time ``t`` (0 outside its window)."""
    if event.start_s <= t <= event.end_s:
        return event.confidence
    if t < event.start_s:
        gap, reach = event.start_s - t, cfg.before_s
    else:
        gap, reach = t - event.end_s, cfg.after_s
    if reach <= 0 or gap > reach:
        return 0.0
    return event.confidence * (1.0 - (1.0 - cfg.edge_weight) * gap / reach)


def align_events(
    events: list[TermEvent],
    scan_id: str,
    *,
    fps: float,
    n_frames: int,
    config: AlignConfig | dict | None = None,
    times: Sequence[float] | None = None,
) -> list[FrameLabel]:
    """One ``FrameLabel`` per frame (time = index / fps on the video clock, or ``times[index]``).

    ``times``: each frame's presentation time, for a variable-frame-rate video
    (``sonotell.io.video.variable_frame_times``); it then sets the number of frames too.
    """
    if times is not None:
        n_frames = len(times)
    cfg = config if isinstance(config, AlignConfig) else AlignConfig.from_dict(config)
    usable = sorted((e for e in events if e.confidence >= cfg.min_confidence), key=lambda e: e.start_s)
    out = []
    lo = 0
    for i in range(n_frames):
        t = float(times[i]) if times is not None else i / fps
        while lo < len(usable) and usable[lo].end_s + cfg.after_s < t:
            lo += 1
        best: dict[str, tuple[float, float]] = {}  # label -> (weight, distance) of its positive mentions
        negative: dict[str, float] = {}  # label -> weight of its negated mentions
        for e in usable[lo:]:
            if e.start_s - cfg.before_s > t:
                break
            w = event_weight(e, t, cfg)
            if w <= 0:
                continue
            if e.negated:
                negative[e.label] = max(w, negative.get(e.label, 0.0))
                continue
            dist = 0.0 if e.start_s <= t <= e.end_s else min(abs(t - e.start_s), abs(t - e.end_s))
            if e.label not in best or w > best[e.label][0]:
                best[e.label] = (w, dist)
        absent = []
        for label, w_neg in sorted(negative.items()):
            w_pos = best[label][0] if label in best else 0.0
            if w_neg - w_pos > cfg.conflict_margin or label not in best:
                best.pop(label, None)
                absent.append(label)
            elif abs(w_neg - w_pos) <= cfg.conflict_margin:  # said and negated alike: unknown
                best.pop(label)
        out.append(FrameLabel(scan_id, i, round(t, 6), *_decide(best, cfg), ";".join(absent)))
    return out


def _decide(best: dict[str, tuple[float, float]], cfg: AlignConfig) -> tuple[str, float]:
    if not best:
        return UNLABELLED, 0.0
    ranked = sorted(best.items(), key=lambda kv: kv[1][0], reverse=True)
    label, (weight, dist) = ranked[0]
    if len(ranked) == 1 or cfg.conflict == "confidence":
        return label, round(weight, 4)
    runner, (w2, d2) = ranked[1]
    if weight - w2 > cfg.conflict_margin:
        return label, round(weight, 4)
    if cfg.conflict == "nearest" and dist != d2:
        return (label, round(weight, 4)) if dist < d2 else (runner, round(w2, 4))
    return UNLABELLED, 0.0

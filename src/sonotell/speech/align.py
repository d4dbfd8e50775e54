"""Align spoken-term events to video frames: per label and frame present, absent or unknown, for the label's scope.

Every label has its own state per frame, so several findings can be present at once ("B-lines and an
effusion"). A mention holds for the label's *scope* (``Lexicon.scopes``):

* ``moment``: a window ``[start_s - before_s, end_s + after_s]``. Inside the spoken span the weight is
  the event's confidence; it decays linearly to ``edge_weight`` x confidence at the window's edges.
* ``view``: the whole view the mention falls in (views change at a cut or a large frame difference,
  ``sonotell.io.views``), at most ``max_view_s`` before its start and after its end; over the view the
  weight is ``edge_weight`` x confidence, and the moment window's weight where that is higher. Without
  view information the view is taken as the ``max_view_s`` bound.

A negated mention ("no effusion") makes its label *absent* over the same scope. The only conflict is a
label's own positive and negated mentions on one frame: the stronger weight wins, and within
``conflict_margin`` of each other the label is unknown there. Mentions of other labels never interfere.

Example:
    >>> from sonotell.types import TermEvent
    >>> ev = [TermEvent("liver", "liver", 1.0, 1.4), TermEvent("kidney", "kidney", 1.2, 1.5)]
    >>> fs = align_states(ev, ["liver", "kidney"], fps=10, n_frames=30)
    >>> fs.present_labels(6), fs.present_labels(13), fs.present_labels(18)
    ([], ['liver', 'kidney'], [])
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from sonotell.config import Section, setting
from sonotell.labels import ABSENT, PRESENT, UNKNOWN, FrameStates
from sonotell.types import TermEvent

log = logging.getLogger(__name__)
SCOPES = ("moment", "view")
RETIRED_KEYS = ("conflict",)  # format 1 chose one label per frame; kept in old folders' summaries


@dataclass(frozen=True)
class AlignConfig(Section):
    """Window, scope and conflict rules (the papers: ±0.3 s around a term, or a 1 s / 25-frame clip).

    Defaults from ``configs/pipelines/speech.yaml`` (section ``align``).
    """

    SECTION = "align"
    before_s: float = setting("pipelines", "speech", "align", "before_s", ge=0.0)
    after_s: float = setting("pipelines", "speech", "align", "after_s", ge=0.0)
    edge_weight: float = setting("pipelines", "speech", "align", "edge_weight", ge=0.0, le=1.0)
    min_confidence: float = setting("pipelines", "speech", "align", "min_confidence", ge=0.0, le=1.0)
    conflict_margin: float = setting("pipelines", "speech", "align", "conflict_margin", ge=0.0)
    max_view_s: float = setting("pipelines", "speech", "align", "max_view_s", gt=0.0)
    view_change: float = setting("pipelines", "speech", "align", "view_change", gt=0.0, le=1.0)
    view_change_ratio: float = setting("pipelines", "speech", "align", "view_change_ratio", ge=1.0)
    view_size: int = setting("pipelines", "speech", "align", "view_size", ge=4)
    view_persist: int = setting("pipelines", "speech", "align", "view_persist", ge=1)

    @classmethod
    def from_dict(cls, cfg: dict | None = None, **extra):
        """As ``Section.from_dict``; keys of format 1 (``conflict``) are dropped with a note."""
        cfg = {**(cfg or {}), **extra}
        retired = [k for k in RETIRED_KEYS if k in cfg]
        if retired:
            log.info("align.%s is retired (every label has its own state per frame); ignored", retired[0])
        return super().from_dict({k: v for k, v in cfg.items() if k not in RETIRED_KEYS})


def event_weight(event: TermEvent, t: float, cfg: AlignConfig) -> float:
    """The event's support for a frame at time ``t`` in its moment window (0 outside it)."""
    return float(_moment_weights(event, np.array([t], float), cfg)[0])


def _moment_weights(event: TermEvent, t: np.ndarray, cfg: AlignConfig) -> np.ndarray:
    w = np.zeros(len(t))
    inside = (t >= event.start_s) & (t <= event.end_s)
    w[inside] = event.confidence
    for side, gap, reach in (
        (t < event.start_s, event.start_s - t, cfg.before_s),
        (t > event.end_s, t - event.end_s, cfg.after_s),
    ):
        if reach <= 0:
            continue
        near = side & (gap <= reach + 1e-9)  # a frame on the window's edge is in it despite rounding
        w[near] = event.confidence * (1.0 - (1.0 - cfg.edge_weight) * np.minimum(gap[near], reach) / reach)
    return w


def view_ids(n_frames: int, view_starts: Sequence[int] | None) -> np.ndarray | None:
    """Per frame the index of its view, from the first frames of the views (None: unknown)."""
    if view_starts is None:
        return None
    ids = np.zeros(n_frames, int)
    for s in sorted(int(v) for v in view_starts):
        if 0 < s < n_frames:
            ids[s:] += 1
    return ids


def align_states(
    events: Sequence[TermEvent],
    label_names: Sequence[str],
    *,
    fps: float,
    n_frames: int,
    config: AlignConfig | dict | None = None,
    times: Sequence[float] | None = None,
    scopes: Mapping[str, str] | None = None,
    view_starts: Sequence[int] | None = None,
    source: str = "speech",
) -> FrameStates:
    """Per-frame states of ``label_names`` (time = index / fps on the video clock, or ``times[index]``).

    ``times``: each frame's presentation time, for a variable-frame-rate video
    (``sonotell.io.video.variable_frame_times``); it then sets the number of frames too.
    ``scopes``: label -> ``moment`` | ``view`` (default moment). ``view_starts``: the first frame of
    each view (``sonotell.io.views``), or None when unknown. An event of a label outside
    ``label_names`` is a ``ValueError``.
    """
    cfg = config if isinstance(config, AlignConfig) else AlignConfig.from_dict(config)
    if times is not None:
        t = np.asarray(times, float)
    else:
        t = np.arange(n_frames) / float(fps)
    n, names = len(t), list(label_names)
    views = view_ids(n, view_starts)
    scopes = dict(scopes or {})
    bad_scope = sorted({s for s in scopes.values() if s not in SCOPES})
    if bad_scope:
        raise ValueError(f"scope {bad_scope[0]!r} is not one of {', '.join(SCOPES)}")
    pos = np.zeros((n, len(names)))
    neg = np.zeros((n, len(names)))
    for e in events:
        if e.confidence < cfg.min_confidence:
            continue
        if e.label not in names:
            raise ValueError(f"event label {e.label!r} is not one of {', '.join(names)}")
        k = names.index(e.label)
        w = _moment_weights(e, t, cfg)
        if scopes.get(e.label, "moment") == "view":
            span = (t >= e.start_s - cfg.max_view_s) & (t <= e.end_s + cfg.max_view_s)
            if views is not None and n:
                mid = 0.5 * (e.start_s + e.end_s)
                at = int(np.clip(np.searchsorted(t, mid, side="right") - 1, 0, n - 1))
                span &= views == views[at]
            w = np.maximum(w, np.where(span, e.confidence * cfg.edge_weight, 0.0))
        target = neg if e.negated else pos
        target[:, k] = np.maximum(target[:, k], w)
    present = (pos > 0) & ((neg == 0) | (pos - neg > cfg.conflict_margin))
    absent = (neg > 0) & ((pos == 0) | (neg - pos > cfg.conflict_margin))
    state = np.full((n, len(names)), UNKNOWN, np.int8)
    state[present], state[absent] = PRESENT, ABSENT
    confidence = np.where(present, pos, np.where(absent, neg, 0.0)).round(4)
    return FrameStates(np.arange(n), t.round(6), state, np.full(n, source), confidence, names)

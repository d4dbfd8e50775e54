"""Audio-guided localisation: where in each frame is what is being said?

Given a video and its speech, each frame's *response map* is the spatial-aware fusion of
Show from Tell (Fig. 2d): the audio embedding of the speech window around the frame,
multiplied element-wise with every position of the frame's visual feature map, read out per
position. The model provides it as ``localisation_map(frames, audio) -> (B, h, w)``; this
module windows the inputs, batches the calls, and renders an overlay video.

Example:
    >>> model, _ = load_localiser("runs/pretrain/show_from_tell/encoder.pt")  # doctest: +SKIP
    >>> result = localise_video("scan.mp4", "scan.wav", model)  # doctest: +SKIP
    >>> render_overlay(result, "overlay.mp4")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sonotell.data.sampler import words_in_window
from sonotell.errors import ConfigError
from sonotell.progress import Progress, silent

log = logging.getLogger(__name__)


@dataclass
class LocalisationResult:
    """Per-frame response maps of one video, with the frames they belong to."""

    frames: np.ndarray  # (N, H, W) uint8 at the working size
    maps: np.ndarray  # (N, h, w) float32
    fps: float
    seconds: float = 0.0  # wall time of the model calls
    frame_indices: list[int] = field(default_factory=list)

    @property
    def frames_per_s(self) -> float:
        return len(self.maps) / self.seconds if self.seconds > 0 else float("nan")


def load_localiser(checkpoint: str | Path) -> tuple[nn.Module, str]:
    """A model with ``localisation_map`` from a checkpoint (any local path); clear error otherwise."""
    from sonotell.methods.downstream import load_encoder

    model, recipe = load_encoder(checkpoint)
    if not hasattr(model, "localisation_map"):
        raise ConfigError(
            f"{checkpoint}: a {recipe!r} checkpoint has no localisation map; "
            "use a show_from_tell checkpoint (spatial-aware audio-visual fusion)"
        )
    return model.eval(), recipe


def audio_window(wav: np.ndarray, sample_rate_hz: int, centre_s: float, before_s: float, after_s: float) -> np.ndarray:
    """Samples of ``[centre - before, centre + after]`` (audio clock), zero-padded at the edges.

    Example:
        >>> audio_window(np.arange(10, dtype=np.float32), 10, 0.1, 0.2, 0.2).tolist()
        [0.0, 0.0, 1.0, 2.0]
    """
    n = int(round((before_s + after_s) * sample_rate_hz))
    start = int(round((centre_s - before_s) * sample_rate_hz))
    out = np.zeros(n, np.float32)
    lo, hi = max(start, 0), min(start + n, len(wav))
    if hi > lo:
        out[lo - start : hi - start] = wav[lo:hi]
    return out


def uses_keywords(model: nn.Module) -> bool:
    """Whether a localiser reads spotted keywords (window transcripts) instead of the waveform."""
    return getattr(model, "audio_source", "waveform") == "keywords"


@torch.no_grad()
def localisation_maps(model: nn.Module, clips: np.ndarray, audio, batch_size: int = 16) -> tuple[np.ndarray, float]:
    """Response maps of (N, T, H, W) uint8 clips with their (N, S) audio windows (or, for a
    keyword model, their N window transcripts or (N, K) term weights).

    Returns ``(maps (N, h, w), seconds spent in the model)``.
    """
    if len(clips) != len(audio):
        raise ValueError(f"{len(clips)} clips but {len(audio)} audio windows")
    model.eval()
    maps, seconds = [], 0.0
    for i in range(0, len(clips), batch_size):
        x = torch.from_numpy(clips[i : i + batch_size].astype(np.float32) / 255.0)
        a = audio[i : i + batch_size]
        a = list(a) if isinstance(a, (list, tuple)) else torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
        t0 = time.perf_counter()
        m = model.localisation_map(x, a)
        seconds += time.perf_counter() - t0
        maps.append(m.detach().float().reshape(len(x), *m.shape[-2:]).numpy())
    return (np.concatenate(maps) if maps else np.zeros((0, 1, 1), np.float32)), seconds


def localise_video(
    video_path: str | Path,
    audio_path: str | Path | None,
    model: nn.Module,
    *,
    size: tuple[int, int] = (224, 224),
    n_frames: int = 1,
    frame_stride: int = 1,
    window_s: tuple[float, float] = (0.3, 0.3),
    audio_offset_s: float = 0.0,
    sample_rate_hz: int = 16000,
    every: int = 1,
    batch_size: int = 16,
    terms: list | None = None,
    progress: Progress = silent,
) -> LocalisationResult:
    """The response map of every ``every``-th frame of a video to the speech around it.

    Args:
        video_path: the scan's video (any format ``sonotell.io.video`` reads).
        audio_path: its speech (wav/flac/ogg); None uses the video's own audio track.
        model: a model with ``localisation_map(frames (B, T, H, W), audio (B, S))``.
        size: working resolution (H, W).
        n_frames, frame_stride: the clip fed for each frame (centred on it; 1 = the frame only).
        window_s: speech seconds before / after the frame's time (Show from Tell: ±0.3 s).
        audio_offset_s: where the audio starts on the video clock.
        terms: for a keyword model (``audio_source: keywords``), the spotted terms as ``Word``s
            (text = label, video clock); default: the speech pipeline runs on the audio here.
    """
    from sonotell.io.audio import load_audio
    from sonotell.io.video import probe_video, read_frames, variable_frame_times

    info = probe_video(video_path)
    frames = read_frames(video_path, size=size)
    vfr = variable_frame_times(video_path)
    t_of = (lambda i: float(vfr[i])) if vfr is not None and len(vfr) == len(frames) else (lambda i: i / info.fps)
    wav, sr = load_audio(audio_path if audio_path is not None else video_path, sample_rate_hz, allow_silent=True)
    if uses_keywords(model) and terms is None:
        terms = spotted_terms(
            audio_path if audio_path is not None else video_path,
            getattr(model, "keyword_lexicon", None),
            audio_offset_s,
        )
    idx = list(range(0, len(frames), max(1, every)))
    maps, seconds = [], 0.0
    for start in range(0, len(idx), batch_size):
        chunk = idx[start : start + batch_size]
        clips = clips_around(frames, chunk, n_frames, frame_stride)
        if terms is not None and uses_keywords(model):
            audio = [words_in_window(terms, t_of(i) - window_s[0], t_of(i) + window_s[1]) for i in chunk]
        else:
            audio = np.stack([audio_window(wav, sr, t_of(i) - audio_offset_s, window_s[0], window_s[1]) for i in chunk])
        m, s = localisation_maps(model, clips, audio, batch_size)
        maps.append(m)
        seconds += s
        progress(min(start + batch_size, len(idx)), len(idx), "localising")
    return LocalisationResult(
        frames[idx], np.concatenate(maps).astype(np.float32), info.fps / max(1, every), seconds, idx
    )


def spotted_terms(audio_path: str | Path, lexicon, audio_offset_s: float = 0.0) -> list:
    """The speech pipeline's non-negated term events in a recording, as ``Word``s whose text is
    the label (video clock): the input of a keyword localiser."""
    from sonotell.speech.pipeline import SpeechPipeline
    from sonotell.types import Word

    if not isinstance(lexicon, str):
        raise ConfigError(
            "this keyword localiser was trained with an inline lexicon: pass its spotted terms (terms=...)"
        )
    result = SpeechPipeline.from_config("speech", lexicon=lexicon).process_file(audio_path, audio_offset_s)
    return [Word(e.label, e.start_s, e.end_s, e.confidence, e.speaker) for e in result.events if not e.negated]


def render_overlay(
    result: LocalisationResult, out_path: str | Path, alpha: float = 0.45, colormap: str = "jet"
) -> Path:
    """Write the frames with their response maps blended on top as a video (PyAV)."""
    from sonotell.eval.localisation import overlay, write_video

    return write_video(
        out_path, (overlay(f, m, alpha, colormap) for f, m in zip(result.frames, result.maps)), result.fps
    )


def scan_roi(scan) -> tuple[int, int, int, int] | None:
    """The sector a scan is cropped to for training: the manifest's ``roi``, else detected
    from frames spread over the video (as ``FrameCache.build(roi="auto")``); None when none is found."""
    from sonotell.io.crop import check_roi, detect_video_roi

    if scan.roi is not None:
        return check_roi(tuple(int(v) for v in scan.roi), int(scan.width), int(scan.height), scan.video_path)
    return detect_video_roi(scan.video_path)


def sector_frames(video_path: str | Path, size: tuple[int, int], box: tuple[int, int, int, int] | None) -> np.ndarray:
    """All frames of a video as the model is fed them: cropped to ``box`` (a sector, e.g.
    ``scan_roi``; None: the full frame) and resized to ``size``."""
    from sonotell.io.crop import crop
    from sonotell.io.video import _resize, read_frames

    if box is None:
        return read_frames(video_path, size=size)
    return np.stack([_resize(np.ascontiguousarray(crop(f, box)), size) for f in read_frames(video_path)])


def clips_around(frames: np.ndarray, centres, n_frames: int = 1, frame_stride: int = 1) -> np.ndarray:
    """(N, n_frames, H, W): for each centre frame index, the clip of ``n_frames`` at ``frame_stride``
    around it (indices clamped to the video), as pretraining samples clips.

    Example:
        >>> clips_around(np.arange(5)[:, None, None], [0, 4], n_frames=3, frame_stride=2)[:, :, 0, 0].tolist()
        [[0, 0, 2], [2, 4, 4]]
    """
    half = (n_frames - 1) // 2
    offsets = frame_stride * (np.arange(n_frames) - half)
    return np.stack([frames[np.clip(int(c) + offsets, 0, len(frames) - 1)] for c in centres])


def paste_map(heat: np.ndarray, roi: tuple[int, int, int, int], full_hw: tuple[int, int]) -> np.ndarray:
    """A map computed on the ``roi`` crop, upsampled into that box of a ``full_hw`` frame;
    outside the box the map's minimum (so the maximum always lies in the sector).

    Example:
        >>> m = paste_map(np.array([[0.0, 1.0], [0.0, 0.0]]), (4, 2, 8, 6), (8, 10))
        >>> np.unravel_index(int(np.argmax(m)), m.shape)
        (np.int64(2), np.int64(7))
    """
    from sonotell.eval.localisation import upsample_map

    x0, y0, x1, y1 = roi
    out = np.full(full_hw, float(np.min(heat)), np.float32)
    out[y0:y1, x0:x1] = upsample_map(heat, (y1 - y0, x1 - x0))
    return out


def spoken_targets(benchmark, scan_id: str, fps: float, pad_s: float = 0.0) -> list[dict]:
    """Frames to score in one scan: for each spoken (not negated) term whose class has a mask
    class, the masked frame nearest the middle of the utterance (within the utterance +- ``pad_s``).

    Returns ``[{frame_index, time_s, label, class_index}]``.
    """
    truth = benchmark.truth(scan_id)
    masked = np.array(sorted(int(k) for k in truth.get("masks", {})), dtype=int)
    if masked.size == 0:
        return []
    out = []
    for ev in truth.get("events", []):
        if ev.get("negated") or ev["label"] not in benchmark.mask_classes:
            continue
        mid = 0.5 * (ev["start_s"] + ev["end_s"])
        j = int(masked[np.argmin(np.abs(masked / fps - mid))])
        if ev["start_s"] - pad_s <= j / fps <= ev["end_s"] + pad_s:
            out.append(
                {
                    "frame_index": j,
                    "time_s": mid,
                    "label": ev["label"],
                    "class_index": benchmark.mask_classes.index(ev["label"]),
                }
            )
    return out


def score_localisation(
    benchmark,
    model: nn.Module,
    *,
    scan_ids: list[str] | None = None,
    size: tuple[int, int] = (224, 224),
    n_frames: int = 1,
    frame_stride: int = 1,
    window_s: tuple[float, float] = (0.3, 0.3),
    sample_rate_hz: int = 16000,
    tolerance_px: float = 15.0,
    iou_threshold: float = 0.5,
    pad_s: float = 0.5,
    batch_size: int = 16,
    roi: str | None = "auto",
    transcripts: dict | None = None,
    progress: Progress = silent,
) -> dict:
    """Pointing game and thresholded IoU of the response to each spoken organ name, against
    that organ's mask in the frame shown while it was said; plus two map-free baselines
    (a centre prior and a uniformly random map) scored on the same frames, and a control:
    the map of the same frame given the speech that names another organ of the scan.

    With ``roi="auto"`` (default) each frame is cropped to the scan's sector (the manifest's
    ``roi`` when set, else detected) before it is resized and fed to the model, as pretraining
    (``ClipDataset``/``FrameCache``) does, and the map is pasted back into the sector of the
    full frame (outside it: the map's minimum). Feeding full frames to a model trained on
    crops shows it overlay text and black borders it never saw, and its maximum lands there.
    ``roi=None`` feeds full frames. ``n_frames``/``frame_stride``: the clip fed around the
    scored frame (pass the training clip's, so a video network sees what it was trained on).

    A keyword model (``audio_source: keywords``) reads, instead of the waveform, the terms the
    speech pipeline spotted in the same window: ``transcripts`` maps scan id to its words
    (``sonotell.methods.pretrain.load_transcript_words(folder, ids, units="terms")``). For it
    two more numbers: ``spotted_fraction`` (frames whose window holds any spotted term) and,
    as a diagnostic of the visual side only, ``oracle_term_pointing_game``: the map of the
    *annotated* organ's term (a human label: not audio-guided).

    Example:
        >>> score_localisation(load_benchmark("bench_out/abdominal"), model)["pointing_game"]  # doctest: +SKIP
    """
    ids = scan_ids if scan_ids is not None else [s.scan_id for s in benchmark.scans]
    keywords = uses_keywords(model)
    if keywords and transcripts is None:
        raise ConfigError(
            "a keyword localiser needs the spotted terms of the scored scans "
            "(transcripts=load_transcript_words(folder, ids, units='terms'))"
        )
    setup = _Scoring(
        model, keywords, size, n_frames, frame_stride, window_s, sample_rate_hz, tolerance_px, iou_threshold, batch_size
    )
    rng = np.random.default_rng(0)
    rows, seconds = [], 0.0
    for k, sid in enumerate(ids):
        scan = benchmark.scan(sid)
        targets = [
            t
            for t in spoken_targets(benchmark, sid, float(scan.fps), pad_s)
            if (m := benchmark.mask(sid, t["frame_index"])) is not None and np.any(m == t["class_index"])
        ]
        if targets:
            scan_rows, s = _score_scan(setup, benchmark, scan, targets, roi, transcripts, rng)
            rows += scan_rows
            seconds += s
        progress(k + 1, len(ids), sid)
    return {**summarise_localisation(rows), "model_seconds": seconds}


@dataclass(frozen=True)
class _Scoring:
    """What ``score_localisation`` scores with (the same for every scan)."""

    model: nn.Module
    keywords: bool
    size: tuple[int, int]
    n_frames: int
    frame_stride: int
    window_s: tuple[float, float]
    sample_rate_hz: int
    tolerance_px: float
    iou_threshold: float
    batch_size: int


def _score_scan(setup: _Scoring, benchmark, scan, targets: list[dict], roi, transcripts, rng) -> tuple[list, float]:
    """Per-frame rows of one scan's spoken targets, and the model's seconds."""
    box = scan_roi(scan) if roi == "auto" else None
    frames = sector_frames(scan.video_path, setup.size, box)
    clips = clips_around(frames, [t["frame_index"] for t in targets], setup.n_frames, setup.frame_stride)
    audio = _speech_inputs(setup, scan, targets, transcripts)
    maps, seconds = localisation_maps(setup.model, clips, audio, setup.batch_size)
    oracle = _oracle_maps(setup, clips, targets) if setup.keywords else {}
    control = _control_maps(setup, clips, targets, audio)
    rows = []
    for i, (t, m) in enumerate(zip(targets, maps)):
        target = benchmark.mask(scan.scan_id, t["frame_index"]) == t["class_index"]
        cm, om = control.get(i), oracle.get(i)
        if box is not None:
            m, cm, om = (None if x is None else paste_map(x, box, target.shape) for x in (m, cm, om))
        rows.append(_frame_row(setup, scan.scan_id, t, target, m, cm, om, audio[i] if setup.keywords else None, rng))
    return rows, seconds


def _speech_inputs(setup: _Scoring, scan, targets: list[dict], transcripts):
    """What the model hears at each target: the spotted terms of its window, or the waveform around it."""
    from sonotell.io.audio import load_audio

    before, after = setup.window_s
    if setup.keywords:  # the spotted terms of the window, on the video clock like the targets
        words = transcripts.get(scan.scan_id, [])
        return [words_in_window(words, t["time_s"] - before, t["time_s"] + after) for t in targets]
    wav, sr = load_audio(scan.audio_source, setup.sample_rate_hz, allow_silent=True)
    return np.stack([audio_window(wav, sr, t["time_s"] - scan.audio_offset_s, before, after) for t in targets])


def _oracle_maps(setup: _Scoring, clips, targets: list[dict]) -> dict:
    """Keyword model: the map of the annotated organ's own term (a human label, not audio-guided)."""
    term_index = {lab: k for k, lab in enumerate(setup.model.term_labels)}
    known = [i for i, t in enumerate(targets) if t["label"] in term_index]
    onehot = np.zeros((len(known), len(term_index)), np.float32)
    onehot[np.arange(len(known)), [term_index[targets[i]["label"]] for i in known]] = 1.0
    if not known:
        return {}
    return dict(zip(known, localisation_maps(setup.model, clips[known], onehot, setup.batch_size)[0]))


def _control_maps(setup: _Scoring, clips, targets: list[dict], audio) -> dict:
    """Control: the same frame with the speech naming another organ (same scan). A map that
    follows the speech should then point at the named organ less often."""
    other = [
        next((j for j in np.roll(np.arange(len(targets)), -i) if targets[j]["label"] != t["label"]), -1)
        for i, t in enumerate(targets)
    ]
    has_other = [i for i, j in enumerate(other) if j >= 0]
    if not has_other:
        return {}
    other_audio = [audio[other[i]] for i in has_other] if setup.keywords else audio[[other[i] for i in has_other]]
    cmaps, _ = localisation_maps(setup.model, clips[has_other], other_audio, setup.batch_size)
    return dict(zip(has_other, cmaps))


def _frame_row(setup: _Scoring, sid: str, t: dict, target, m, cm, om, speech, rng) -> dict:
    """One scored frame: the model's hit and IoU, the centre and random baselines, the control and (keywords) oracle."""
    from sonotell.eval.localisation import pointing_game, threshold_iou

    h, w = target.shape
    yy, xx = np.mgrid[:h, :w]
    centre = -((yy - h / 2) ** 2 + (xx - w / 2) ** 2).astype(np.float32)
    tol, thr = setup.tolerance_px, setup.iou_threshold
    row = {
        "scan_id": sid,
        "frame_index": t["frame_index"],
        "label": t["label"],
        "hit": bool(pointing_game(m, target, tol)),
        "iou": threshold_iou(m, target, thr),
        "centre_hit": bool(pointing_game(centre, target, tol)),
        "random_hit": bool(pointing_game(rng.random(m.shape), target, tol)),
        "other_speech_hit": None if cm is None else bool(pointing_game(cm, target, tol)),
    }
    if setup.keywords:
        row.update(
            {
                "spotted": bool(setup.model.said_terms([speech]).sum() > 0),
                "speech": speech,
                "oracle_hit": None if om is None else bool(pointing_game(om, target, tol)),
                "oracle_iou": None if om is None else threshold_iou(om, target, thr),
            }
        )
    return row


def summarise_localisation(rows: list[dict]) -> dict:
    """The aggregate numbers of ``score_localisation`` from its per-frame ``rows`` (e.g. pooled over folds)."""
    keywords = bool(rows) and "spotted" in rows[0]
    labels = sorted({r["label"] for r in rows})
    mean = lambda key, rs: float(np.mean([r[key] for r in rs])) if rs else float("nan")  # noqa: E731
    extra = {}
    if keywords:
        orc = [r for r in rows if r["oracle_hit"] is not None]
        extra = {
            "spotted_fraction": mean("spotted", rows),
            "n_oracle": len(orc),
            "oracle_term_pointing_game": mean("oracle_hit", orc),
            "oracle_term_iou": mean("oracle_iou", orc),
        }
    return {
        "n_frames": len(rows),
        "pointing_game": mean("hit", rows),
        "iou": mean("iou", rows),
        "centre_prior_pointing_game": mean("centre_hit", rows),
        "random_map_pointing_game": mean("random_hit", rows),
        # over the frames whose scan names another organ too: the model's map with the right
        # speech vs. with the speech naming the other organ (the map's dependence on what is said)
        "n_control": len(ctrl := [r for r in rows if r["other_speech_hit"] is not None]),
        "pointing_game_control_frames": mean("hit", ctrl),
        "other_speech_pointing_game": mean("other_speech_hit", ctrl),
        "per_class": {
            c: {
                "n": sum(r["label"] == c for r in rows),
                "pointing_game": mean("hit", [r for r in rows if r["label"] == c]),
            }
            for c in labels
        },
        **extra,
        "rows": rows,
    }

"""``ClipDataset``: a benchmark's scans as a torch Dataset of paired clips (frames, audio, text, labels).

Each scan is decoded once into a ``FrameCache`` (cropped to its sector, at the working size)
under ``cache_dir``; items are then cheap slices of those caches. Items are dicts:

==============  =====================================================================
``frames``      float32 (T, H, W) in [0, 1]
``audio``       float32 (S,), the window [t - before, t + after] at ``sample_rate_hz``
``text``        words said in that window (ground-truth segments, or ``words=``)
``label``       int index into ``classes``; -1 when there is none
``labels``      float32 multi-hot (K,) over ``label_names``
``subject_id``  / ``scan_id`` / ``time_s``
``mask``        int64 (H, W) class map when ``with_masks``; all -1 where the frame has none
==============  =====================================================================

Labels come from the clip (``label_source="clip"``: the manifest's ``label``/``labels``) or
from the narration (``"events"``: the spoken term nearest ``t`` within ``event_window_s``, and
every term said within that window for the multi-hot), negated terms ignored.

Example:
    >>> ds = ClipDataset("bench_out/synthetic", None, n_frames=4, size=(64, 64), cache_dir="cache")  # doctest: +SKIP
    >>> item = ds[0]; item["frames"].shape, item["label"]  # doctest: +SKIP
    (torch.Size([4, 64, 64]), 2)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from sonotell.data.sampler import ClipSampler
from sonotell.errors import InputError
from sonotell.io.cache import FrameCache
from sonotell.progress import Progress, silent
from sonotell.types import Word

log = logging.getLogger(__name__)


class ClipDataset(Dataset):
    """Paired clips from a benchmark folder.

    Args:
        benchmark: a ``sonotell.data.format.Benchmark`` or its folder.
        scan_ids: scans to use (e.g. one CV fold); None uses all.
        n_frames / frame_stride / size: clip frames (count, step in source frames, (H, W)).
        audio_window_s: ``(before, after)`` seconds around ``t``, or one number split evenly.
        sample_rate_hz: audio rate of the items (and of the cached audio).
        cache_dir: where the frame caches live (built on first use).
        times: where clips are taken — ``"grid"`` (every ``clip_hop_s``), ``"events"`` (the
            centre of every spoken term), ``"masks"`` (every frame with a mask), or a dict
            ``scan_id -> list of times``.
        label_source: ``"clip"`` or ``"events"`` (see module doc).
        classes / label_names: index order of ``label`` / ``labels`` (default: the benchmark's).
        words: ``scan_id -> list[Word]`` for the transcript (e.g. ASR output) instead of the
            ground-truth segments.
        crop: detect and crop the ultrasound sector (the manifest's ``roi`` wins when set).
    """

    def __init__(
        self,
        benchmark: Any,
        scan_ids: Sequence[str] | None = None,
        *,
        n_frames: int = 8,
        frame_stride: int = 1,
        size: tuple[int, int] = (112, 112),
        audio_window_s: float | tuple[float, float] = (0.5, 0.5),
        sample_rate_hz: int = 16000,
        cache_dir: str | Path = "cache",
        times: str | dict[str, Sequence[float]] = "grid",
        clip_hop_s: float = 1.0,
        label_source: str = "clip",
        event_window_s: float = 2.0,
        classes: Sequence[str] | None = None,
        label_names: Sequence[str] | None = None,
        words: dict[str, Sequence[Word]] | None = None,
        with_masks: bool = False,
        crop: bool = True,
        progress: Progress = silent,
    ):
        if isinstance(benchmark, (str, Path)):
            from sonotell.data.format import load_benchmark

            benchmark = load_benchmark(benchmark)
        if label_source not in ("clip", "events"):
            raise ValueError(f"label_source must be 'clip' or 'events', not {label_source!r}")
        before, after = (audio_window_s / 2, audio_window_s / 2) if np.isscalar(audio_window_s) else audio_window_s
        self.benchmark = benchmark
        self.classes = list(classes if classes is not None else benchmark.classes)
        self.label_names = list(label_names if label_names is not None else getattr(benchmark, "label_names", []))
        self.size = (int(size[0]), int(size[1]))
        self.label_source = label_source
        self.event_window_s = event_window_s
        self.with_masks = with_masks
        by_id = {s.scan_id: s for s in benchmark.scans}
        scan_ids = list(scan_ids) if scan_ids is not None else [s.scan_id for s in benchmark.scans]
        unknown = [i for i in scan_ids if i not in by_id]
        if unknown:
            raise InputError(getattr(benchmark, "root", None), f"unknown scan id(s) {', '.join(unknown[:5])}")
        table = benchmark.table.set_index("scan_id")
        self.scan_ids = scan_ids
        self.samplers: dict[str, ClipSampler] = {}
        self.truth: dict[str, dict] = {}
        self.clip_label: dict[str, str] = {}
        self.clip_labels: dict[str, list[str]] = {}
        self.items: list[tuple[str, float]] = []
        for i, scan_id in enumerate(scan_ids):
            progress(i, len(scan_ids), f"cache {scan_id}")
            scan = by_id[scan_id]
            cache = FrameCache.build(
                scan, cache_dir, size=self.size, roi="auto" if crop else None, audio_rate_hz=sample_rate_hz
            )
            truth = benchmark.truth(scan_id)
            self.truth[scan_id] = truth
            self.clip_label[scan_id] = _text(table.loc[scan_id, "label"]) if "label" in table.columns else ""
            self.clip_labels[scan_id] = (
                [v for v in _text(table.loc[scan_id, "labels"]).split(";") if v] if "labels" in table.columns else []
            )
            scan_words = (
                list(words[scan_id])
                if words is not None and scan_id in words
                else segment_words(truth.get("segments", []))
            )
            self.samplers[scan_id] = ClipSampler(
                cache,
                n_frames=n_frames,
                frame_stride=frame_stride,
                audio_before_s=before,
                audio_after_s=after,
                sample_rate_hz=sample_rate_hz,
                words=scan_words,
                subject_id=scan.subject_id,
                scan_id=scan_id,
            )
            self.items.extend((scan_id, float(t)) for t in self._times(scan_id, cache, times, clip_hop_s))
        progress(len(scan_ids), len(scan_ids), "cached")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        scan_id, t = self.items[index]
        sampler = self.samplers[scan_id]
        label, labels = self.labels_at(scan_id, t)
        item = {
            "frames": torch.from_numpy(sampler.frames(t)),
            "audio": torch.from_numpy(sampler.audio(t)),
            "text": sampler.text(t),
            "label": self.classes.index(label) if label in self.classes else -1,
            "labels": torch.tensor([float(n in labels) for n in self.label_names], dtype=torch.float32),
            "subject_id": sampler.subject_id,
            "scan_id": scan_id,
            "time_s": t,
        }
        if self.with_masks:
            item["mask"] = torch.from_numpy(self.mask_at(scan_id, t))
        return item

    @property
    def subject_ids(self) -> list[str]:
        """Subject of every item, in order (the groups for subject-level splits)."""
        return [self.samplers[s].subject_id for s, _ in self.items]

    def labels_at(self, scan_id: str, t: float) -> tuple[str, list[str]]:
        """The class and multi-labels of time ``t`` under ``label_source``."""
        if self.label_source == "clip":
            return self.clip_label[scan_id], self.clip_labels[scan_id]
        near = []
        for e in self.truth[scan_id].get("events", []):
            if e.get("negated"):
                continue
            gap = max(0.0, float(e["start_s"]) - t, t - float(e["end_s"]))
            if gap <= self.event_window_s:
                near.append((gap, float(e["start_s"]), e["label"]))
        if not near:
            return "", []
        near.sort()
        return near[0][2], sorted({lab for _, _, lab in near})

    def mask_at(self, scan_id: str, t: float) -> np.ndarray:
        """The class map of the frame at ``t``, cropped and resized like the frames; -1 where none."""
        cache = self.samplers[scan_id].cache
        frame_index = cache.index_at(t)
        mask = self.benchmark.mask(scan_id, frame_index)
        if mask is None:
            return np.full(self.size, -1, np.int64)
        from PIL import Image

        from sonotell.io.crop import crop

        mask = np.ascontiguousarray(crop(mask, cache.roi))
        return np.asarray(Image.fromarray(mask).resize((self.size[1], self.size[0]), Image.NEAREST), dtype=np.int64)

    def _times(self, scan_id: str, cache: FrameCache, times, hop_s: float) -> list[float]:
        duration = cache.duration_s
        if isinstance(times, dict):
            return [float(t) for t in times.get(scan_id, [])]
        if times == "grid":
            return list(np.arange(hop_s / 2, duration, hop_s))
        if times == "events":
            return [
                0.5 * (float(e["start_s"]) + float(e["end_s"]))
                for e in self.truth[scan_id].get("events", [])
                if not e.get("negated")
            ]
        if times == "masks":
            return [
                cache.time_of(int(k)) + 0.5 / cache.fps for k in sorted(self.truth[scan_id].get("masks", {}), key=int)
            ]
        raise ValueError(f"times must be 'grid', 'events', 'masks' or a dict, not {times!r}")


def segment_words(segments: Sequence[dict]) -> list[Word]:
    """Ground-truth segments as words, each segment's duration shared evenly by its words.

    Example:
        >>> segments = [{"text": "a b", "start_s": 1.0, "end_s": 2.0, "speaker": "x"}]
        >>> [(w.text, w.start_s) for w in segment_words(segments)]
        [('a', 1.0), ('b', 1.5)]
    """
    out = []
    for seg in segments:
        tokens = str(seg.get("text", "")).split()
        if not tokens:
            continue
        start, end = float(seg["start_s"]), float(seg["end_s"])
        step = (end - start) / len(tokens)
        out.extend(
            Word(tok, start + k * step, start + (k + 1) * step, speaker=seg.get("speaker"))
            for k, tok in enumerate(tokens)
        )
    return out


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value).strip()

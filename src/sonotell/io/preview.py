"""Browser-playable previews: a scan's video as H.264 with its narration as AAC, one MP4 file.

Archives hold codecs a browser cannot decode (MPEG-4 Part 2, GIF, DICOM cine, Motion JPEG ...) and keep the
narration in a separate file. The review page needs one file that any Chromium plays, with the narration
inside it so speed, mute and seeking act on both at once. A preview is:

- the video's frames (greyscale, as the rest of sonotell sees them), scaled down to at most ``max_height``
  rows, each frame at its own presentation time (variable frame rate kept), H.264 (``libx264``, yuv420p);
- the narration (``Scan.audio_source``) as mono AAC at 16 kHz, shifted by ``audio_offset_s`` so that the audio sample
  at video time ``t`` is the one the manifest puts there (silence where there is no narration);
- ``+faststart`` (the index first), so the browser starts playing before the whole file arrived.

Previews live in ``<cache_dir>/previews/<scan_id>.mp4`` with a ``<scan_id>.json`` beside it naming the
source files' signature; an up-to-date preview is reused, a stale one rebuilt. Written atomically.

Example:
    >>> path = ensure_preview(scan, "cache")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np

from sonotell.errors import InputError
from sonotell.files import atomic_path, write_json
from sonotell.types import Scan

log = logging.getLogger(__name__)

PREVIEW_FORMAT = 2
VIDEO_CODEC = "libx264"
AUDIO_CODEC = "aac"
AUDIO_RATE_HZ = 16000  # speech: the band the pipeline hears; an hour is 230 MB of float32 while encoding
MIME_TYPE = 'video/mp4; codecs="avc1.42E01E, mp4a.40.2"'
_BUILD_LOCKS: dict[str, threading.Lock] = {}
_GUARD = threading.Lock()


def preview_path(scan: Scan, cache_dir: str | Path) -> Path:
    from sonotell.io.manifest import check_scan_id

    return Path(cache_dir) / "previews" / f"{check_scan_id(scan.scan_id)}.mp4"


def source_signature(scan: Scan) -> dict:
    """What a preview was made from: the files (path, size, mtime) and the audio offset."""

    def sig(p: Path | None):
        if p is None or not Path(p).is_file():
            return None
        st = Path(p).stat()
        return [str(Path(p).resolve()), st.st_size, st.st_mtime_ns]

    return {
        "format": PREVIEW_FORMAT,
        "video": sig(scan.video_path),
        "audio": sig(scan.audio_path),
        "audio_offset_s": float(scan.audio_offset_s),
    }


def cached_preview(scan: Scan, cache_dir: str | Path) -> Path | None:
    """The scan's preview when one made from the scan's current files exists, else None."""
    path = preview_path(scan, cache_dir)
    meta = path.with_suffix(".json")
    if not (path.is_file() and meta.is_file()):
        return None
    try:
        stored = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    return path if stored.get("source") == source_signature(scan) else None


def ensure_preview(scan: Scan, cache_dir: str | Path, *, max_height: int = 480) -> Path:
    """The scan's preview, made now if missing or stale (one build at a time per file in this process)."""
    path = preview_path(scan, cache_dir)
    with _GUARD:
        lock = _BUILD_LOCKS.setdefault(str(path.resolve()), threading.Lock())
    with lock:
        hit = cached_preview(scan, cache_dir)
        if hit is not None:
            return hit
        return build_preview(scan, cache_dir, max_height=max_height)


def build_preview(scan: Scan, cache_dir: str | Path, *, max_height: int = 480) -> Path:
    """Encode the scan's preview (see the module doc) and its signature; returns the MP4's path.

    Raises ``InputError`` naming the video when it cannot be decoded. A scan whose narration cannot be
    read gets a preview with silence (and a warning in the log).
    """
    import av

    from sonotell.io.video import frame_times, iter_frames

    path = preview_path(scan, cache_dir)
    signature = source_signature(scan)
    times = frame_times(scan.video_path)  # presentation times, first frame at 0 (index / fps without timestamps)
    duration_s = float(times[-1]) + _frame_gap(times)
    wav, has_audio = _narration(scan)
    shift = int(round(scan.audio_offset_s * AUDIO_RATE_HZ))  # audio time = video time - offset
    try:
        with atomic_path(path) as tmp:
            with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as out:
                vs = None
                for i, frame in enumerate(iter_frames(scan.video_path)):
                    if vs is None:
                        vs, size = _video_stream(out, frame.shape, times, max_height)
                        audio = _AudioTrack(out, wav, shift, int(round(duration_s * AUDIO_RATE_HZ)))
                    img = _fit(frame, size)
                    vf = av.VideoFrame.from_ndarray(img, format="gray").reformat(format="yuv420p")
                    t = times[i] if i < len(times) else times[-1] + (i - len(times) + 1) * _frame_gap(times)
                    vf.pts = round(float(t) * 1000)
                    vf.time_base = Fraction(1, 1000)
                    for pkt in vs.encode(vf):
                        out.mux(pkt)
                    audio.encode_until(float(t) + 1.0)  # interleaved: the muxer never holds the whole video
                if vs is None:
                    raise InputError(scan.video_path, "video has no frames")
                for pkt in vs.encode():
                    out.mux(pkt)
                audio.finish()
    except InputError:
        raise
    except Exception as e:
        raise InputError(scan.video_path, f"cannot make a browser preview ({e.__class__.__name__}: {e})") from None
    write_json(path.with_suffix(".json"), {"source": signature, "narration": has_audio, "codecs": MIME_TYPE})
    return path


def build_previews(scans: list[Scan], cache_dir: str | Path, *, progress=None) -> list[str]:
    """Previews of many scans (reusing up-to-date ones); returns one ``<file>: <problem>`` per scan that failed."""
    problems = []
    for k, scan in enumerate(scans):
        try:
            ensure_preview(scan, cache_dir)
        except InputError as e:
            problems.append(str(e))
        if progress is not None:
            progress(k + 1, len(scans), scan.scan_id)
    return problems


def _frame_gap(times: np.ndarray) -> float:
    return float(np.median(np.diff(times))) if len(times) > 1 else 0.1


def _video_stream(out, shape: tuple[int, int], times: np.ndarray, max_height: int):
    h, w = shape
    scale = min(1.0, max_height / h)
    # yuv420p needs even sides
    size = (max(2, int(h * scale) // 2 * 2), max(2, int(w * scale) // 2 * 2))
    fps = Fraction(1.0 / _frame_gap(times)).limit_denominator(1001)
    vs = out.add_stream(VIDEO_CODEC, rate=fps)
    vs.height, vs.width = size
    vs.pix_fmt = "yuv420p"
    vs.time_base = Fraction(1, 1000)
    vs.codec_context.time_base = Fraction(1, 1000)
    # baseline profile: any browser's decoder; ultrafast: a preview is made in seconds, not minutes
    vs.options = {"preset": "ultrafast", "crf": "26", "profile": "baseline", "threads": "1"}
    return vs, size


def _fit(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if frame.shape[:2] == size:
        return np.ascontiguousarray(frame)
    from PIL import Image

    return np.asarray(Image.fromarray(frame).resize((size[1], size[0]), Image.BILINEAR))


def _narration(scan: Scan) -> tuple[np.ndarray, bool]:
    """The narration at ``AUDIO_RATE_HZ``; no samples (silence in the preview) when it cannot be read."""
    from sonotell.errors import SonotellError
    from sonotell.io.audio import load_audio

    try:
        wav, _ = load_audio(scan.audio_source, AUDIO_RATE_HZ, allow_silent=True)
    except SonotellError as e:
        log.warning("preview of %s without narration: %s", scan.scan_id, e)
        return np.zeros(0, np.float32), False
    return wav, True


class _AudioTrack:
    """The narration encoded in AAC frames as the video advances, on the video clock.

    Output sample ``k`` (video time ``k / rate``) is narration sample ``k - shift``; silence outside the
    narration, and exactly ``n_total`` samples (the video's duration), without copying the narration.
    """

    BLOCK = 1024  # AAC's frame size

    def __init__(self, out, wav: np.ndarray, shift: int, n_total: int):
        self.out, self.wav, self.shift, self.n_total, self.done = out, wav, shift, n_total, 0
        self.stream = out.add_stream(AUDIO_CODEC, rate=AUDIO_RATE_HZ, layout="mono")

    def encode_until(self, t: float) -> None:
        import av

        stop = min(self.n_total, int(t * AUDIO_RATE_HZ))
        while self.done < stop:
            chunk = np.zeros(self.BLOCK, np.float32)
            lo, hi = self.done - self.shift, min(self.done + self.BLOCK, self.n_total) - self.shift
            a, b = max(lo, 0), min(hi, len(self.wav))
            if b > a:
                chunk[a - lo : b - lo] = self.wav[a:b]
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
            frame.sample_rate = AUDIO_RATE_HZ
            frame.pts = self.done
            frame.time_base = Fraction(1, AUDIO_RATE_HZ)
            for pkt in self.stream.encode(frame):
                self.out.mux(pkt)
            self.done += self.BLOCK

    def finish(self) -> None:
        self.encode_until(self.n_total / AUDIO_RATE_HZ + 1)
        for pkt in self.stream.encode():
            self.out.mux(pkt)

"""The frame cache: a scan decoded once, cropped and resized, for fast random access.

One folder per scan and working size, ``<cache_dir>/<scan_id>_<H>x<W>/``:

- ``frames.u8``: raw uint8 frames (T, H, W), C order, read through ``numpy.memmap`` — a clip
  is one contiguous slice, so sampling costs a page-cache read, not a video seek + decode;
- ``audio_<rate>.npy``: the scan's audio, mono float32 resampled to ``audio_rate_hz``
  (sample 0 sits at ``audio_offset_s`` on the video clock);
- ``times.npy``: only for a variable-frame-rate video, each frame's presentation time (s);
- ``meta.json``: shape, fps, ROI, the source files' signature; written last.

Builds go into ``<folder>.partial/`` and are renamed into place when complete, so a reader
never sees half a cache. An interrupted build resumes: ``partial.json`` records how many
frames are safely on disk, and a rebuild truncates ``frames.u8`` to them before appending (to
nothing when no checkpoint was reached). A damaged cache entry is rebuilt with a warning. An up-to-date cache (same
source files, size, ROI) is opened instead of rebuilt.

Example:
    >>> cache = FrameCache.build(scan, "cache", size=(128, 128))  # doctest: +SKIP
    >>> clip = cache.frames(100, 116, stride=2)                     # (8, 128, 128) uint8  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np

from sonotell.errors import InputError, OutputError
from sonotell.files import write_json
from sonotell.io.crop import CropParams, Roi, check_roi, crop, detect_roi, sample_frames
from sonotell.progress import Progress, silent
from sonotell.types import Scan

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_CHECKPOINT_EVERY = 256  # frames between resumable checkpoints
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG}


def _unwritable(e: BaseException) -> bool:
    """A full disk (or an output sonotell.files could not write): the cache cannot be built here."""
    return isinstance(e, OutputError) or (isinstance(e, OSError) and e.errno in _DISK_FULL)


class FrameCache:
    """Read access to one built cache (open with ``FrameCache.open`` or ``FrameCache.build``)."""

    def __init__(self, root: Path, meta: dict):
        self.root = Path(root)
        self.meta = meta
        self._frames: np.memmap | None = None
        self._audio: np.ndarray | None = None

    # ----------------------------------------------------------------- building
    @staticmethod
    def path_for(scan: Scan, cache_dir: str | Path, size: tuple[int, int] | None) -> Path:
        from sonotell.io.manifest import check_scan_id

        tag = "native" if size is None else f"{size[0]}x{size[1]}"
        return Path(cache_dir) / f"{check_scan_id(scan.scan_id)}_{tag}"  # never a path outside cache_dir

    @classmethod
    def build(
        cls,
        scan: Scan,
        cache_dir: str | Path,
        size: tuple[int, int] | None = (128, 128),
        *,
        roi: Roi | str | None = "auto",
        crop_params: CropParams = CropParams(),
        audio_rate_hz: int | None = 16000,
        progress: Progress = silent,
    ) -> "FrameCache":
        """Decode ``scan`` once into ``cache_dir`` (or open the cache already there).

        Args:
            scan: the scan; ``scan.roi``, when set, is used as a manual ROI override.
            cache_dir: parent folder; the cache goes to ``FrameCache.path_for(scan, cache_dir, size)``.
            size: working (height, width) after cropping (stretched to it); None keeps the crop size.
            roi: ``"auto"`` detects the sector (unless ``scan.roi`` is set), a tuple forces one,
                None keeps the full frame.
            audio_rate_hz: rate of the cached audio; None caches no audio.
            progress: called as ``progress(frames_done, n_frames, message)``.
        """
        final = cls.path_for(scan, cache_dir, size)
        if roi == "auto":
            roi_request = "auto" if scan.roi is None else list(scan.roi)
        else:
            roi_request = None if roi is None else [int(v) for v in roi]
        signature = _signature(scan, size, roi_request, audio_rate_hz)
        partial = final.with_name(final.name + ".partial")
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            # One builder per cache: DDP ranks or DataLoader users sharing cache_dir wait here,
            # then find the finished cache instead of writing the same .partial folder twice.
            with _exclusive(final.with_name(final.name + ".lock")):
                try:
                    return cls._build_locked(
                        scan, final, partial, signature, size, roi, crop_params, audio_rate_hz, progress
                    )
                except (OSError, OutputError) as e:
                    if _unwritable(e):  # inside the lock: never another builder's files
                        shutil.rmtree(partial, ignore_errors=True)
                    raise
        except OSError as e:
            if not _unwritable(e):
                raise
            # a full disk: no half-built entry is left to fill it further; finished entries are untouched
            raise OutputError(
                final, "could not be written: no space left on device (finished cache entries are intact)"
            ) from None

    @classmethod
    def _build_locked(
        cls,
        scan: Scan,
        final: Path,
        partial: Path,
        signature: dict,
        size: tuple[int, int] | None,
        roi: Roi | str | None,
        crop_params: CropParams,
        audio_rate_hz: int | None,
        progress: Progress,
    ) -> "FrameCache":
        """The build itself, under the entry's lock: open an up-to-date cache, else (re)build into ``partial``."""
        if final.exists():
            try:
                cache = cls.open(final)
            except InputError as e:  # a damaged entry is rebuilt, never a dead end
                log.warning("%s; rebuilding this cache entry", e)
            else:
                if cache.meta.get("signature") == signature:
                    log.info("%s: cache up to date", final)
                    return cache
                log.info("%s: sources or settings changed; rebuilding", final)
        partial = final.with_name(final.name + ".partial")
        partial.mkdir(parents=True, exist_ok=True)
        state_path = partial / "partial.json"
        try:
            state = json.loads(state_path.read_text()) if state_path.exists() else {}
        except (OSError, ValueError):
            log.warning("%s: unreadable build state; starting this cache entry again", state_path)
            state = {}
        if state.get("signature") != signature:
            shutil.rmtree(partial)
            partial.mkdir(parents=True)
            state = {"signature": signature}

        if "roi" not in state:
            state["roi"], state["source_size"] = _choose_roi(scan, roi, crop_params)
            write_json(state_path, state)
        used_roi = None if state["roi"] is None else tuple(state["roi"])
        n_total = scan.n_frames or 0
        done, out_hw = _decode_frames(scan, partial, used_roi, size, state, state_path, n_total, progress)

        meta = {
            "format_version": FORMAT_VERSION,
            "scan_id": scan.scan_id,
            "subject_id": scan.subject_id,
            "n_frames": done,
            "height": out_hw[0],
            "width": out_hw[1],
            "fps": scan.fps or _probe_fps(scan.video_path),
            "roi": used_roi,
            "source_width": state["source_size"][0],
            "source_height": state["source_size"][1],
            "audio_offset_s": scan.audio_offset_s,
            "audio_rate_hz": None,
            "audio_samples": 0,
            "signature": signature,
        }
        from sonotell.io.video import variable_frame_times

        times = variable_frame_times(scan.video_path)
        if times is not None and len(times) == done:  # variable frame rate: keep every frame's time
            np.save(partial / "times.npy", times.astype(np.float64))
            meta["variable_frame_rate"] = True
        if audio_rate_hz is not None:
            from sonotell.io.audio import load_audio

            wav, _ = load_audio(scan.audio_source, sample_rate_hz=audio_rate_hz, allow_silent=True)
            np.save(partial / f"audio_{audio_rate_hz}.npy", wav.astype(np.float32))
            meta["audio_rate_hz"], meta["audio_samples"] = audio_rate_hz, int(len(wav))
        state_path.unlink()
        write_json(partial / "meta.json", meta)
        if final.exists():
            shutil.rmtree(final)
        os.replace(partial, final)
        progress(done, done, "cached")
        return cls.open(final)

    @classmethod
    def open(cls, path: str | Path) -> "FrameCache":
        """Open a built cache folder; ``InputError`` when it is missing or incomplete."""
        path = Path(path)
        meta_path = path / "meta.json"
        if not meta_path.exists():
            raise InputError(path, "not a frame cache (no meta.json; an unfinished build leaves a .partial folder)")
        try:
            meta = json.loads(meta_path.read_text())
            int(meta["n_frames"]) * int(meta["height"]) * int(meta["width"])
        except (OSError, ValueError, KeyError, TypeError):
            raise InputError(meta_path, "unreadable frame cache metadata; rebuild it") from None
        if meta.get("format_version") != FORMAT_VERSION:
            raise InputError(
                path,
                f"frame cache format {meta.get('format_version')} (this sonotell reads {FORMAT_VERSION}); rebuild it",
            )
        expected = meta["n_frames"] * meta["height"] * meta["width"]
        actual = (path / "frames.u8").stat().st_size if (path / "frames.u8").exists() else -1
        if actual != expected:
            raise InputError(path / "frames.u8", f"frame cache is {actual} bytes, expected {expected}; rebuild it")
        return cls(path, meta)

    # ----------------------------------------------------------------- reading
    @property
    def fps(self) -> float:
        return float(self.meta["fps"])

    @property
    def n_frames(self) -> int:
        return int(self.meta["n_frames"])

    @property
    def size(self) -> tuple[int, int]:
        return int(self.meta["height"]), int(self.meta["width"])

    @property
    def roi(self) -> Roi | None:
        roi = self.meta.get("roi")
        return None if roi is None else tuple(roi)

    @property
    def audio_rate_hz(self) -> int | None:
        return self.meta.get("audio_rate_hz")

    @property
    def audio_offset_s(self) -> float:
        return float(self.meta.get("audio_offset_s") or 0.0)

    def __len__(self) -> int:
        return self.n_frames

    def _frame_times(self) -> np.ndarray | None:
        if not self.meta.get("variable_frame_rate"):
            return None
        if getattr(self, "_times", None) is None:
            self._times = np.load(self.root / "times.npy", allow_pickle=False)
        return self._times

    def time_of(self, index: int) -> float:
        """Video-clock time of frame ``index`` (its presentation time for a variable frame rate)."""
        times = self._frame_times()
        return float(times[index]) if times is not None else index / self.fps

    def index_at(self, t: float) -> int:
        """The frame shown at time ``t`` (clamped to the scan): the last frame presented at or before ``t``."""
        times = self._frame_times()
        i = int(np.searchsorted(times, t, side="right")) - 1 if times is not None else int(np.floor(t * self.fps))
        return min(max(i, 0), self.n_frames - 1)

    @property
    def duration_s(self) -> float:
        times = self._frame_times()
        return (
            float(times[-1] + np.median(np.diff(times)))
            if times is not None and len(times) > 1
            else self.n_frames / self.fps
        )

    def _array(self) -> np.memmap:
        # Opened lazily so a cache can be pickled into DataLoader workers before first use.
        if self._frames is None:
            self._frames = np.memmap(self.root / "frames.u8", np.uint8, "r", shape=(self.n_frames, *self.size))
        return self._frames

    def frames(self, start: int, stop: int, stride: int = 1) -> np.ndarray:
        """Frames ``start:stop:stride`` as a (T, H, W) uint8 array (a copy, safe to modify)."""
        return np.array(self._array()[start:stop:stride])

    def take(self, indices: np.ndarray | list[int]) -> np.ndarray:
        """Frames at arbitrary indices (clamped to the scan) as (T, H, W) uint8."""
        idx = np.clip(np.asarray(indices, dtype=np.int64), 0, self.n_frames - 1)
        return np.array(self._array()[idx])

    def audio(self) -> np.ndarray:
        """The cached audio (memory-mapped float32 at ``audio_rate_hz``)."""
        if self.audio_rate_hz is None:
            raise InputError(self.root, "this frame cache holds no audio")
        if self._audio is None:
            self._audio = np.load(self.root / f"audio_{self.audio_rate_hz}.npy", mmap_mode="r")
        return self._audio

    def __getstate__(self) -> dict:
        return {"root": self.root, "meta": self.meta}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["root"], state["meta"])


@contextlib.contextmanager
def _exclusive(lock_path: Path):
    """An advisory lock (fcntl; released by the OS if the holder dies); a no-op without fcntl."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    with open(lock_path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _signature(scan: Scan, size, roi_request, audio_rate_hz) -> dict:
    def stat(p: Path | None) -> list | None:
        if p is None:
            return None
        try:
            st = Path(p).stat()
        except OSError:
            raise InputError(p, "file not found") from None
        return [str(Path(p).resolve()), st.st_size, st.st_mtime_ns]

    return {
        "version": FORMAT_VERSION,
        "video": stat(scan.video_path),
        "audio": stat(scan.audio_path),
        "audio_offset_s": scan.audio_offset_s,
        "size": None if size is None else [int(size[0]), int(size[1])],
        "roi_request": roi_request,
        "audio_rate_hz": audio_rate_hz,
    }


def _choose_roi(scan: Scan, roi, params: CropParams) -> tuple[list | None, list]:
    """The ROI to crop with and the source (width, height)."""
    if isinstance(roi, str) and roi != "auto":
        raise ValueError(f"roi must be 'auto', None or (x0, y0, x1, y1), not {roi!r}")
    if roi == "auto" and scan.roi is None:
        frames, _ = sample_frames(scan.video_path, params.n_samples)
        width, height = frames.shape[2], frames.shape[1]
        found = detect_roi(frames, params)
        log.info("%s: detected ROI %s", scan.video_path, found)
        return (None if found is None else list(found)), [width, height]
    from sonotell.io.video import probe_video

    if scan.width and scan.height:
        width, height = scan.width, scan.height
    else:
        info = probe_video(scan.video_path)
        width, height = info.width, info.height
    manual = scan.roi if roi == "auto" else roi
    if manual is None:
        return None, [width, height]
    return list(check_roi(tuple(manual), width, height, scan.video_path)), [width, height]


def _decode_frames(scan, folder: Path, roi, size, state: dict, state_path: Path, n_total: int, progress: Progress):
    """Append decoded, cropped, resized frames to ``frames.u8``, resuming after ``state['frames_done']``."""
    from sonotell.io.video import _resize, iter_frames

    data_path = folder / "frames.u8"
    done = int(state.get("frames_done", 0))
    out_hw = tuple(state["out_hw"]) if "out_hw" in state else None
    if out_hw is None:
        done = 0
    # Drop every byte written after the last checkpoint (all of them when none was reached):
    # appending after a killed build's leftovers would corrupt the cache for good.
    with open(data_path, "r+b" if data_path.exists() else "wb") as f:
        f.truncate(done * out_hw[0] * out_hw[1] if out_hw is not None else 0)
    if done:
        log.info("%s: resuming after %d cached frames", scan.video_path, done)
    n = 0
    with open(data_path, "ab") as f:
        for n, frame in enumerate(iter_frames(scan.video_path), start=1):
            if n <= done:
                continue
            small = _resize(np.ascontiguousarray(crop(frame, roi)), size)
            if out_hw is None:
                out_hw = small.shape
                state["out_hw"] = list(out_hw)
            f.write(small.tobytes())
            if n % _CHECKPOINT_EVERY == 0:
                f.flush()
                os.fsync(f.fileno())
                state["frames_done"] = n
                write_json(state_path, state)
                progress(n, max(n_total, n), "decoding")
    if out_hw is None:
        raise InputError(scan.video_path, "video has no frames")
    return max(n, done), out_hw


def _probe_fps(path: Path) -> float:
    """Frame rate from the container header (no decoding); DICOM through the full probe."""
    from sonotell.io.video import is_dicom, probe_video

    if not is_dicom(Path(path)):
        import av

        try:
            with av.open(str(path)) as c:
                vs = c.streams.video[0]
                fps = float(vs.average_rate or vs.guessed_rate or 0)
            if fps > 0:
                return fps
        except Exception:  # fall through to the full probe, which names the problem
            pass
    return probe_video(path).fps

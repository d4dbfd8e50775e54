"""Ingest a folder of narrated scans: discover, probe and validate every file, write a manifest.

A scan is a video (mp4/avi/mov/mpeg/gif/mkv/webm via PyAV, DICOM cine via pydicom) with its
speech: a ``.wav``/``.flac``/``.ogg`` with the same stem beside it, else the video's own
audio track. Subject ids and audio offsets come from an optional sidecar table
(``metadata.csv`` / ``metadata.json`` in the folder, or ``metadata=``); see docs/ingest.md.

Every video is decoded once to count its frames (container counts lie) and, unless
``detect_crop=False``, to sample frames for the sector ROI. A bad file never stops the run:
it is reported as one ``InputError`` line and the good scans go into the manifest. The run is
resumable: a state file beside the manifest remembers each file's result with the file's
size and mtime, and unchanged files are not probed again.

Example:
    >>> result = ingest("scans/", "scans/manifest.csv")  # doctest: +SKIP
    >>> len(result.scans), [str(e) for e in result.problems]  # doctest: +SKIP
    (12, ['scans/broken.mp4: corrupt or unreadable video (...)'])
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sonotell.engine import Engine, EngineSpec, open_engine
from sonotell.errors import InputError, OutputError
from sonotell.files import refuse_overwriting_inputs, write_json
from sonotell.io.audio import load_audio
from sonotell.io.crop import CropParams, check_roi, detect_roi, sample_frames
from sonotell.io.manifest import parse_roi, scan_id_problem, write_manifest
from sonotell.io.video import DICOM_SUFFIXES, VIDEO_SUFFIXES, is_dicom, probe_video
from sonotell.progress import Progress, silent
from sonotell.types import Scan

log = logging.getLogger(__name__)

SPEECH_SUFFIXES = (".wav", ".flac", ".ogg")
SIDECAR_NAMES = ("metadata.csv", "metadata.json")
STATE_VERSION = 1


@dataclass(frozen=True)
class IngestOptions:
    """What counts as a valid scan.

    ``max_duration_mismatch``: audio may end up to this fraction of the video's duration
    (and at least ``min_mismatch_s``) before or after the video does.
    """

    detect_crop: bool = True
    crop: CropParams = CropParams()
    max_duration_mismatch: float = 0.5
    min_mismatch_s: float = 1.0
    video_only: bool = False  # scans without speech are valid (for `predict` and self-supervised video work)


@dataclass
class IngestResult:
    manifest_path: Path
    scans: list[Scan]
    problems: list[InputError] = field(default_factory=list)
    reused: int = 0  # files skipped because an earlier run validated them unchanged


MANIFEST_NAME = "manifest.csv"


def manifest_path(out: str | Path) -> Path:
    """The manifest file an ``--out`` names: a folder (an existing one, or a new path without a suffix)
    gets ``<folder>/manifest.csv``; any other path is the manifest file itself.

    Example:
        >>> manifest_path("new_folder")
        PosixPath('new_folder/manifest.csv')
    """
    out = Path(out)
    if out.is_dir() or (not out.exists() and not out.suffix):
        return out / MANIFEST_NAME
    return out


def discover(root: str | Path) -> list[tuple[Path, Path | None]]:
    """Videos under ``root``, each with the speech file beside it or None.

    Hidden folders and hidden videos (a name starting with ``.``: macOS ``._x.mp4`` resource forks,
    editors' temporary files) are skipped; the hidden videos skipped are named in a warning, so a scan
    that really is called ``.x.mp4`` is not lost without a word.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "not a folder")
    suffixes = VIDEO_SUFFIXES | DICOM_SUFFIXES
    found, hidden = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if p.suffix.lower() not in suffixes:
                continue
            if name.startswith("."):
                hidden.append(p)
                continue
            speech = next((p.with_suffix(s) for s in SPEECH_SUFFIXES if p.with_suffix(s).exists()), None)
            found.append((p, speech))
    if hidden:
        names = ", ".join(str(p.relative_to(root)) for p in hidden[:10]) + (" ..." if len(hidden) > 10 else "")
        log.warning(
            "%s: skipped %d hidden video file(s) (name starting with '.'): %s; rename one to include it",
            root,
            len(hidden),
            names,
        )
    return found


def read_sidecar(path: str | Path) -> dict[str, dict]:
    """Per-video metadata keyed by file name, relative path and stem (CSV or JSON).

    Columns/keys: ``file`` (or ``video``/``filename``/``video_path``), then any of ``scan_id``,
    ``subject_id``, ``audio_offset_s``, ``roi`` (``x0,y0,x1,y1``), ``audio_path``.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "metadata file not found")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text())
            rows = [dict(v, file=k) for k, v in data.items()] if isinstance(data, dict) else list(data)
        else:
            import pandas as pd

            rows = pd.read_csv(path, dtype=str, keep_default_na=False).to_dict("records")
    except Exception as e:
        raise InputError(path, f"unreadable metadata ({e.__class__.__name__}: {e})") from None
    out: dict[str, dict] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InputError(path, f"entry {i + 1} is not a record of fields (got {type(row).__name__})")
        key = next(
            (str(row[k]).strip() for k in ("file", "video", "filename", "video_path") if str(row.get(k, "")).strip()),
            "",
        )
        if not key:
            raise InputError(path, f"entry {i + 1} names no file (column file / video / filename / video_path)")
        clean = {
            k: row[k]
            for k in ("scan_id", "subject_id", "audio_offset_s", "roi", "audio_path")
            if k in row and str(row[k]).strip() != ""
        }
        if "audio_offset_s" in clean:
            try:
                clean["audio_offset_s"] = float(clean["audio_offset_s"])
            except ValueError:
                raise InputError(
                    path, f"entry {i + 1}: audio_offset_s {clean['audio_offset_s']!r} is not a number"
                ) from None
        if "roi" in clean:
            clean["roi"] = list(parse_roi(clean["roi"], f"{path} entry {i + 1}"))
        out[key] = clean
    return out


def probe_scan(
    video: str | Path,
    audio: str | Path | None,
    scan_id: str,
    subject_id: str,
    audio_offset_s: float = 0.0,
    roi: tuple | None = None,
    options: IngestOptions = IngestOptions(),
) -> Scan:
    """Decode and check one scan; return it with every probed field, or raise ``InputError``."""
    video = Path(video)
    fps, has_audio = _header(video)
    if options.detect_crop and roi is None:
        frames, n_frames = sample_frames(video, options.crop.n_samples)
        height, width = frames.shape[1:]
        found = detect_roi(frames, options.crop)
        roi = found
    else:
        info = probe_video(video)
        n_frames, width, height, fps, has_audio = info.n_frames, info.width, info.height, info.fps, info.has_audio
        if roi is not None:
            roi = check_roi(tuple(roi), width, height, video)
    if not fps or fps <= 0:
        raise InputError(video, "video has no frame rate")
    if options.video_only and audio is None and not has_audio:
        return Scan(
            scan_id,
            subject_id,
            video,
            None,
            float(audio_offset_s),
            float(fps),
            int(n_frames),
            int(width),
            int(height),
            None,
            None,
            None if roi is None else tuple(int(v) for v in roi),
        )
    if audio is None and not has_audio:
        raise InputError(
            video, f"no speech: no {'/'.join(SPEECH_SUFFIXES)} file beside it and no audio track in the video"
        )
    audio_path = None if audio is None else Path(audio)
    wav, sr = load_audio(audio_path if audio_path is not None else video)
    audio_s = len(wav) / sr
    video_s = n_frames / fps
    slack = max(options.min_mismatch_s, options.max_duration_mismatch * video_s)
    audio_end = audio_offset_s + audio_s
    if audio_end < video_s - slack:
        raise InputError(
            audio_path or video,
            f"audio much shorter than the video: it ends at {audio_end:.1f} s, the video lasts {video_s:.1f} s",
        )
    if audio_end > video_s + slack or audio_offset_s < -slack:
        raise InputError(
            audio_path or video,
            f"audio much longer than the video: it spans {audio_offset_s:.1f}-{audio_end:.1f} s, "
            f"the video lasts {video_s:.1f} s",
        )
    return Scan(
        scan_id,
        subject_id,
        video,
        audio_path,
        float(audio_offset_s),
        float(fps),
        int(n_frames),
        int(width),
        int(height),
        int(sr),
        float(audio_s),
        None if roi is None else tuple(int(v) for v in roi),
    )


def ingest(
    root: str | Path,
    out: str | Path,
    *,
    metadata: str | Path | None = None,
    options: IngestOptions = IngestOptions(),
    engine: "str | EngineSpec" = "local",
    workers: int = 2,
    resume: bool = True,
    progress: Progress = silent,
) -> IngestResult:
    """Build ``out`` (manifest CSV) from the scans under ``root``; bad files are reported, not fatal.

    Args:
        root: folder to search (recursively) for videos.
        out: manifest path, or a folder to hold ``manifest.csv`` (see ``manifest_path``); the state
            file ``<manifest>.state.json`` beside it makes reruns incremental.
        metadata: sidecar CSV/JSON; default ``root/metadata.csv`` or ``.json`` when present.
        engine: ``"local"`` (a process pool of ``workers``), ``"ray"`` (needs ``sonotell[ray]``;
            joins a running cluster via ``RAY_ADDRESS`` or starts a local one), or an ``EngineSpec``.
        resume: reuse results of files unchanged since the last run.
    """
    spec = engine if isinstance(engine, EngineSpec) else EngineSpec(engine, workers=workers)
    with open_engine(spec) as runner:  # an engine that cannot run fails here, before anything is written
        return _ingest(runner, Path(root), manifest_path(out), metadata, options, resume, progress)


def _ingest(
    runner: Engine, root: Path, out: Path, metadata, options: IngestOptions, resume: bool, progress: Progress
) -> IngestResult:
    if metadata is None:
        metadata = next((root / n for n in SIDECAR_NAMES if (root / n).exists()), None)
    sidecar = read_sidecar(metadata) if metadata is not None else {}
    found = discover(root)
    jobs, problems = _plan(root, found, sidecar, options)
    state_path = out.with_name(out.name + ".state.json")
    media = [p for video, speech in found for p in (video, speech) if p is not None]
    refuse_overwriting_inputs([out, state_path], [root, metadata, *media])
    state = _load_state(state_path, options) if resume else {}
    done: dict[str, dict] = {}
    todo = []
    for job in jobs:
        prev = state.get(job["key"])
        if prev is not None and prev.get("signature") == job["signature"]:
            done[job["key"]] = prev
        else:
            todo.append(job)
    reused = len(done)
    total = len(jobs)
    progress(reused, total, f"{reused} unchanged")

    def record(job: dict, result: dict) -> None:
        done[job["key"]] = dict(result, signature=job["signature"])
        progress(len(done), total, Path(job["video"]).name)
        if len(done) % 10 == 0:
            _save_state(state_path, done, options)

    for job, result, error in runner.map(_probe_job, todo, setup=_same, setup_args=(options,)):
        record(job, result if error is None else {"error": f"cannot read ({error})", "error_path": job["video"]})
    _save_state(state_path, done, options)

    scans = []
    for job in jobs:
        result = done[job["key"]]
        if "error" in result:
            problems.append(InputError(result["error_path"], result["error"]))
        else:
            scans.append(_scan_from_dict(result["scan"]))
    scans, dup_problems = _drop_duplicate_ids(scans)
    problems.extend(dup_problems)
    scans.sort(key=lambda s: s.scan_id)
    write_manifest(out, scans)
    log.info("ingest: %d scans, %d problems, %d reused", len(scans), len(problems), reused)
    return IngestResult(out, scans, problems, reused)


def build_caches(
    scans: list[Scan],
    cache_dir: str | Path,
    *,
    size: tuple[int, int] | None = (128, 128),
    audio_rate_hz: int | None = 16000,
    engine: "str | EngineSpec" = "local",
    workers: int = 2,
    progress: Progress = silent,
) -> list[InputError]:
    """Decode every scan into a frame cache under ``cache_dir``, one engine task per scan; returns the failures.

    Each task builds (or finds up to date) its scan's cache folder itself, so caches built by
    Ray on a shared filesystem are the inputs of a multi-node training run.
    """
    spec = engine if isinstance(engine, EngineSpec) else EngineSpec(engine, workers=workers)
    problems: list[InputError] = []
    unwritable: list[OutputError] = []
    with open_engine(spec) as runner:
        progress(0, len(scans), "")
        cache_dir = str(Path(cache_dir).absolute())
        outcomes = runner.map(_cache_one, scans, setup=_same, setup_args=((cache_dir, size, audio_rate_hz),))
        for i, (scan, result, error) in enumerate(outcomes):
            if error is not None:  # an InputError's line already names its file
                named = error.startswith("/")
                problems.append(InputError(None, error) if named else InputError(scan.video_path, error))
            elif "unwritable" in result:
                unwritable.append(OutputError(*result["unwritable"]))
            progress(i + 1, len(scans), scan.scan_id)
    if unwritable:  # a full disk is not one bad scan: the run fails (finished cache entries stay whole)
        raise unwritable[0]
    return problems


def _cache_one(scan: Scan, settings: tuple) -> dict:
    """One engine task: ``{"root": folder}``, or ``{"unwritable": (path, problem)}`` when the cache cannot be
    written (full disk): returned, not raised, so the caller can tell it from a bad scan across processes."""
    from sonotell.io.cache import FrameCache

    cache_dir, size, audio_rate_hz = settings
    rate = audio_rate_hz if scan.audio_sample_rate_hz else None  # a video-only scan has no audio to cache
    try:
        return {"root": str(FrameCache.build(scan, cache_dir, size=size, audio_rate_hz=rate).root)}
    except OutputError as e:
        return {"unwritable": (e.path, e.problem)}


def _plan(
    root: Path, found: list[tuple[Path, Path | None]], sidecar: dict[str, dict], options: IngestOptions
) -> tuple[list[dict], list[InputError]]:
    stems = [v.stem for v, _ in found]
    jobs, problems = [], []
    no_subject = 0
    used: set[str | None] = set()
    for video, speech in found:
        rel = video.relative_to(root).as_posix()
        key = next((k for k in (rel, video.name, video.stem) if k in sidecar), None)
        meta = sidecar[key] if key is not None else {}
        used.add(key)
        default_id = video.stem if stems.count(video.stem) == 1 else rel.rsplit(".", 1)[0].replace("/", "__")
        scan_id = str(meta.get("scan_id", default_id))
        problem = scan_id_problem(scan_id)
        if problem is not None:  # it would name files outside --out / --cache
            problems.append(InputError(video, f"scan_id {scan_id!r} refused: it {problem}"))
            continue
        if "audio_path" in meta:
            speech = (
                (root / meta["audio_path"]) if not Path(meta["audio_path"]).is_absolute() else Path(meta["audio_path"])
            )
            if not speech.exists():
                problems.append(InputError(speech, f"audio named in the metadata for {rel} not found"))
                continue
        subject_id = str(meta.get("subject_id", "")) or scan_id
        no_subject += "subject_id" not in meta
        job = {
            "key": str(video.resolve()),
            "video": str(video),
            "audio": None if speech is None else str(speech),
            "scan_id": scan_id,
            "subject_id": subject_id,
            "audio_offset_s": float(meta.get("audio_offset_s", 0.0)),
            "roi": meta.get("roi"),
        }
        job["signature"] = [_stat(video), _stat(speech), scan_id, subject_id, job["audio_offset_s"], job["roi"]]
        jobs.append(job)
    unmatched = sorted(set(sidecar) - used)
    if unmatched:
        log.warning("metadata entries match no video under %s: %s", root, ", ".join(unmatched[:10]))
    if no_subject:
        log.warning(
            "%d of %d videos have no subject_id in the metadata; each is treated as its own subject",
            no_subject,
            len(found),
        )
    return jobs, problems


def _same(options: IngestOptions) -> IngestOptions:
    """The per-worker state of a probe task: just the options."""
    return options


def _probe_job(job: dict, options: IngestOptions) -> dict:
    """One engine task (a local process or a Ray task): a scan dict or an error dict."""
    try:
        scan = probe_scan(
            job["video"], job["audio"], job["scan_id"], job["subject_id"], job["audio_offset_s"], job["roi"], options
        )
    except InputError as e:
        return {"error": e.problem, "error_path": e.path}
    except Exception as e:  # an unexpected decoder failure is still one bad file, not a crash
        return {"error": f"cannot read ({e.__class__.__name__}: {e})", "error_path": job["video"]}
    d = asdict(scan)
    d["video_path"], d["audio_path"] = str(scan.video_path), None if scan.audio_path is None else str(scan.audio_path)
    return {"scan": d}


def _drop_duplicate_ids(scans: list[Scan]) -> tuple[list[Scan], list[InputError]]:
    seen: dict[str, Scan] = {}
    problems = []
    for s in scans:
        if s.scan_id in seen:
            problems.append(
                InputError(
                    s.video_path, f"duplicate scan id {s.scan_id!r} (also {seen[s.scan_id].video_path}); skipped"
                )
            )
        else:
            seen[s.scan_id] = s
    return list(seen.values()), problems


def _scan_from_dict(d: dict) -> Scan:
    d = dict(d)
    d["video_path"] = Path(d["video_path"])
    d["audio_path"] = None if d["audio_path"] is None else Path(d["audio_path"])
    d["roi"] = None if d["roi"] is None else tuple(d["roi"])
    return Scan(**d)


def _stat(p: Path | None) -> list | None:
    if p is None:
        return None
    try:
        st = Path(p).stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _options_key(options: IngestOptions) -> Any:
    return json.loads(json.dumps(asdict(options)))


def _load_state(path: Path, options: IngestOptions) -> dict:
    if not path.exists():
        return {}
    try:
        state = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        log.warning("%s: unreadable ingest state; probing everything again", path)
        return {}
    if state.get("version") != STATE_VERSION or state.get("options") != _options_key(options):
        return {}
    return state.get("files", {})


def _save_state(path: Path, done: dict, options: IngestOptions) -> None:
    write_json(path, {"version": STATE_VERSION, "options": _options_key(options), "files": done})


def _finite(x: float) -> bool:
    return not (math.isnan(x) or math.isinf(x))


def _header(video: Path) -> tuple[float, bool]:
    """Frame rate and audio presence from the container header (DICOM: via the full probe)."""
    if is_dicom(video):
        return probe_video(video).fps, False
    if not video.exists():
        raise InputError(video, "video file not found")
    if video.stat().st_size == 0:
        raise InputError(video, "video file is empty (0 bytes)")
    import av

    try:
        with av.open(str(video)) as c:
            if not c.streams.video:
                raise InputError(video, "no video stream")
            vs = c.streams.video[0]
            fps = float(vs.average_rate or vs.guessed_rate or 0)
            return (fps if _finite(fps) else 0.0), bool(c.streams.audio)
    except InputError:
        raise
    except Exception as e:
        raise InputError(video, f"corrupt or unreadable video ({e.__class__.__name__}: {e})") from None

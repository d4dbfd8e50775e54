"""The review web app: a FastAPI server over one labels folder, its manifest's media, and the review files.

Only three kinds of file are ever read for a request: the package's own static files, the label files
of the folder's scans (by scan id, never by a path from the request) and the video/audio files the
manifest names for a scan. Every change is one event's decision, written at once and atomically to
``<scan_id>.review.json``; concurrent edits of different events never lose each other (each request
re-reads the file under a lock and changes one event), and a client that sends the ``rev`` it saw
gets a 409 when another tab changed that event meanwhile.

Example:
    >>> app = create_app("labels/", manifest="scans/manifest.csv")  # doctest: +SKIP
    >>> uvicorn.run(app, host="127.0.0.1", port=0)  # doctest: +SKIP
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from sonotell import labels as labels_io
from sonotell.errors import InputError, SonotellError
from sonotell.review.store import (
    LabelsFolder,
    conflicting,
    event_ids,
    frame_timing,
    load_review,
    now_iso,
    review_path,
    reviewed_events,
    save_review,
    scan_lock,
)

log = logging.getLogger(__name__)
MAX_PAGE = 2000
MEDIA_TYPES = {
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".ogg": "video/ogg",
    ".ogv": "video/ogg",
    ".mov": "video/quicktime",
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".flac": "audio/flac",
    ".m4a": "audio/mp4",
    ".opus": "audio/ogg",
}
STATIC_FILES = {
    "": ("index.html", "text/html; charset=utf-8"),
    "app.js": ("app.js", "text/javascript; charset=utf-8"),
    "app.css": ("app.css", "text/css; charset=utf-8"),
}
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class EventBody(BaseModel):
    """A decision about one event (``PUT``) or a new event (``POST``)."""

    model_config = ConfigDict(extra="forbid")
    status: Literal["accepted", "edited", "rejected", "added"] = "edited"
    label: str | None = Field(default=None, max_length=200)
    start_s: float | None = None
    end_s: float | None = None
    negated: bool | None = None
    rev: int | None = None  # the event's rev the client saw; a mismatch is a 409


class ReviewedBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reviewed: bool


class ReviewState:
    """What the server knows: the folder, the scans' media and timing, the lexicon's labels."""

    def __init__(
        self,
        labels_dir: str | Path,
        manifest: str | Path | None = None,
        lexicon: str | None = None,
        reviewer: str = "reviewer",
    ):
        from sonotell.io.manifest import read_manifest
        from sonotell.speech.lexicon import load_lexicon

        self.folder = LabelsFolder.open(labels_dir)
        self.reviewer = reviewer
        manifest = manifest or self.folder.summary.get("manifest") or _default_manifest(self.folder.path)
        self.scans = {}
        if manifest is not None:
            for s in read_manifest(manifest, check_files=False).scans:
                self.scans[s.scan_id] = s
        name = lexicon or self.folder.lexicon_name
        if not name:
            raise InputError(self.folder.path / labels_io.SUMMARY_JSON, "no lexicon named; pass --lexicon")
        self.labels = load_lexicon(name).labels
        self._waveforms: dict[tuple[str, int], dict] = {}
        self._list_cache: dict[str, tuple[float, dict]] = {}
        self._docs: dict[str, tuple[int, dict]] = {}
        self._listings: dict[str, tuple[tuple[int, int], list[dict]]] = {}

    def doc(self, scan_id: str) -> dict:
        """The scan's label file, parsed once per change of the file (an hour of words is megabytes of JSON)."""
        if scan_id not in self.folder.scan_ids:
            raise HTTPException(404, f"no scan {scan_id!r} in this labels folder")
        stamp = labels_io.doc_path(self.folder.path, scan_id).stat().st_mtime_ns
        hit = self._docs.get(scan_id)
        if hit is None or hit[0] != stamp:
            hit = self._docs[scan_id] = (stamp, self.folder.scan_doc(scan_id))
        return hit[1]

    def listing(self, scan_id: str) -> list[dict]:
        """The scan's events as the page lists them (rejected ones too), cached until a label or review file changes."""
        doc = self.doc(scan_id)
        path = review_path(self.folder.path, scan_id)
        stamp = (self._docs[scan_id][0], path.stat().st_mtime_ns if path.exists() else 0)
        hit = self._listings.get(scan_id)
        if hit is None or hit[0] != stamp:
            review = load_review(self.folder.path, scan_id)
            evs = reviewed_events(doc["events"], review, keep_rejected=True)
            for e in evs:
                d = review["decisions"].get(e["id"]) or {}
                e.update(rev=d.get("rev", 0), by=d.get("by"), base=d.get("base"))
            hit = self._listings[scan_id] = (stamp, evs)
        return hit[1]

    def timing(self, scan_id: str, doc: dict) -> tuple[float, int, float]:
        scan = self.scans.get(scan_id)
        if scan is not None and scan.fps and scan.n_frames:
            return scan.fps, scan.n_frames, scan.n_frames / scan.fps
        fps, n = frame_timing(doc, lambda: self.folder.frames(scan_id))
        duration = n / fps
        info_duration = (doc.get("info") or {}).get("duration_s")
        if info_duration:
            duration = max(duration, float(info_duration))
        return fps, n, duration

    def media_path(self, scan_id: str, kind: str) -> Path | None:
        scan = self.scans.get(scan_id)
        if scan is None or scan_id not in self.folder.scan_ids:
            return None
        path = scan.video_path if kind == "video" else scan.audio_path
        if path is None or not path.is_file():
            return None
        return path

    def scan_row(self, scan_id: str) -> dict:
        """One line of the scan list (cached until the label or review file changes)."""
        paths = [labels_io.doc_path(self.folder.path, scan_id), review_path(self.folder.path, scan_id)]
        stamp = sum(p.stat().st_mtime_ns for p in paths if p.exists())
        hit = self._list_cache.get(scan_id)
        if hit and hit[0] == stamp:
            return hit[1]
        doc = self.doc(scan_id)
        review = load_review(self.folder.path, scan_id)
        evs = doc["events"]
        confs = [float(e.get("confidence", 1.0)) for e in evs]
        row = {
            "scan_id": scan_id,
            "subject_id": doc.get("subject_id", scan_id),
            "n_events": len(evs),
            "n_negated": sum(bool(e.get("negated")) for e in evs),
            "min_confidence": min(confs) if confs else None,
            "mean_confidence": float(np.mean(confs)) if confs else None,
            "conflict": conflicting(evs),
            "n_decisions": len(review["decisions"]),
            "reviewed": bool(review.get("reviewed")),
            "reviewed_by": review.get("reviewed_by"),
        }
        self._list_cache[scan_id] = (stamp, row)
        return row

    def waveform(self, scan_id: str, bins: int) -> dict:
        """Peak envelope of the scan's audio in ``bins`` columns over the video clock (for the strip)."""
        key = (scan_id, bins)
        if key not in self._waveforms:
            from sonotell.io.audio import load_audio

            doc = self.doc(scan_id)
            _, _, duration = self.timing(scan_id, doc)
            scan = self.scans.get(scan_id)
            peaks = np.zeros(bins, np.float32)
            if scan is not None:
                try:
                    wav, sr = load_audio(scan.audio_source, 8000, allow_silent=True)
                except SonotellError:
                    wav, sr = np.zeros(0, np.float32), 8000
                t = np.arange(len(wav)) / sr + scan.audio_offset_s
                col = np.clip((t / max(duration, 1e-6) * bins).astype(np.int64), 0, bins - 1)
                np.maximum.at(peaks, col, np.abs(wav))
                top = float(peaks.max()) or 1.0
                peaks = peaks / top
            self._waveforms[key] = {"duration_s": duration, "peaks": [round(float(p), 3) for p in peaks]}
        return self._waveforms[key]


def _default_manifest(folder: Path) -> Path | None:
    for p in (folder / "manifest.csv", folder.parent / "manifest.csv"):
        if p.is_file():
            return p
    return None


def create_app(
    labels_dir: str | Path,
    manifest: str | Path | None = None,
    *,
    lexicon: str | None = None,
    reviewer: str = "reviewer",
    token: str | None = None,
    allowed_hosts: tuple[str, ...] = LOOPBACK,
) -> FastAPI:
    """The review app over ``labels_dir``. With ``token``, every request must carry it (``?token=`` or cookie)."""
    state = ReviewState(labels_dir, manifest, lexicon, reviewer)
    app = FastAPI(title="sonotell review", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.review = state

    @app.middleware("http")
    async def guard(request: Request, call_next):
        # A page on another site must not drive this server: check the Host (DNS rebinding) and the token.
        host = (request.headers.get("host") or "").rsplit(":", 1)[0].strip("[]")
        if allowed_hosts and host not in allowed_hosts:
            return JSONResponse({"detail": f"host {host!r} not allowed"}, status_code=403)
        if token is not None:
            given = request.query_params.get("token") or request.cookies.get("sonotell_review_token") or ""
            if not hmac.compare_digest(given.encode(), token.encode()):
                return JSONResponse(
                    {"detail": "missing or wrong token: open the URL the server printed"}, status_code=403
                )
        if request.method in ("POST", "PUT") and "application/json" not in request.headers.get("content-type", ""):
            return JSONResponse({"detail": "send JSON (Content-Type: application/json)"}, status_code=415)
        response = await call_next(request)
        if token is not None and request.query_params.get("token"):
            response.set_cookie("sonotell_review_token", token, httponly=True, samesite="strict")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Content-Security-Policy"] = "default-src 'self'; img-src 'self' data:; media-src 'self'"
        return response

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        msgs = "; ".join(
            f"{'.'.join(str(x) for x in e.get('loc', ())[1:]) or 'body'}: {e.get('msg')}" for e in exc.errors()
        )
        return JSONResponse({"detail": msgs or "bad request"}, status_code=422)

    @app.exception_handler(SonotellError)
    async def input_error(request: Request, exc: SonotellError):
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception):
        log.exception("review app: %s %s failed", request.method, request.url.path)
        return JSONResponse(
            {"detail": f"internal error ({exc.__class__.__name__}); see the server log"}, status_code=500
        )

    @app.get("/")
    def index() -> Response:
        return _static("")

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC_FILES or not name:
            raise HTTPException(404, "not found")
        return _static(name)

    @app.get("/api/meta")
    def meta() -> dict:
        return {"labels": state.labels, "reviewer": state.reviewer, "folder": state.folder.path.name}

    @app.get("/api/scans")
    def scans() -> dict:
        rows = [state.scan_row(s) for s in state.folder.scan_ids]
        # Need of review: unreviewed first, then scans with conflicting or negated labels, then lowest confidence.
        rows.sort(
            key=lambda r: (
                r["reviewed"],
                not (r["conflict"] or r["n_negated"]),
                r["min_confidence"] if r["min_confidence"] is not None else 2.0,
                r["scan_id"],
            )
        )
        return {"scans": rows, "progress": {"reviewed": sum(r["reviewed"] for r in rows), "total": len(rows)}}

    @app.get("/api/scans/{scan_id}")
    def scan(scan_id: str) -> Response:
        doc = state.doc(scan_id)
        fps, n, duration = state.timing(scan_id, doc)
        review = load_review(state.folder.path, scan_id)
        events = state.listing(scan_id)
        ms = state.scans.get(scan_id)
        return _json(
            {
                "scan_id": scan_id,
                "subject_id": doc.get("subject_id"),
                "fps": fps,
                "n_frames": n,
                "duration_s": duration,
                "n_events": len(events),
                "n_words": len(doc.get("words", [])),
                "reviewed": bool(review.get("reviewed")),
                "reviewed_by": review.get("reviewed_by"),
                "reviewed_at": review.get("reviewed_at"),
                "video": state.media_path(scan_id, "video") is not None,
                "audio": state.media_path(scan_id, "audio") is not None,
                "audio_offset_s": ms.audio_offset_s if ms else 0.0,
                "labels": state.labels,
                "orphans": sum(bool(e.get("orphan")) for e in events),
            }
        )

    @app.get("/api/scans/{scan_id}/events")
    def events(scan_id: str, offset: int = Query(0, ge=0), limit: int = Query(500, ge=1, le=MAX_PAGE)) -> Response:
        evs = state.listing(scan_id)
        return _json({"total": len(evs), "offset": offset, "events": evs[offset : offset + limit]})

    @app.get("/api/scans/{scan_id}/words")
    def words(scan_id: str, offset: int = Query(0, ge=0), limit: int = Query(1000, ge=1, le=MAX_PAGE * 5)) -> Response:
        ws = state.doc(scan_id).get("words", [])
        return _json({"total": len(ws), "offset": offset, "words": ws[offset : offset + limit]})

    @app.get("/api/scans/{scan_id}/waveform")
    def waveform(scan_id: str, bins: int = Query(1000, ge=10, le=20000)) -> dict:
        state.doc(scan_id)
        return state.waveform(scan_id, bins)

    @app.put("/api/scans/{scan_id}/events/{eid}")
    def decide(scan_id: str, eid: str, body: EventBody) -> dict:
        return _change(scan_id, eid, body)

    @app.post("/api/scans/{scan_id}/events", status_code=201)
    def add(scan_id: str, body: EventBody) -> dict:
        return _change(scan_id, "u" + secrets.token_hex(5), body.model_copy(update={"status": "added"}), new=True)

    @app.delete("/api/scans/{scan_id}/events/{eid}")
    def undo(scan_id: str, eid: str, rev: int | None = Query(None)) -> dict:
        """Forget the decision about an event (an added event goes away): the undo of a first decision."""
        doc = state.doc(scan_id)
        with scan_lock(state.folder.path, scan_id):
            review = load_review(state.folder.path, scan_id)
            d = review["decisions"].get(eid)
            if d is None:
                if eid not in event_ids(doc["events"]):
                    raise HTTPException(404, f"no event {eid!r} in scan {scan_id!r}")
                return {"id": eid, "status": "speech", "rev": 0}
            if rev is not None and rev != d.get("rev", 0):
                raise HTTPException(
                    409, f"event {eid} was changed elsewhere (rev {d.get('rev', 0)}, you saw {rev}); reload"
                )
            del review["decisions"][eid]
            review["history"].append(
                {"at": now_iso(), "by": state.reviewer, "event_id": eid, "before": d, "after": None}
            )
            save_review(state.folder.path, scan_id, review)
        return {"id": eid, "status": "speech", "rev": 0}

    @app.put("/api/scans/{scan_id}/reviewed")
    def mark_reviewed(scan_id: str, body: ReviewedBody) -> dict:
        state.doc(scan_id)
        with scan_lock(state.folder.path, scan_id):
            review = load_review(state.folder.path, scan_id)
            review.update(
                reviewed=body.reviewed,
                reviewed_by=state.reviewer if body.reviewed else None,
                reviewed_at=now_iso() if body.reviewed else None,
            )
            review["history"].append(
                {
                    "at": now_iso(),
                    "by": state.reviewer,
                    "event_id": None,
                    "before": None,
                    "after": {"reviewed": body.reviewed},
                }
            )
            save_review(state.folder.path, scan_id, review)
        return {"scan_id": scan_id, "reviewed": body.reviewed}

    @app.get("/media/{scan_id}/{kind}")
    def media(scan_id: str, kind: str) -> Response:
        if kind not in ("video", "audio"):
            raise HTTPException(404, "not found")
        path = state.media_path(scan_id, kind)
        if path is None:
            raise HTTPException(404, f"no {kind} for scan {scan_id!r}")
        # FileResponse answers Range requests (206), so the browser seeks without downloading the whole file.
        return FileResponse(path, media_type=MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream"))

    def _change(scan_id: str, eid: str, body: EventBody, new: bool = False) -> dict:
        doc = state.doc(scan_id)
        _, _, duration = state.timing(scan_id, doc)
        ids = event_ids(doc["events"])
        base = doc["events"][ids.index(eid)] if eid in ids else None
        with scan_lock(state.folder.path, scan_id):
            review = load_review(state.folder.path, scan_id)
            old = review["decisions"].get(eid)
            if base is None and old is None and not new:
                raise HTTPException(404, f"no event {eid!r} in scan {scan_id!r}")
            if body.rev is not None and old is not None and body.rev != old.get("rev", 0):
                raise HTTPException(
                    409, f"event {eid} was changed elsewhere (rev {old.get('rev', 0)}, you saw {body.rev}); reload"
                )
            if body.rev is not None and old is None and body.rev != 0:
                raise HTTPException(409, f"event {eid} was reset elsewhere; reload")
            was_added = new or (old is not None and old["status"] == "added")
            status = body.status
            if was_added and status in ("accepted", "edited"):
                status = "added"
            if status == "added" and not was_added:
                raise HTTPException(422, "status added is for new events (POST)")
            start = old or base or {}
            merged = {
                k: getattr(body, k) if getattr(body, k) is not None else start.get(k)
                for k in ("label", "start_s", "end_s", "negated")
            }
            # An orphan (its pipeline event gone from a rerun of `label`) keeps the event it was made on.
            base = base or (old or {}).get("base")
            if status == "accepted":
                src = base or start
                merged = {k: src[k] for k in ("label", "start_s", "end_s")} | {"negated": bool(src.get("negated"))}
            _validate(merged, status, duration, state.labels)
            decision = {
                "status": status,
                **merged,
                "negated": bool(merged["negated"]),
                "term": (base or {}).get("term") or merged["label"],
                "speaker": (base or {}).get("speaker"),
                "by": state.reviewer,
                "at": now_iso(),
                "rev": (old or {}).get("rev", 0) + 1,
                "base": base,
            }
            review["decisions"][eid] = decision
            review["history"].append(
                {
                    "at": decision["at"],
                    "by": state.reviewer,
                    "event_id": eid,
                    "before": old,
                    "after": {k: v for k, v in decision.items() if k != "base"},
                }
            )
            save_review(state.folder.path, scan_id, review)
        return {"id": eid, **{k: v for k, v in decision.items() if k != "base"}}

    return app


def _json(obj) -> Response:
    """Plain ``json.dumps``: FastAPI's generic encoder costs ~0.1 s on a page of 1,000 events."""
    return Response(json.dumps(obj), media_type="application/json")


def _validate(ev: dict, status: str, duration: float, labels: list[str]) -> None:
    if status == "rejected":
        return
    if ev["label"] not in labels:
        raise HTTPException(422, f"label {ev['label']!r} is not in the lexicon ({', '.join(labels)})")
    s, e = ev["start_s"], ev["end_s"]
    if s is None or e is None:
        raise HTTPException(422, "start_s and end_s are required")
    if not (np.isfinite(s) and np.isfinite(e)) or s < 0 or e > duration + 1e-6 or e < s:
        raise HTTPException(422, f"times must satisfy 0 <= start_s <= end_s <= {duration:.3f} (the scan), got {s}, {e}")


def _static(name: str) -> Response:
    file, media_type = STATIC_FILES[name]
    data = (resources.files("sonotell.review") / "static" / file).read_bytes()
    return Response(data, media_type=media_type)


def is_loopback(host: str) -> bool:
    return host in LOOPBACK


def new_token() -> str:
    return secrets.token_urlsafe(24)

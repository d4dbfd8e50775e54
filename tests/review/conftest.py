"""A demo-sized labels folder written the way `sonotell label` writes it (no ASR run): 2 scans, VP8 video, wav audio."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sonotell.io.audio import save_audio
from sonotell.io.manifest import write_manifest
from sonotell.speech.align import align_states
from sonotell.speech.batch import write_scan_labels
from sonotell.speech.pipeline import SpeechResult, recipe_fingerprint
from sonotell.types import Scan, TermEvent, Word

FPS = 10
N_FRAMES = 80  # 8 s
SR = 16000


def write_webm(path: Path, n_frames: int, fps: int, seed: int) -> Path:
    """An ultrasound-like sweep (speckle in a sector) as VP8 WebM, which any Chromium plays."""
    import av

    rng = np.random.default_rng(seed)
    h, w = 120, 160
    yy, xx = np.mgrid[0:h, 0:w]
    angle = np.arctan2(xx - w / 2, yy + 10)
    radius = np.hypot(xx - w / 2, yy + 10)
    sector = (np.abs(angle) < 0.7) & (radius < h + 5)
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libvpx", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"deadline": "realtime", "cpu-used": "8"}  # the default "good" pass takes seconds
        vs.codec_context.thread_count = 1
        for i in range(n_frames):
            speckle = rng.gamma(1.5, 40, (h, w))
            blob = 120 * np.exp(-(((xx - 60 - i) ** 2) + (yy - 70) ** 2) / 300.0)
            img = np.clip((speckle * 0.6 + blob) * sector, 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(np.repeat(img[..., None], 3, axis=2), format="rgb24")
            for pkt in vs.encode(frame):
                c.mux(pkt)
        for pkt in vs.encode():
            c.mux(pkt)
    return path


SCRIPT = {
    # scan_id: [(label, term, start, end, confidence, negated, speaker)], words said
    "scan_a": (
        [
            ("liver", "liver", 1.0, 1.5, 0.9, False, "clinician"),
            ("kidney", "kidney", 3.0, 3.6, 0.4, False, "clinician"),
            ("spleen", "spleen", 5.0, 5.5, 0.7, True, "clinician"),
            ("bladder", "bladder", 6.5, 6.9, 0.8, False, "other"),
        ],
        "here is the liver then the kidney no spleen seen big bladder",
    ),
    "scan_b": (
        [("gallbladder", "gallbladder", 2.0, 2.6, 0.95, False, "clinician")],
        "and the gallbladder looks normal here",
    ),
}


def _words(text: str, duration_s: float) -> list[Word]:
    toks = text.split()
    step = (duration_s - 1.0) / len(toks)
    return [
        Word(t, round(0.5 + i * step, 3), round(0.5 + i * step + step * 0.8, 3), 0.9, "clinician")
        for i, t in enumerate(toks)
    ]


@pytest.fixture(scope="session")
def _demo_set(tmp_path_factory) -> Path:
    """scans/ (manifest, videos, wavs) and labels/ with <scan>.labels.csv, <scan>.json, summary.json; made once."""
    tmp_path = tmp_path_factory.mktemp("review_demo")
    scans_dir, out = tmp_path / "scans", tmp_path / "labels"
    scans_dir.mkdir()
    scans = []
    for k, scan_id in enumerate(SCRIPT):
        video = write_webm(scans_dir / f"{scan_id}.webm", N_FRAMES, FPS, k)
        t = np.arange(int(N_FRAMES / FPS * SR)) / SR
        wav = (0.2 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 0.5 * t) > 0)).astype(np.float32)
        audio = save_audio(scans_dir / f"{scan_id}.wav", wav, SR)
        scans.append(Scan(scan_id, f"p{k}", video, audio, 0.0, float(FPS), N_FRAMES, 160, 120, SR, N_FRAMES / FPS))
    write_manifest(scans_dir / "manifest.csv", scans)
    config = {
        "align": {
            "before_s": 0.3,
            "after_s": 0.3,
            "edge_weight": 0.5,
            "min_confidence": 0.0,
            "conflict_margin": 0.1,
        }
    }
    from sonotell.speech.lexicon import load_lexicon

    fingerprint = recipe_fingerprint(config, load_lexicon("abdominal"))
    for scan in scans:
        evs, text = SCRIPT[scan.scan_id]
        events = [TermEvent(*e) for e in evs]
        result = SpeechResult(
            _words(text, N_FRAMES / FPS),
            events,
            [{"speaker": "clinician", "start_s": 0.5, "end_s": 7.5, "text": text}],
            {"duration_s": N_FRAMES / FPS, "fps": float(FPS), "n_frames": N_FRAMES},
        )
        names = load_lexicon("abdominal").labels
        result.frames = align_states(events, names, fps=FPS, n_frames=N_FRAMES, config=config["align"])
        write_scan_labels(out, scan, result, fingerprint, "abdominal")
    # summary.json as `label` writes it (the keys the review tools read; building a pipeline here would cost seconds)
    (out / "summary.json").write_text(
        json.dumps(
            {
                "fingerprint": fingerprint,
                "lexicon": "abdominal",
                "config": config,
                "n_scans": 2,
                "n_done": 2,
                "n_failed": 0,
                "failed": [],
            }
        )
    )
    return tmp_path


@pytest.fixture
def labels_dir(_demo_set: Path, tmp_path: Path) -> Path:
    """A fresh copy of the demo set per test (tests write review files); returns its labels folder."""
    import shutil

    shutil.copytree(_demo_set / "scans", tmp_path / "scans")
    shutil.copytree(_demo_set / "labels", tmp_path / "labels")
    return tmp_path / "labels"


@pytest.fixture
def manifest(labels_dir: Path) -> Path:
    return labels_dir.parent / "scans" / "manifest.csv"

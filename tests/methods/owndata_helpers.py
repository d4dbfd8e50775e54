"""A user's own scans, made on the fly: silent videos, an ingest manifest and a `sonotell label`-style folder.

Each scan shows the liver (a bright top half) for its first half and the kidney (a bright bottom
half) for its second; the labels say so for most frames, leave some unlabelled and state
"no gallbladder" (absent) at a few.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from sonotell.types import Scan
from tests.conftest import write_video

FPS = 10
N_FRAMES = 20


def scan_frames(rng: np.random.Generator, n: int = N_FRAMES, h: int = 40, w: int = 40) -> np.ndarray:
    frames = rng.normal(50, 15, (n, h, w))
    frames[: n // 2, : h // 2] += 150  # liver: top bright
    frames[n // 2 :, h // 2 :] += 150  # kidney: bottom bright
    return np.clip(frames, 0, 255).astype(np.uint8)


def make_user_data(
    root: Path,
    n_subjects: int = 4,
    lexicon: str = "abdominal",
    with_labels: bool = True,
    absent_column: bool = True,
    narrated: bool = False,
) -> tuple[Path, Path]:
    """(manifest, labels folder) of ``n_subjects`` subjects with one silent scan each."""
    from sonotell.io.manifest import write_manifest

    rng = np.random.default_rng(0)
    scans = []
    labels = root / "labels"
    labels.mkdir(parents=True, exist_ok=True)
    for p in range(n_subjects):
        sid = f"scan{p}"
        audio = (
            (0.2 * np.sin(2 * np.pi * (300 + 200 * p) * np.arange(2 * 16000) / 16000)).astype(np.float32)
            if narrated
            else None
        )
        video = write_video(root / "videos" / f"{sid}.mp4", scan_frames(rng), fps=FPS, audio=audio)
        scans.append(
            Scan(
                sid,
                f"p{p}",
                video,
                None,
                0.0,
                float(FPS),
                N_FRAMES,
                40,
                40,
                16000 if narrated else None,
                2.0 if narrated else None,
                roi=(0, 0, 40, 40),
            )
        )
        rows = []
        for i in range(N_FRAMES):
            label = "liver" if i < N_FRAMES // 2 - 1 else ("kidney" if i > N_FRAMES // 2 else "unlabelled")
            row = {"scan_id": sid, "frame_index": i, "time_s": i / FPS, "label": label, "confidence": 0.9}
            if absent_column:
                row["absent"] = "gallbladder" if i < 4 else ""
            rows.append(row)
        if with_labels:
            pd.DataFrame(rows).to_csv(labels / f"{sid}.labels.csv", index=False)
            events = [
                {
                    "label": "liver",
                    "term": "liver",
                    "start_s": 0.2,
                    "end_s": 0.5,
                    "confidence": 0.9,
                    "negated": False,
                    "speaker": "clinician",
                }
            ]
            words = [
                {"text": t, "start_s": 0.1 * k, "end_s": 0.1 * k + 0.1, "confidence": 1.0, "speaker": "clinician"}
                for k, t in enumerate(["the", "liver", "here", "kidney"])
            ]
            doc = {
                "scan_id": sid,
                "subject_id": f"p{p}",
                "fingerprint": "x",
                "lexicon": lexicon,
                "events": events,
                "words": words,
                "segments": [],
                "info": {},
            }
            (labels / f"{sid}.json").write_text(json.dumps(doc))
    manifest = write_manifest(root / "manifest.csv", scans)
    return manifest, labels

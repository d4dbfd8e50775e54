"""The ``synthetic`` benchmark: ultrasound-like sweeps made from nothing, with TTS narration.

Each scan is a probe sweeping sideways over a strip of simulated tissue in which organs
(ellipses of distinct echotexture) sit at known places: speckle (Rayleigh, laterally
correlated), depth attenuation with partial gain compensation, a fan-shaped sector and a
static overlay (a header bar with text-like marks and a depth ruler) for sector cropping to
remove. Every frame has a class-index mask. A clinician voice names each organ while it is
visible, chats to the patient, and the patient answers; noise is synthetic (pink noise and
mains hum), so nothing outside the package is needed.

Example:
    >>> from sonotell.bench import build_benchmark
    >>> root = build_benchmark("synthetic", "bench_out/synthetic", overrides=["subjects=2"])  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sonotell.bench import narration as narr
from sonotell.bench.noise import mix_at_snr, reverberate, room_noise
from sonotell.data.tts import EspeakTTS, Voice
from sonotell.errors import ConfigError

# echo level, speckle smoothness (0 rough .. 1 smooth), posterior enhancement, has bright centre
ORGAN_LOOKS = {
    "liver": (0.62, 0.0, 1.0, False),
    "kidney": (0.13, 0.2, 1.0, True),
    "gallbladder": (0.03, 0.0, 1.45, False),
    "spleen": (0.75, 0.6, 1.0, False),
    "bladder": (0.02, 0.0, 1.5, False),
    "pancreas": (0.45, 0.3, 1.0, False),
}


@dataclass(frozen=True)
class OrganPlacement:
    name: str
    class_index: int
    cx: float  # world pixels
    cy: float
    ax: float
    ay: float
    angle: float


def sector_mask(h: int, w: int, *, max_half_angle_deg: float = 40.0) -> np.ndarray:
    """Boolean fan of a curvilinear probe, inside the image with a margin around it.

    The arc starts just below the header bar, reaches 4 px above the bottom, and is as wide as
    the image allows (up to ``max_half_angle_deg``) without touching the depth ruler.
    """
    top = _bar_height(h) + 2
    apex_y, apex_x = top - 0.2 * h, (w - 1) / 2
    r_min, r_max = 0.2 * h, (h - 4) - apex_y
    half_angle = min(np.radians(max_half_angle_deg), np.arcsin(min(1.0, (w / 2 - 7) / r_max)))
    yy, xx = np.mgrid[:h, :w].astype(np.float64)
    r = np.hypot(yy - apex_y, xx - apex_x)
    theta = np.arctan2(xx - apex_x, yy - apex_y)
    return (np.abs(theta) <= half_angle) & (r >= r_min) & (r <= r_max)


def _bar_height(h: int) -> int:
    return max(6, h // 13)


def overlay(h: int, w: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A static overlay (header bar with text-like marks, a depth ruler, a logo) and where it is drawn."""
    img = np.zeros((h, w), np.float32)
    where = np.zeros((h, w), bool)
    bar = _bar_height(h)
    where[:bar] = True
    img[:bar] = 40
    x = 2
    while x < w - 6:  # "words": runs of 3x(bar-4) glyph blocks
        n = int(rng.integers(2, 6))
        for _ in range(n):
            if x + 3 >= w - 2:
                break
            glyph = rng.random((bar - 4, 3)) < 0.55
            img[2 : bar - 2, x : x + 3][glyph] = 230
            x += 4
        x += int(rng.integers(4, 9))
    ruler_x = w - 4
    where[bar:, ruler_x:] = True
    for y in range(bar + 2, h, max(4, h // 16)):
        img[y, ruler_x:] = 200
    img[h - 7 : h - 2, 2:8] = 180  # logo
    where[h - 7 : h - 2, 2:8] = True
    return img, where


def speckle(shape: tuple[int, int], rng: np.random.Generator, smooth: float = 0.0) -> np.ndarray:
    """Unit-mean Rayleigh speckle, laterally correlated (beam wider than the pulse is long)."""
    from scipy.ndimage import gaussian_filter

    re = gaussian_filter(rng.standard_normal(shape), (0.7, 1.4))
    im = gaussian_filter(rng.standard_normal(shape), (0.7, 1.4))
    amp = np.hypot(re, im)
    amp /= amp.mean()
    if smooth > 0:
        amp = (1 - smooth) * amp + smooth * gaussian_filter(amp, 1.5)
    return amp.astype(np.float32)


def place_organs(
    organs: list[str], classes: list[str], h: int, w: int, span_px_per_organ: float, rng: np.random.Generator
) -> tuple[list[OrganPlacement], int]:
    """Organs one after another along the sweep; returns placements and the world width."""
    world_w = int(w + span_px_per_organ * len(organs))
    step = (world_w - w) / len(organs)
    out = []
    for k, name in enumerate(organs):
        cx = w / 2 + (k + 0.5) * step + rng.uniform(-0.1, 0.1) * step
        big = name in ("liver", "bladder")
        ax = w * (rng.uniform(0.26, 0.34) if big else rng.uniform(0.16, 0.24))
        ay = h * (rng.uniform(0.18, 0.24) if big else rng.uniform(0.11, 0.16))
        cy = h * rng.uniform(0.5, 0.66)
        out.append(OrganPlacement(name, classes.index(name), cx, cy, ax, ay, rng.uniform(-0.35, 0.35)))
    return out, world_w


def _ellipse(yy: np.ndarray, xx: np.ndarray, o: OrganPlacement, scale: float = 1.0) -> np.ndarray:
    c, s = np.cos(o.angle), np.sin(o.angle)
    dx, dy = xx - o.cx, yy - o.cy
    u, v = (c * dx + s * dy) / (o.ax * scale), (-s * dx + c * dy) / (o.ay * scale)
    return u * u + v * v <= 1.0


def world_maps(
    organs: list[OrganPlacement], h: int, world_w: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Echogenicity x speckle (float32) and class-index map (uint8) of the whole strip."""
    yy, xx = np.mgrid[:h, :world_w].astype(np.float32)
    echo = np.full((h, world_w), 0.28, np.float32)
    layers = (0.05, 0.09, 0.14, 0.18)  # skin, fat, muscle fascia: bright horizontal bands
    for y in layers:
        echo[np.abs(yy - y * h - 2 * np.sin(xx / 23.0)) < 1.2] = 0.7
    rough = speckle((h, world_w), rng)
    smooth = speckle((h, world_w), rng, smooth=0.7)
    img = echo * rough
    classes = np.zeros((h, world_w), np.uint8)
    for o in organs:
        level, smooth_mix, enhancement, bright_centre = ORGAN_LOOKS[o.name]
        inside = _ellipse(yy, xx, o)
        tex = (1 - smooth_mix) * rough + smooth_mix * smooth
        img[inside] = level * tex[inside]
        if bright_centre:
            centre = _ellipse(yy, xx, o, 0.45)
            img[centre] = 0.85 * tex[centre]
        if level > 0.3:  # a few vessels (dark round holes) in solid organs
            for _ in range(int(rng.integers(1, 4))):
                vy, vx = o.cy + rng.uniform(-0.5, 0.5) * o.ay, o.cx + rng.uniform(-0.5, 0.5) * o.ax
                hole = ((yy - vy) ** 2 + (xx - vx) ** 2 < rng.uniform(2, 5) ** 2) & inside
                img[hole] = 0.04 * rough[hole]
        if enhancement > 1.0:  # posterior acoustic enhancement behind fluid
            below = (~inside) & (np.abs(xx - o.cx) < o.ax * 0.8) & (yy > o.cy) & (yy < o.cy + 2.2 * o.ay)
            img[below] *= enhancement
        classes[inside] = o.class_index
    return img, classes


def simulate_sweep(
    organs: list[str],
    classes: list[str],
    *,
    n_frames: int,
    size: tuple[int, int],
    rng: np.random.Generator,
    span_px_per_organ: float = 1.3,
    attenuation: float = 1.6,
    temporal_noise: float = 0.25,
) -> tuple[np.ndarray, np.ndarray, list[OrganPlacement]]:
    """Frames (T, H, W) uint8 and masks (T, H, W) uint8 of a probe sweeping over ``organs``.

    ``span_px_per_organ`` is in units of the view width.
    """
    h, w = size
    placements, world_w = place_organs(organs, classes, h, w, span_px_per_organ * w, rng)
    world, world_cls = world_maps(placements, h, world_w, rng)
    fan = sector_mask(h, w)
    over, over_where = overlay(h, w, rng)
    depth = np.arange(h, dtype=np.float32)[:, None] / h
    gain = np.exp(-attenuation * depth) * (1 + 0.6 * attenuation * depth)  # attenuation, partly TGC-compensated
    wobble = rng.uniform(0, 2 * np.pi)
    frames = np.zeros((n_frames, h, w), np.uint8)
    masks = np.zeros((n_frames, h, w), np.uint8)
    for t in range(n_frames):
        frac = t / max(1, n_frames - 1)
        x0 = frac * (world_w - w) + 3.0 * np.sin(2 * np.pi * 0.4 * t / 25 + wobble)  # hand tremor
        x0 = int(round(np.clip(x0, 0, world_w - w)))
        tissue = world[:, x0 : x0 + w]
        fresh = speckle((h, w), rng)
        img = tissue * ((1 - temporal_noise) + temporal_noise * fresh) * gain * 255.0
        img = np.where(fan, img, 0.0)
        img = np.where(over_where, over, img)
        frames[t] = np.clip(img, 0, 255).astype(np.uint8)
        masks[t] = np.where(fan & ~over_where, world_cls[:, x0 : x0 + w], 0)
    return frames, masks, placements


def visible_intervals(
    masks: np.ndarray, fps: float, class_index: int, min_fraction: float, fan_pixels: int
) -> list[tuple[float, float]]:
    """Time spans (start_s, end_s) in which the organ covers at least ``min_fraction`` of the sector."""
    on = (masks == class_index).reshape(len(masks), -1).sum(axis=1) >= min_fraction * fan_pixels
    spans, start = [], None
    for t, v in enumerate(np.append(on, False)):
        if v and start is None:
            start = t
        elif not v and start is not None:
            spans.append((start / fps, t / fps))
            start = None
    return spans


def scan_lines(
    visible: dict[str, list[tuple[float, float]]],
    duration_s: float,
    cfg: dict,
    clinician: Voice,
    other: Voice,
    rng: np.random.Generator,
) -> list[narr.Line]:
    """What is said in one sweep: each visible organ named once, plus off-topic talk and replies."""
    n = cfg["narration"]
    lines = []
    for organ, spans in visible.items():
        for s0, s1 in spans:
            if s1 - s0 < n["min_visible_s"]:
                continue
            synonyms = n["synonyms"].get(organ, [organ])
            said = synonyms[int(rng.integers(len(synonyms)))]
            template = n["templates"][int(rng.integers(len(n["templates"])))]
            text = template.replace("{term}", f"[{said}]({organ})")
            at = s0 + rng.uniform(*n["jitter_s"])
            lines.append(
                narr.Line(text, "clinician", clinician, max(0.0, at), latest_s=max(0.0, s1 - n["min_visible_s"] / 2))
            )
    if rng.random() < n["p_off_topic"]:
        text = n["off_topic"][int(rng.integers(len(n["off_topic"])))]
        lines.append(narr.Line(text, "clinician", clinician, rng.uniform(0, duration_s * 0.6), filler=True))
    if rng.random() < n["p_second_speaker"]:
        text = n["second_speaker"][int(rng.integers(len(n["second_speaker"])))]
        lines.append(
            narr.Line(
                text,
                "patient",
                other,
                rng.uniform(0, duration_s * 0.7),
                gain_db=float(cfg["audio"]["second_speaker_gain_db"]),
                filler=True,
            )
        )
    return lines


def plan(cfg: dict, seed: int) -> list[dict]:
    """One spec per scan (ids, subject, organs, voice pool); cheap, no synthesis."""
    organs = list(cfg["organs"])
    if len(organs) < 1 or any(o not in ORGAN_LOOKS for o in organs):
        raise ConfigError(f"synthetic organs must be among {sorted(ORGAN_LOOKS)}, got {organs}")
    h, w = cfg["size"]
    if h % 2 or w % 2 or h < 32 or w < 32:
        raise ConfigError(f"synthetic size {cfg['size']} must be even and at least 32x32")
    rng = np.random.default_rng([seed, 0])
    n_subj = int(cfg["subjects"])
    subjects = [f"s{i:02d}" for i in range(n_subj)]
    n_test = int(round(n_subj * float(cfg["voices"]["test_subject_fraction"])))
    test_subjects = set(np.array(subjects)[rng.permutation(n_subj)[:n_test]].tolist()) if n_subj > 1 else set()
    lo, hi = cfg["organs_per_scan"]
    specs = []
    for subj in subjects:
        for k in range(int(cfg["scans_per_subject"])):
            m = int(rng.integers(lo, hi + 1))
            chosen = [organs[i] for i in rng.permutation(len(organs))[: min(m, len(organs))]]
            specs.append(
                {
                    "scan_id": f"{subj}_scan{k}",
                    "subject_id": subj,
                    "organs": chosen,
                    "voice_split": "test" if subj in test_subjects else "train",
                }
            )
    return specs


def classes_of(cfg: dict) -> dict:
    organs = list(cfg["organs"])
    return {"classes": organs, "label_names": organs, "mask_classes": ["background"] + organs}


def build_scan(
    spec: dict, root: Path, cfg: dict, seed: int, voices: dict[str, list[Voice]], tts: EspeakTTS
) -> tuple[dict, dict]:
    """Make one scan's video, masks, narration and truth; return (manifest row, truth)."""
    from sonotell.bench.build import rng_for, save_masks, write_video

    rng = rng_for(seed, spec["scan_id"])
    fps = float(cfg["fps"])
    n_frames = int(round(cfg["duration_s"] * fps))
    mask_classes = classes_of(cfg)["mask_classes"]
    frames, masks, _ = simulate_sweep(
        spec["organs"],
        mask_classes,
        n_frames=n_frames,
        size=tuple(cfg["size"]),
        rng=rng,
        span_px_per_organ=float(cfg["span_per_organ"]),
    )
    duration_s = n_frames / fps
    fan_pixels = int(sector_mask(*frames.shape[1:]).sum())
    visible = {
        o: visible_intervals(masks, fps, mask_classes.index(o), float(cfg["min_visible_fraction"]), fan_pixels)
        for o in spec["organs"]
    }

    pool = voices[spec["voice_split"]]
    clinician = pool[int(rng.integers(len(pool)))]
    others = [v for v in pool if (v.language, v.variant) != (clinician.language, clinician.variant)] or pool
    other = others[int(rng.integers(len(others)))]
    lines = scan_lines(visible, duration_s, cfg, clinician, other, rng)
    audio_cfg = cfg["audio"]
    sr = int(audio_cfg["sample_rate_hz"])
    offset = float(audio_cfg["audio_offset_s"])
    track = narr.render(
        lines,
        duration_s=duration_s,
        sample_rate_hz=sr,
        tts=tts,
        audio_offset_s=offset,
        min_gap_s=float(cfg["narration"]["min_gap_s"]),
    )
    audio = track.audio
    rt60 = float(rng.uniform(*audio_cfg["reverb_rt60_s"]))
    if rt60 > 0:
        audio = reverberate(audio, sr, rt60, rng)
    snr = None
    if audio_cfg.get("snr_db") is not None:
        snr = float(rng.uniform(*audio_cfg["snr_db"]))
        audio, _ = mix_at_snr(audio, room_noise(len(audio), sr, rng), snr, sr)
    peak = float(np.abs(audio).max())
    if peak > 0.99:
        audio = audio * (0.99 / peak)

    scan_id = spec["scan_id"]
    video_rel = f"videos/{scan_id}.mp4"
    audio_rel = f"audio/{scan_id}.wav"
    write_video(root / video_rel, frames, fps)
    from sonotell.io.audio import save_audio

    save_audio(root / audio_rel, audio, sr)
    stride = int(cfg["mask_stride"])
    mask_paths = save_masks(root, scan_id, masks, stride)

    counts = {o: int((masks == mask_classes.index(o)).sum()) for o in spec["organs"]}
    label = max(counts, key=counts.get)
    labels = sorted(o for o in spec["organs"] if visible[o])
    truth = {
        "scan_id": scan_id,
        "subject_id": spec["subject_id"],
        "label": label,
        "labels": labels,
        "events": track.events,
        "segments": track.segments,
        "masks": mask_paths,
        "visible": [
            {"label": o, "start_s": round(a, 4), "end_s": round(b, 4)} for o in spec["organs"] for a, b in visible[o]
        ],
        "voice": clinician.name,
        "snr_db": snr,
        "reverb_rt60_s": rt60,
        "dropped_lines": track.dropped,
    }
    row = {
        "scan_id": scan_id,
        "subject_id": spec["subject_id"],
        "video_path": video_rel,
        "audio_path": audio_rel,
        "audio_offset_s": offset,
        "fps": fps,
        "n_frames": n_frames,
        "width": frames.shape[2],
        "height": frames.shape[1],
        "audio_sample_rate_hz": sr,
        "audio_duration_s": round(len(audio) / sr, 6),
        "roi": "",
        "label": label,
        "labels": ";".join(labels),
        "voice": clinician.name,
        "voice_split": spec["voice_split"],
    }
    return row, truth

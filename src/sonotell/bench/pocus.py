"""The ``pocus`` benchmark: the 131 real lung ultrasound clips of the POCUS data set, narrated.

Source: ``<data_root>/pocus/pocus_videos/{convex,linear}/**`` and ``dataset_metadata.csv``
(a file matches the row whose ``Filename`` is its stem). For each clip:

- **video**: clips at least ``video.min_duration_s`` long are copied byte for byte. Shorter
  clips (most are 1-8 s) cannot carry a spoken description, so they are played as a cine
  loop — as a scanner does on review — and re-encoded (greyscale MPEG-4, same size and frame
  rate) to the first whole number of loops reaching the minimum. ``truth.loops`` says how
  often the clip repeats (1 = the original file).
- **labels**: ``label`` = the ``Label`` column mapped to COVID-19 / pneumonia / regular /
  viral; ``labels`` = the finding columns that are 1.
- **subject**: ``src<Source ID>-pt<Patient ID>`` (patient numbers restart per source, so the
  source is part of the id); ``src<Source ID>`` when the patient is unknown, which puts every
  such clip of a source in one group (conservative: never split one patient across groups).
- **narration**: a clinician voice states each finding present (synonyms, varied phrasing,
  fillers), sometimes what is absent ("no effusion", negated), sometimes the physician's own
  free text (MD1 comment) and an impression naming the diagnosis; talks to the patient;
  a second speaker (patient or trainee) joins in. The trainee may name findings too
  (speaker ``trainee`` in the truth). Timing: each line starts at a jittered time.
- **noise**: one ESC-10 recording (``<data_root>/esc10``) mixed at an SNR drawn per scan,
  measured on active speech (``noise.mix_at_snr``); optional synthetic reverberation.

Example:
    >>> build_benchmark("pocus", "bench_out/pocus", overrides=["data_root=../shared/data"])  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import re
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd

from sonotell.bench import narration as narr
from sonotell.bench.noise import narrated_soundtrack
from sonotell.data.tts import EspeakTTS, Voice
from sonotell.errors import InputError

log = logging.getLogger(__name__)

FINDING_COLUMNS = {
    "Effusion": "effusion",
    "Consolidations": "consolidation",
    "B-lines": "b_lines",
    "A-lines": "a_lines",
    "Pleural line irregularities": "pleural_irregularity",
    "Air bronchogram": "air_bronchogram",
}
FINDINGS = list(FINDING_COLUMNS.values())
CLASSES = ["COVID-19", "pneumonia", "regular", "viral"]
# The classification task of Bonmati et al. on these clips: "viral" (few clips, few patients) is left out.
TASK_CLASSES = ["COVID-19", "pneumonia", "regular"]
_LABEL_MAP = {
    "covid-19": "COVID-19",
    "bacterial pneumonia": "pneumonia",
    "pneumonia": "pneumonia",
    "regular": "regular",
    "viral pneumonia": "viral",
    "viral": "viral",
}

# Terms in the physician's free text -> finding or class; checked in this order, first match wins per span.
_FREE_TEXT_TERMS = [
    (r"air[- ]?bronch\w*grams?|bronchiograms?", "air_bronchogram"),
    (
        r"pleural (?:line )?(?:irregular\w*|thickening|abnormality)|pleural irregul\w*|irregular pleural line",
        "pleural_irregularity",
    ),
    (r"(?:pleural )?effusions?", "effusion"),
    (r"(?:sub[- ]?pleura\w* )?consolidat\w*|hepatization", "consolidation"),
    (r"b[- ]lines?", "b_lines"),
    (r"a[- ]lines?", "a_lines"),
    (r"(?:normal|healthy) lung", "regular"),
]
_NEGATORS = {"no", "not", "without", "nor", "neither"}
_META = re.compile(r"do not use|cropping|low quality|compression|cannot be sure|slips into|of the image is", re.I)


def _data_root(cfg: dict) -> Path:
    root = Path(cfg["data_root"]).expanduser()
    if not (root / "pocus" / "dataset_metadata.csv").exists():
        raise InputError(
            root / "pocus" / "dataset_metadata.csv",
            "POCUS metadata not found; set data_root (e.g. --set data_root=../shared/data)",
        )
    return root


def scan_id_of(stem: str) -> str:
    """A file-system- and CSV-safe id from a file stem."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("_")


def read_metadata(root: Path) -> pd.DataFrame:
    """The metadata rows that have a clip on disk, one per file, with ``path`` added."""
    meta_path = root / "pocus" / "dataset_metadata.csv"
    table = pd.read_csv(meta_path)
    missing = [
        c
        for c in (
            "Filename",
            "Label",
            "Patient ID / Name",
            "Source ID",
            "Comments first medical doctor (MD1)",
            *FINDING_COLUMNS,
        )
        if c not in table.columns
    ]
    if missing:
        raise InputError(meta_path, f"missing columns: {', '.join(missing)}")
    files = sorted(p for p in (root / "pocus" / "pocus_videos").rglob("*") if p.is_file())
    by_stem = {}
    for p in files:
        by_stem.setdefault(p.stem, p)
    table = table.assign(Filename=table["Filename"].astype(str))
    table = table[table["Filename"].isin(by_stem)].drop_duplicates("Filename")
    table = table.assign(path=table["Filename"].map(by_stem)).sort_values("Filename").reset_index(drop=True)
    unmatched = sorted(set(by_stem) - set(table["Filename"]))
    if unmatched:
        log.warning("%d clips have no metadata row and are left out: %s", len(unmatched), ", ".join(unmatched[:5]))
    return table


def subject_of(row: dict) -> str:
    src = _id_text(row.get("Source ID"))
    pat = _id_text(row.get("Patient ID / Name"))
    return f"src{src or 'unknown'}-pt{pat}" if pat else f"src{src or 'unknown'}"


def _id_text(v) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    s = str(v).strip()
    if re.fullmatch(r"\d+\.0", s):
        s = s[:-2]
    return re.sub(r"[^A-Za-z0-9]+", "", s)


def findings_of(row: dict) -> list[str]:
    out = []
    for col, name in FINDING_COLUMNS.items():
        v = pd.to_numeric(row.get(col), errors="coerce")
        if v == 1:
            out.append(name)
    return out


def label_of(row: dict) -> str:
    raw = str(row.get("Label", "")).strip().lower()
    return _LABEL_MAP.get(raw, "")


def plan(cfg: dict, seed: int) -> list[dict]:
    root = _data_root(cfg)
    table = read_metadata(root)
    if cfg.get("limit"):
        # a small, class-balanced subset for tests: round-robin over labels
        groups = [g for _, g in table.groupby(table["Label"].astype(str).str.lower(), sort=True)]
        picked, i = [], 0
        while len(picked) < int(cfg["limit"]) and any(i < len(g) for g in groups):
            picked += [g.iloc[i] for g in groups if i < len(g)]
            i += 1
        table = pd.DataFrame(picked[: int(cfg["limit"])]).reset_index(drop=True)
    rows = table.to_dict("records")
    subjects = sorted({subject_of(r) for r in rows})
    rng = np.random.default_rng([seed, 1])
    n_test = int(round(len(subjects) * float(cfg["voices"]["test_subject_fraction"])))
    test_subjects = (
        set(np.array(subjects)[rng.permutation(len(subjects))[:n_test]].tolist()) if len(subjects) > 1 else set()
    )
    specs = []
    for r in rows:
        subj = subject_of(r)
        specs.append(
            {
                "scan_id": scan_id_of(r["Filename"]),
                "subject_id": subj,
                "source": str(Path(r["path"]).relative_to(root)),
                "label": label_of(r),
                "findings": findings_of(r),
                "md1": ""
                if pd.isna(r.get("Comments first medical doctor (MD1)"))
                else str(r["Comments first medical doctor (MD1)"]),
                "probe": "" if pd.isna(r.get("Probe")) else str(r.get("Probe")),
                "voice_split": "test" if subj in test_subjects else "train",
            }
        )
    return specs


def classes_of(cfg: dict) -> dict:
    return {
        "classes": list(CLASSES),
        "label_names": list(FINDINGS),
        "mask_classes": [],
        "task_classes": list(TASK_CLASSES),
    }


def tag_free_text(text: str, terms: list[tuple[str, str]] | None = None) -> str:
    """Mark lexicon terms in a physician's comment as ``[said](label)`` / ``[said](!label)`` (negated).

    ``terms``: (regex, label) pairs checked in order (default: the POCUS comments' terms).
    """
    text = text.replace("+", " and ").replace("-->", ",").replace("/", " or ").replace(">", "more than ")
    text = re.sub(r"[()\[\]:;]", ",", text)
    text = re.sub(r"\s+", " ", text).strip(" ,.")
    spans = []
    for pattern, label in _FREE_TEXT_TERMS if terms is None else terms:
        for m in re.finditer(rf"\b(?:{pattern})\b", text, flags=re.I):
            if any(m.start() < b and m.end() > a for a, b, _ in spans):
                continue
            clause = re.split(r"[,.!?]", text[: m.start()])[-1]  # negation does not cross a comma
            neg = any(w in _NEGATORS for w in re.findall(r"[a-z']+", clause.lower())[-3:])
            spans.append((m.start(), m.end(), ("!" if neg else "") + label))
    out, pos = [], 0
    for a, b, lab in sorted(spans):
        out += [text[pos:a], f"[{text[a:b]}]({lab})"]
        pos = b
    out.append(text[pos:])
    return "".join(out)


def _pick(rng: np.random.Generator, items: list):
    return items[int(rng.integers(len(items)))]


def scan_lines(
    spec: dict, duration_s: float, cfg: dict, clinician: Voice, other: Voice, other_role: str, rng: np.random.Generator
) -> list[narr.Line]:
    """Everything said during one clip: findings, negations, free text, impression, chat."""
    n = cfg["narration"]
    lines: list[narr.Line] = []
    jitter = n["jitter_s"]
    findings = list(spec["findings"])
    order = rng.permutation(len(findings))
    slots = np.linspace(0.3, max(0.4, duration_s * 0.5), num=max(1, len(findings)), endpoint=True)

    def say(text: str, at: float, speaker="clinician", voice=clinician, filler=False, gain_db=0.0):
        if rng.random() < n["p_filler_word"]:
            text = f"{_pick(rng, n['filler_words'])}, {text}"
        lines.append(
            narr.Line(text, speaker, voice, max(0.0, at + rng.uniform(*jitter)), gain_db=gain_db, filler=filler)
        )

    for slot, k in zip(slots, order):
        f = findings[k]
        term = _pick(rng, n["synonyms"][f])
        say(_pick(rng, n["finding_templates"]).replace("{term}", f"[{term}]({f})"), slot)
    absent = [f for f in n["negatable"] if f not in findings]
    for f in rng.permutation(absent)[: int(rng.integers(0, n["max_negations"] + 1))]:
        term = _pick(rng, n["negation_terms"][f])
        say(
            _pick(rng, n["negation_templates"]).replace("{term}", f"[{term}](!{f})"),
            rng.uniform(0, duration_s * 0.8),
            filler=True,
        )
    if spec["label"] and rng.random() < n["p_impression"]:
        term = _pick(rng, n["class_terms"][spec["label"]])
        say(_pick(rng, n["impression_templates"]).replace("{term}", f"[{term}]({spec['label']})"), duration_s * 0.6)
    if not spec["label"]:
        say("hard to say what this is, could be viral or a pneumonia", duration_s * 0.5, filler=True)
    md1 = spec["md1"]
    if md1 and not _META.search(md1) and rng.random() < n["p_free_text"]:
        words = md1.split()
        say(
            tag_free_text(" ".join(words[: n["free_text_max_words"]]), spec.get("free_text_terms")),
            rng.uniform(0, duration_s * 0.5),
            filler=True,
        )
    for _ in range(int(rng.integers(0, n["max_off_topic"] + 1))):
        say(_pick(rng, n["off_topic"]), rng.uniform(0, duration_s), filler=True)
    if rng.random() < n["p_second_speaker"]:
        g = float(cfg["audio"]["second_speaker_gain_db"])
        if other_role == "trainee" and findings:
            f = _pick(rng, findings)
            text = _pick(rng, n["trainee_lines"]).replace("{term}", f"[{_pick(rng, n['synonyms'][f])}]({f})")
        else:
            text = _pick(rng, n["patient_lines"] if other_role == "patient" else n["trainee_chat"])
        lines.append(narr.Line(text, other_role, other, rng.uniform(0, duration_s), gain_db=g, filler=True))
    if not any(l.speaker == "clinician" and not l.filler and "](" in l.text for l in lines):
        # No finding, no impression: the clinician would otherwise say nothing placed for sure (fillers may not
        # fit), leaving a silent scan. One mention that is placed like the findings: the class, or what is absent.
        if spec["label"]:
            term = _pick(rng, n["class_terms"][spec["label"]])
            text = _pick(rng, n["impression_templates"]).replace("{term}", f"[{term}]({spec['label']})")
        else:
            f = _pick(rng, [f for f in n["negatable"] if f not in findings] or list(n["negatable"]))
            text = _pick(rng, n["negation_templates"]).replace(
                "{term}", f"[{_pick(rng, n['negation_terms'][f])}](!{f})"
            )
        lines.append(narr.Line(text, "clinician", clinician, 0.3))
    return lines


def build_scan(
    spec: dict, root: Path, cfg: dict, seed: int, voices: dict[str, list[Voice]], tts: EspeakTTS
) -> tuple[dict, dict]:
    return build_lung_scan(spec, root, cfg, seed, voices, tts, _data_root(cfg))


def build_lung_scan(
    spec: dict, root: Path, cfg: dict, seed: int, voices: dict[str, list[Voice]], tts: EspeakTTS, data_root: Path
) -> tuple[dict, dict]:
    """One narrated lung clip (pocus and covid_blues): cine loop to the minimum length, narration, noise."""
    from sonotell.bench.build import rng_for, write_video
    from sonotell.io.audio import save_audio
    from sonotell.io.video import probe_video, read_frames

    rng = rng_for(seed, spec["scan_id"])
    src = data_root / spec["source"]
    info = probe_video(src)
    clip_s = info.n_frames / info.fps
    loops = max(1, int(np.ceil(float(cfg["video"]["min_duration_s"]) / clip_s)))
    if loops == 1:
        video_rel = f"videos/{spec['scan_id']}{src.suffix.lower()}"
        from sonotell.files import atomic_path

        with atomic_path(root / video_rel) as tmp:
            shutil.copyfile(src, tmp)
        n_frames, fps = info.n_frames, info.fps
        height, width = info.height, info.width
    else:
        frames = read_frames(src)
        frames = frames[:, : frames.shape[1] // 2 * 2, : frames.shape[2] // 2 * 2]  # yuv420p needs even sizes
        frames = np.concatenate([frames] * loops)
        video_rel = f"videos/{spec['scan_id']}.mp4"
        rate = Fraction(info.fps).limit_denominator(1001)
        write_video(root / video_rel, frames, rate, qscale=int(cfg["video"]["qscale"]))
        n_frames, fps = len(frames), float(rate)
        height, width = frames.shape[1:]
    duration_s = n_frames / fps

    sound = narrated_soundtrack(
        lambda clinician, other, role: scan_lines(spec, duration_s, cfg, clinician, other, role, rng),
        duration_s,
        cfg,
        voices[spec["voice_split"]],
        tts,
        rng,
    )
    audio, sr, track = sound.audio, sound.sample_rate_hz, sound.track
    a = cfg["audio"]
    audio_rel = f"audio/{spec['scan_id']}.wav"
    save_audio(root / audio_rel, audio, sr)

    labels = sorted(spec["findings"])
    truth = {
        "scan_id": spec["scan_id"],
        "subject_id": spec["subject_id"],
        "label": spec["label"],
        "labels": labels,
        "events": track.events,
        "segments": track.segments,
        "masks": {},
        "visible": [{"label": f, "start_s": 0.0, "end_s": round(duration_s, 4)} for f in labels],
        "source_video": spec["source"],
        "loops": loops,
        "clip_duration_s": round(clip_s, 4),
        "probe": spec["probe"],
        "md1_comment": spec["md1"],
        **sound.truth_fields(),
    }
    row = {
        "scan_id": spec["scan_id"],
        "subject_id": spec["subject_id"],
        "video_path": video_rel,
        "audio_path": audio_rel,
        "audio_offset_s": float(a["audio_offset_s"]),
        "fps": fps,
        "n_frames": n_frames,
        "width": width,
        "height": height,
        "audio_sample_rate_hz": sr,
        "audio_duration_s": round(len(audio) / sr, 6),
        "roi": "",
        "label": spec["label"],
        "labels": ";".join(labels),
        "voice": sound.clinician.name,
        "voice_split": spec["voice_split"],
    }
    return row, truth

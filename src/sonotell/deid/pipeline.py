"""``sonotell deid``: a shareable copy of scans, narration and labels, and ``deid check`` on such a copy.

Output folder::

    manifest.csv            pseudonymous scan and subject ids; paths into videos/ and audio/
    videos/<id>.mp4|.dcm    frames blanked outside the sector and under burned-in text (DICOM: tags scrubbed too)
    audio/<id>.wav          identifier words silenced
    labels/<id>.labels.csv  frame labels, unchanged but for the scan id
    labels/<id>.json        events kept with their times; identifier words and segment text redacted
    deid_report.json        every removal and every flag

The pseudonym key and the original -> pseudonym mapping are written outside it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

from sonotell.config import packaged_default
from sonotell.deid.dicom import DicomScrubber, dicom_frames, profile_violations, read_dicom, set_frames, write_dicom
from sonotell.deid.frames import (
    FramePlan,
    FramesConfig,
    OcrTextDetector,
    TextDetector,
    blank_frame,
    output_suffix,
    plan_from_frames,
    plan_video,
    write_clean_video,
)
from sonotell.deid.labels_io import read_scan_labels, write_scan_labels
from sonotell.deid.report import DeidReport, Removal
from sonotell.deid.speech import REDACTED, PhiFilter, SpeechConfig, _bare, redact_spans, redact_text, silence_audio
from sonotell.deid.subjects import Pseudonymizer, SubjectsConfig, inside, load_or_make_key, write_mapping
from sonotell.errors import InputError, OutputError
from sonotell.files import output_lock
from sonotell.io.audio import load_audio, save_audio
from sonotell.io.manifest import read_manifest, write_manifest
from sonotell.io.video import is_dicom
from sonotell.progress import Progress, silent
from sonotell.types import Scan

log = logging.getLogger(__name__)

KEPT_COLUMNS = ("label", "labels", "voice", "voice_split")  # other extra manifest columns may hold free text: dropped
NOT_COVERED = [
    "identifiers in speech the recogniser did not transcribe (the audio is redacted from the transcript's words)",
    "burned-in text shown only between the OCR's sampled frames (text is assumed static)",
    "faces, tattoos or other identifying image content",
    "DICOM structured reports and free-text sequences beyond the listed basic-profile attributes",
]


@dataclass
class DeidConfig:
    frames: FramesConfig = field(default_factory=FramesConfig)
    speech: SpeechConfig = field(default_factory=SpeechConfig)
    subjects: SubjectsConfig = field(default_factory=SubjectsConfig)
    remove_private_tags: bool = field(
        default_factory=lambda: bool(packaged_default("deid", "default", "dicom", "remove_private_tags"))
    )

    @classmethod
    def from_dict(cls, cfg: dict | None) -> DeidConfig:
        cfg = cfg or {}
        return cls(
            FramesConfig.from_dict(cfg.get("frames")),
            SpeechConfig.from_dict(cfg.get("speech")),
            SubjectsConfig.from_dict(cfg.get("subjects")),
            bool((cfg.get("dicom") or {}).get("remove_private_tags", True)),
        )


def lexicon_words(name: str | None) -> set[str]:
    """Bare words of every spoken form of a lexicon: never redacted."""
    if not name:
        return set()
    from sonotell.speech.lexicon import load_lexicon

    return {_bare(w) for form in load_lexicon(name).forms for w in form.text.split()} - {""}


@dataclass
class Deidentifier:
    """Holds the detectors (loaded once) and de-identifies scan after scan into ``out_dir``."""

    out_dir: Path
    pseudonymizer: Pseudonymizer
    config: DeidConfig = field(default_factory=DeidConfig)
    detector: TextDetector | None = None
    phi: PhiFilter | None = None
    lexicon: str | None = None
    report: DeidReport = field(default_factory=DeidReport)

    def __post_init__(self):
        if self.detector is None:
            self.detector = OcrTextDetector(self.config.frames.ocr_backend, self.config.frames.ocr_min_score)
        if self.phi is None:
            self.phi = PhiFilter(self.config.speech)
        self.dicom = DicomScrubber(self.pseudonymizer.key, self.config.remove_private_tags)
        self._protected_for: dict[str | None, set[str]] = {}

    def _frame_removals(self, sid: str, plan: FramePlan, size: tuple[int, int]) -> None:
        if plan.roi is None:
            if self.config.frames.blank_outside_sector:
                self.report.flag(sid, "no ultrasound sector found: nothing outside the image blanked (check by eye)")
        else:
            self.report.add(
                Removal("sector_outside", sid, {"keep_box": list(plan.roi), "frame_wh": list(size)}, "io.crop")
            )
        for b in plan.boxes:
            where = {"box": [b.x0, b.y0, b.x1, b.y1], "inside_sector": b.overlaps(plan.roi), "frames": "all"}
            self.report.add(Removal("burned_in_text", sid, where, self.detector.name, round(b.score, 4)))

    def video(self, scan: Scan, sid: str, subject: str) -> dict:
        """De-identify the frames (and DICOM tags) of one scan; return the output's manifest fields."""
        cfg = self.config.frames
        src = Path(scan.video_path)
        (self.out_dir / "videos").mkdir(parents=True, exist_ok=True)
        if is_dicom(src):
            ds = read_dicom(src)
            frames = dicom_frames(ds, src)
            for kind, keyword in self.dicom.scrub(ds, subject):
                self.report.add(Removal(kind, sid, {"tag": keyword}, self.dicom.name))
            step = max(1, len(frames) // 48)
            fps = float(scan.fps or getattr(ds, "RecommendedDisplayFrameRate", 0) or 10.0)
            plan = plan_from_frames(frames[::step], self.detector, cfg, len(frames) / fps)
            for f in frames:
                blank_frame(f, plan.roi, plan.boxes, cfg.box_pad_px)
            set_frames(ds, frames)
            ds.BurnedInAnnotation = "NO"  # only now: the pixels were blanked above
            self._frame_removals(sid, plan, (frames.shape[2], frames.shape[1]))
            dst = write_dicom(ds, self.out_dir / "videos" / f"{sid}.dcm")
            return {"video_path": dst, "n_frames": len(frames), "width": frames.shape[2], "height": frames.shape[1]}
        plan = plan_video(src, self.detector, cfg, scan.duration_s)
        dst = self.out_dir / "videos" / f"{sid}{output_suffix(cfg)}"
        info = write_clean_video(src, dst, plan, cfg)
        self._frame_removals(sid, plan, (info["width"], info["height"]))
        return {"video_path": dst, **info}

    def speech(self, scan: Scan, sid: str, subject: str, labels_dir: Path | None) -> tuple[dict, Path | None]:
        """Redact the labels document and silence the audio; returns (manifest fields, audio path or None)."""
        states, doc = read_scan_labels(labels_dir, scan.scan_id) if labels_dir is not None else (None, None)
        spans: list[tuple[float, float]] = []
        if doc is not None:
            lexicon = self.lexicon or doc.get("lexicon")
            if lexicon not in self._protected_for:
                self._protected_for[lexicon] = lexicon_words(lexicon)
            self.phi.protected = self._protected_for[lexicon]
            words = doc.get("words") or []
            texts = [str(w.get("text", "")) for w in words]
            found = self.phi.redact_words(texts)
            tokens: dict[str, str] = {}
            redacted_times = []
            for i, kind, detector, score in found:
                w = words[i]
                tokens[_bare(texts[i])] = REDACTED.format(kind=kind)
                w["text"] = REDACTED.format(kind=kind)
                redacted_times.append((float(w["start_s"]), float(w["end_s"])))
                where = {"start_s": w["start_s"], "end_s": w["end_s"], "word_index": i}
                self.report.add(Removal(f"spoken_{kind}", sid, where, detector, round(float(score), 4)))
            for seg in doc.get("segments") or []:
                text = redact_text(str(seg.get("text", "")), tokens)
                seg_words = text.split()
                for i, kind, detector, score in self.phi.redact_words(seg_words):
                    if not seg_words[i].startswith("["):
                        seg_words[i] = REDACTED.format(kind=kind)
                        self.report.add(
                            Removal(f"written_{kind}", sid, {"segment_start_s": seg.get("start_s")}, detector, score)
                        )
                seg["text"] = " ".join(seg_words)
            keep = [(float(e["start_s"]), float(e["end_s"])) for e in doc.get("events") or []]
            keep += [
                (float(w["start_s"]), float(w["end_s"])) for w, t in zip(words, texts) if _bare(t) in self.phi.protected
            ]
            spans = redact_spans(redacted_times, keep, self.config.speech.pad_s, float("inf"))
            doc["scan_id"], doc["subject_id"] = sid, subject
            info = doc.get("info") or {}
            info.update(scan_id=sid, subject_id=subject)
            info.pop("notes", None)
            doc["info"] = info
        if labels_dir is not None:
            write_scan_labels(self.out_dir / "labels", sid, states, doc)
        if doc is None:
            self.report.flag(sid, "no transcript in the labels folder: the audio cannot be checked, so it is left out")
            return {"audio_path": None, "audio_offset_s": 0.0}, None
        wav, sr = load_audio(scan.audio_source, allow_silent=True)
        offset = float(scan.audio_offset_s or 0.0)
        clean = silence_audio(
            wav,
            sr,
            [(s - offset, e - offset) for s, e in spans],
            self.config.speech.replacement,
            self.config.speech.tone_hz,
        )
        (self.out_dir / "audio").mkdir(parents=True, exist_ok=True)
        dst = save_audio(self.out_dir / "audio" / f"{sid}.wav", clean, sr)
        fields = {"audio_path": dst, "audio_offset_s": offset, "audio_sample_rate_hz": sr}
        fields["audio_duration_s"] = round(len(clean) / sr, 4)
        return fields, dst

    def scan(self, scan: Scan, labels_dir: Path | None) -> Scan:
        sid, subject = self.pseudonymizer.scan(scan.scan_id), self.pseudonymizer.subject(scan.subject_id)
        video = self.video(scan, sid, subject)
        audio, _ = self.speech(scan, sid, subject, labels_dir)
        return replace(scan, scan_id=sid, subject_id=subject, **video, **audio)


def check_paths(manifest: Path, labels_dir: Path | None, out_dir: Path, scans: list[Scan]) -> None:
    """Refuse an output folder inside an input folder (or holding an input): the shared copy must hold no original."""
    inputs = [manifest.parent, *(p for p in [labels_dir] if p is not None)]
    for folder in inputs:
        if inside(out_dir, folder):
            raise OutputError(out_dir, f"lies inside the input folder {folder}; write the shareable copy elsewhere")
    for s in scans:
        for p in (s.video_path, s.audio_path):
            if p is not None and inside(Path(p), out_dir):
                raise OutputError(out_dir, f"holds an input file ({p}); write the shareable copy elsewhere")


def deidentify(
    manifest: str | Path,
    labels_dir: str | Path | None,
    out_dir: str | Path,
    key_path: str | Path,
    *,
    mapping_path: str | Path | None = None,
    config: DeidConfig | None = None,
    lexicon: str | None = None,
    detector: TextDetector | None = None,
    phi: PhiFilter | None = None,
    progress: Progress = silent,
) -> DeidReport:
    """De-identify every scan of ``manifest`` (and its labels folder) into ``out_dir``; see the module docstring."""
    manifest, out_dir = Path(manifest), Path(out_dir)
    labels_dir = Path(labels_dir) if labels_dir is not None else None
    if labels_dir is not None and not labels_dir.is_dir():
        raise InputError(labels_dir, "labels folder not found")
    read = read_manifest(manifest)
    check_paths(manifest, labels_dir, out_dir, read.scans)
    config = config or DeidConfig()
    key = load_or_make_key(key_path, out_dir)
    mapping_path = Path(mapping_path) if mapping_path else Path(str(key_path) + ".mapping.csv")
    out_dir.mkdir(parents=True, exist_ok=True)
    with output_lock(out_dir):
        worker = Deidentifier(out_dir, Pseudonymizer(key, config.subjects), config, detector, phi, lexicon)
        worker.report.not_covered = list(NOT_COVERED)
        out_scans = []
        for i, scan in enumerate(read.scans):
            progress(i, len(read.scans), scan.scan_id)
            out_scans.append(worker.scan(scan, labels_dir))
        progress(len(read.scans), len(read.scans), "")
        kept = [c for c in KEPT_COLUMNS if c in read.table.columns]
        dropped = [c for c in read.table.columns if c not in kept and c not in Scan.__dataclass_fields__]
        if dropped:
            worker.report.flag("*", f"manifest columns left out (may hold free text): {', '.join(dropped)}")
        write_manifest(out_dir / "manifest.csv", out_scans, extra=read.table[kept].reset_index(drop=True))
        worker.report.detectors = {
            "frames": worker.detector.name,
            "speech": worker.phi.name,
            "dicom": worker.dicom.name,
            "subjects": "hmac-sha256",
        }
        write_mapping(mapping_path, worker.pseudonymizer, out_dir)
        worker.report.write(out_dir)
    return worker.report


@dataclass(frozen=True)
class Finding:
    scan_id: str
    kind: str
    where: str


def check(
    out_dir: str | Path,
    *,
    config: DeidConfig | None = None,
    detector: TextDetector | None = None,
    phi: PhiFilter | None = None,
    progress: Progress = silent,
) -> list[Finding]:
    """Run the detectors again on a de-identified folder; every finding is something still identifying."""
    out_dir = Path(out_dir)
    config = config or DeidConfig()
    read = read_manifest(out_dir / "manifest.csv")
    detector = detector or OcrTextDetector(config.frames.ocr_backend, config.frames.ocr_min_score)
    phi = phi or PhiFilter(config.speech)
    findings: list[Finding] = []
    prefix = config.subjects.prefix + "-"
    for i, scan in enumerate(read.scans):
        progress(i, len(read.scans), scan.scan_id)
        sid = scan.scan_id
        for what, value in (("scan_id", scan.scan_id), ("subject_id", scan.subject_id)):
            if not value.startswith(prefix):
                findings.append(Finding(sid, what, f"{what} is not a pseudonym"))
        check_cfg = replace(config.frames, blank_outside_sector=False)
        if is_dicom(Path(scan.video_path)):
            ds = read_dicom(Path(scan.video_path))
            findings += [Finding(sid, "dicom_tag", v) for v in profile_violations(ds)]
            frames = dicom_frames(ds, Path(scan.video_path))
            plan = plan_from_frames(frames[:: max(1, len(frames) // 48)], detector, check_cfg, scan.duration_s)
        else:
            plan = plan_video(scan.video_path, detector, check_cfg, scan.duration_s)
        findings += [
            Finding(sid, "burned_in_text", f"box {[b.x0, b.y0, b.x1, b.y1]} score {b.score:.2f}") for b in plan.boxes
        ]
        _, doc = read_scan_labels(out_dir / "labels", sid)
        if doc is not None:
            lexicon = doc.get("lexicon")
            phi.protected = lexicon_words(lexicon)
            texts = [str(w.get("text", "")) for w in doc.get("words") or []]
            for i_word, kind, detector_name, _ in phi.redact_words(texts):
                if not texts[i_word].startswith("["):
                    findings.append(Finding(sid, f"spoken_{kind}", f"word {i_word} ({detector_name})"))
            for seg in doc.get("segments") or []:
                seg_words = str(seg.get("text", "")).split()
                for i_word, kind, _, _ in phi.redact_words(seg_words):
                    if not seg_words[i_word].startswith("["):
                        findings.append(Finding(sid, f"written_{kind}", f"segment at {seg.get('start_s')} s"))
            if doc.get("subject_id") not in (None, scan.subject_id):
                findings.append(Finding(sid, "subject_id", "labels document names another subject"))
    progress(len(read.scans), len(read.scans), "")
    return findings

"""Tell -> labels: clean, detect speech, diarize, transcribe, spot terms, align them to frames.

The audio is streamed in chunks (bounded memory for an hour-long scan): each chunk joins
the unfinished tail of the last, voice activity detection finds speech spans, finished
spans are cleaned, embedded (for diarization) and transcribed; diarization clusters the
embeddings once the stream ends. Hyper-parameters live in ``configs/pipelines/*.yaml``.

Example:
    >>> pipe = SpeechPipeline.from_config("speech", lexicon="abdominal")  # doctest: +SKIP
    >>> result = pipe.label_scan(scan)  # doctest: +SKIP
    >>> result.events[0].label, result.frames.present_labels(40)  # doctest: +SKIP
    ('liver', ['liver'])
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterable

import numpy as np

from sonotell.config import did_you_mean, load_config, packaged_default
from sonotell.errors import ConfigError, InputError
from sonotell.io.audio import SILENCE_RMS, resample
from sonotell.labels import FrameStates
from sonotell.speech import clean as cleaning
from sonotell.speech.align import AlignConfig, align_states
from sonotell.speech.diarize import (
    CLINICIAN,
    DiarizeConfig,
    assign_speakers,
    cluster_windows,
    dominant_speaker,
    embed,
    name_clusters,
    pause_splits,
    window_embeddings,
    windows_to_turns,
)
from sonotell.speech.forced import ForcedAligner, WordAlignConfig
from sonotell.speech.lexicon import Lexicon, load_lexicon
from sonotell.speech.spot import Spotter, merge_events
from sonotell.speech.stream import StreamConfig, StreamStats, check_chunk_s, iter_audio_chunks
from sonotell.speech.transcribe import (
    AsrBackend,
    TranscribeConfig,
    create_backend,
    pack_spans,
    packed_layout,
    unpack_words,
)
from sonotell.speech.vad import VadConfig, create_vad, spans_to_mask
from sonotell.types import Scan, TermEvent, Word

log = logging.getLogger(__name__)


@dataclass
class SpeechResult:
    """Everything the pipeline found in one recording (times on the video clock).

    ``frames``: per frame and lexicon label present / absent / unknown (``label_scan``; None for audio alone).
    ``view_starts``: the first frame of each view of the video (None when not detected).
    """

    words: list[Word]
    events: list[TermEvent]
    segments: list[dict]  # {speaker, start_s, end_s, text}
    info: dict = field(default_factory=dict)
    frames: FrameStates | None = None
    view_starts: list[int] | None = None

    def to_dict(self) -> dict:
        out = {
            "info": self.info,
            "events": [asdict(e) for e in self.events],
            "segments": self.segments,
            "words": [asdict(w) for w in self.words],
        }
        if self.view_starts is not None:
            out["view_starts"] = list(self.view_starts)
        return out


def scan_view_starts(scan: Scan, cfg: AlignConfig) -> list[int]:
    """The first frame of each view of a scan's video (``sonotell.io.views``, settings from ``align``)."""
    from sonotell.io.views import video_view_starts

    return video_view_starts(
        scan.video_path,
        size=cfg.view_size,
        threshold=cfg.view_change,
        ratio=cfg.view_change_ratio,
        persist=cfg.view_persist,
    )


def recipe_fingerprint(config: dict, lexicon: Lexicon) -> str:
    """A short hash of a pipeline config and a lexicon's forms; ``resources`` (where it runs) is not part of it."""
    config = {k: v for k, v in config.items() if k != "resources"}
    blob = json.dumps(
        {
            "config": config,
            "lexicon": [(f.text, f.label, f.kind) for f in lexicon.forms],
            "scopes": lexicon.scopes,
            "labels_format": 2,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


@dataclass
class _Span:
    """One ASR call: a speech span, its words per backend, and its speaker turns (sub-spans split at pauses)."""

    start_s: float  # audio clock
    end_s: float
    words: list[list[Word]]
    turns: list[tuple[float, float]]
    embeddings: list[np.ndarray]
    windows: np.ndarray | None = None  # diarize.mode=windows: (n, 2) window times on the audio clock


class SpeechPipeline:
    """The configured pipeline; build once, run on many recordings (not thread-safe: one per worker).

    Args:
        config: the pipeline config (see ``configs/pipelines/speech.yaml``).
        lexicon: a ``Lexicon``, a packaged lexicon name or a YAML path.
        backend: an ASR backend object, overriding ``config["transcribe"]["backend"]``.
        enrolment: a clinician voice sample (16 kHz mono) to pick the clinician by voice.
    """

    SECTIONS = (
        "sample_rate_hz",
        "stream",
        "clean",
        "vad",
        "diarize",
        "transcribe",
        "word_times",
        "spot",
        "align",
        "resources",
    )

    def __init__(
        self,
        config: dict | None,
        lexicon: Lexicon | str | Path,
        backend: AsrBackend | None = None,
        enrolment: np.ndarray | None = None,
    ):
        config = load_config("pipelines", "speech") if config is None else config
        for key in config:
            if key not in self.SECTIONS:
                raise ConfigError(f"unknown setting {key!r}" + did_you_mean(key, list(self.SECTIONS)))
        self.config = config
        self.lexicon = lexicon if isinstance(lexicon, Lexicon) else load_lexicon(lexicon)
        self.sample_rate_hz = int(
            config.get("sample_rate_hz", packaged_default("pipelines", "speech", "sample_rate_hz"))
        )
        tcfg = TranscribeConfig.from_dict(config.get("transcribe"))
        self.backend = backend or create_backend(tcfg.backend, self.lexicon)
        self.extra_backends = [create_backend(spec, self.lexicon) for spec in tcfg.combine or []]
        self.asr_pad_s = tcfg.pad_s
        # span: one ASR call per speech span | region: one per group of spans, in place | packed: spans packed
        # one after another into windows of region_max_s (one Whisper window each)
        self.asr_scope = tcfg.scope
        self.region_max_s = tcfg.region_max_s
        self.pack_gap_s = tcfg.pack_gap_s
        vcfg = VadConfig.from_dict(config.get("vad"))
        self.vad_name = vcfg.name
        self.vad = create_vad(**vcfg.to_dict())
        self.clean_cfg = cleaning.CleanConfig.from_dict(config.get("clean"))
        self.diarize_cfg = DiarizeConfig.from_dict(config.get("diarize"))
        self.keep = self.diarize_cfg.keep
        enrol_source = "<enrolment sample>"
        if self.diarize_cfg.enrol_wav and enrolment is None:
            from sonotell.io.audio import load_audio

            enrol_source = self.diarize_cfg.enrol_wav  # any supported rate: resampled to the pipeline's
            enrolment = load_audio(enrol_source, self.sample_rate_hz)[0]
        self.spotter = Spotter.from_dict(config.get("spot"), lexicon=self.lexicon)
        self.align_cfg = AlignConfig.from_dict(config.get("align"))
        wcfg = WordAlignConfig.from_dict(config.get("word_times", {"enabled": False}))
        self.aligner = ForcedAligner(self.lexicon, wcfg) if wcfg.enabled else None
        scfg = StreamConfig.from_dict(config.get("stream"))
        self.chunk_s = check_chunk_s(scfg.chunk_s)  # 0 or less never ends
        self.max_segment_s = check_chunk_s(scfg.max_segment_s, "stream.max_segment_s")
        self.guard_s = scfg.guard_s
        if enrolment is not None:
            enrolment = embed(check_enrolment(enrolment, self.sample_rate_hz, enrol_source))
        self.enrolment = enrolment
        self._enrol_info: dict = {}

    @classmethod
    def from_config(
        cls,
        name_or_path: str | Path = "speech",
        lexicon: Lexicon | str | Path = "abdominal",
        overrides: list[str] | None = None,
        **kwargs,
    ) -> "SpeechPipeline":
        return cls(load_config("pipelines", name_or_path, overrides), lexicon, **kwargs)

    @property
    def fingerprint(self) -> str:
        """A short hash of config + lexicon: labels made with another recipe are not reused."""
        return recipe_fingerprint(self.config, self.lexicon)

    # -- entry points -------------------------------------------------------------------

    def process_file(self, path: str | Path, audio_offset_s: float = 0.0) -> SpeechResult:
        """Stream a file (wav/flac/ogg/mp3 or a video's audio track) through the pipeline."""
        stats = StreamStats()
        result = self._run(iter_audio_chunks(path, self.sample_rate_hz, self.chunk_s, stats), audio_offset_s, stats)
        if stats.rms < SILENCE_RMS:
            raise InputError(path, "audio is silent")
        if stats.clipped_fraction > self.clean_cfg.clipped_fraction_warn:
            log.warning("%s: %.1f%% of samples are clipped; recognition may suffer", path, 100 * stats.clipped_fraction)
        for note in stats.notes:
            log.info("%s: %s", path, note)
        result.info.update(
            native_rate_hz=stats.native_rate_hz,
            channels=stats.channels,
            clipped_fraction=round(stats.clipped_fraction, 5),
            notes=stats.notes,
        )
        return result

    def process_audio(self, wav: np.ndarray, sample_rate_hz: int, audio_offset_s: float = 0.0) -> SpeechResult:
        """Run on audio already in memory (mono float32)."""
        wav = resample(np.asarray(wav, np.float32), sample_rate_hz, self.sample_rate_hz)
        size = int(self.chunk_s * self.sample_rate_hz)
        return self._run((wav[i : i + size] for i in range(0, len(wav), size)), audio_offset_s, None)

    def label_scan(self, scan: Scan) -> SpeechResult:
        """Process a scan's audio and label every frame of its video."""
        result = self.process_file(scan.audio_source, scan.audio_offset_s)
        fps, n_frames = scan.fps, scan.n_frames
        if not fps or not n_frames:
            from sonotell.io.video import probe_video

            info = probe_video(scan.video_path)
            fps, n_frames = info.fps, info.n_frames
        times = _variable_frame_times(scan)
        if "view" in self.lexicon.scopes.values():  # decode the frames only when a label holds for its view
            try:
                result.view_starts = scan_view_starts(scan, self.align_cfg)
            except InputError as e:  # the labels need only fps and n_frames; a video problem is ingest's to report
                log.warning("%s; views unknown, a view-scope mention holds for align.max_view_s", e)
        result.frames = align_states(
            result.events,
            self.lexicon.labels,
            fps=fps,
            n_frames=n_frames,
            config=self.align_cfg,
            times=times,
            scopes=self.lexicon.scopes,
            view_starts=result.view_starts,
        )
        result.info.update(scan_id=scan.scan_id, subject_id=scan.subject_id, fps=fps, n_frames=len(result.frames))
        if times is not None:
            result.info["variable_frame_rate"] = True
        return result

    # -- the stream ---------------------------------------------------------------------

    def _run(self, chunks: Iterable[np.ndarray], offset_s: float, stats: StreamStats | None) -> SpeechResult:
        t0, c0 = time.perf_counter(), time.process_time()
        for backend in [self.backend, *self.extra_backends]:
            reset = getattr(backend, "reset", None)  # a recogniser that adapts: each recording starts afresh
            if reset is not None:
                reset()
        sr = self.sample_rate_hz
        spans: list[_Span] = []
        buffer = np.zeros(0, np.float32)
        buf_start = 0  # sample index of buffer[0]
        denoised_chunks = 0
        snrs = []
        pending: list[tuple[int, int, np.ndarray]] = []  # packed scope: spans waiting for a full window
        chunk_iter = iter(chunks)
        chunk = next(chunk_iter, None)
        while chunk is not None:
            nxt = next(chunk_iter, None)
            final = nxt is None
            buffer = np.concatenate([buffer, chunk])
            cut, done, snr, denoised = self._segment(buffer, final)
            snrs += [snr] if snr is not None else []
            denoised_chunks += int(denoised)
            if self.asr_scope == "packed":
                # spans keep their own audio (views of this buffer: the buffer is re-allocated, never written)
                pending += [(buf_start + s, buf_start + e, audio) for s, e, audio in done]
                spans += self._process_packs(pending, final)
            elif self.asr_scope == "region":
                for group in group_spans([(s, e) for s, e, _ in done], int(self.region_max_s * sr)):
                    spans += self._process_region([done[i] for i in group], buf_start)
            else:
                for s, e, audio in done:
                    spans.append(self._process_span(audio, (buf_start + s) / sr, (buf_start + e) / sr))
            buffer = buffer[cut:]
            buf_start += cut
            chunk = nxt
        duration_s = (buf_start + len(buffer)) / sr
        result = self._finish(spans, offset_s, duration_s, time.perf_counter() - t0, snrs, denoised_chunks)
        cpu_s = time.process_time() - c0  # CPU seconds of this process: the RTF "on one core" on a shared machine
        result.info.update(
            cpu_s=round(cpu_s, 3), cpu_real_time_factor=round(cpu_s / duration_s, 4) if duration_s else None
        )
        return result

    def _segment(
        self, buffer: np.ndarray, final: bool
    ) -> tuple[int, list[tuple[int, int, np.ndarray]], float | None, bool]:
        """Speech spans ready to transcribe, and where the unfinished tail starts."""
        sr = self.sample_rate_hz
        n = len(buffer)
        max_len = int(self.max_segment_s * sr)
        if self.vad is None:  # fixed windows: the plain baseline
            if not final and n < max_len:
                return 0, [], None, False
            bounds = [(i, min(n, i + max_len)) for i in range(0, n if final else n - n % max_len, max_len)]
            return bounds[-1][1] if bounds else 0, [(s, e, buffer[s:e]) for s, e in bounds], None, False
        spans = [(int(s * sr), int(e * sr)) for s, e in self.vad(buffer, sr)]
        snr = cleaning.estimate_snr_db(buffer, spans_to_mask([(s / sr, e / sr) for s, e in spans], n, sr))
        audio = buffer
        denoised = cleaning.should_denoise(self.clean_cfg, snr)
        if denoised:
            noise = buffer[~spans_to_mask([(s / sr, e / sr) for s, e in spans], n, sr)]
            audio = cleaning.denoise(
                buffer, sr, noise if len(noise) >= sr // 4 else None, self.clean_cfg.denoise_prop_decrease
            )
        guard = int(self.guard_s * sr)
        done, cut = [], n if final else max(0, n - guard)
        for s, e in spans:
            if final or e < n - guard:
                for a in range(s, e, max_len):  # very long speech without a pause: split
                    done.append((a, min(e, a + max_len), audio[a : min(e, a + max_len)]))
            else:
                cut = min(cut, s)
                break
        if not final and cut == 0 and n > 2 * max_len:  # an unending span: force it out
            done.append((0, max_len, audio[:max_len]))
            cut = max_len
        return cut, done, snr, denoised

    def _normalise(self, audio: np.ndarray) -> np.ndarray:
        if self.clean_cfg.target_rms_dbfs is not None:
            return cleaning.normalise_loudness(audio, self.clean_cfg.target_rms_dbfs)
        return audio

    def _process_region(self, done: list[tuple[int, int, np.ndarray]], buf_start: int) -> list[_Span]:
        """One ASR call over several speech spans (their audio in place, silence between): a recogniser
        like Whisper then decodes whole sentences with their context; each word goes back to the span it overlaps."""
        sr = self.sample_rate_hz
        first, last = done[0][0], done[-1][1]
        pad = int(self.asr_pad_s * sr)
        region = np.zeros(last - first + 2 * pad, np.float32)
        normalised = []
        for s, e, audio in done:
            audio = self._normalise(audio)
            normalised.append(audio)
            region[pad + s - first : pad + e - first] = audio
        region_start_s = (buf_start + first - pad) / sr
        bounds = [((buf_start + s) / sr, (buf_start + e) / sr) for s, e, _ in done]
        per_span: list[list[list[Word]]] = [[] for _ in done]
        for backend in [self.backend, *self.extra_backends]:
            x = region if backend.sample_rate_hz == sr else resample(region, sr, backend.sample_rate_hz)
            got = [
                Word(w.text, region_start_s + w.start_s, region_start_s + w.end_s, w.confidence)
                for w in backend.transcribe(x, backend.sample_rate_hz)
            ]
            owner = assign_to_spans([(w.start_s, w.end_s) for w in got], bounds, self.asr_pad_s)
            for k in range(len(done)):
                per_span[k].append([w for w, o in zip(got, owner) if o == k])
        return [
            self._process_span(audio, a, b, words=words, normalised=True)
            for audio, (a, b), words in zip(normalised, bounds, per_span)
        ]

    def _process_packs(self, pending: list[tuple[int, int, np.ndarray]], final: bool) -> list[_Span]:
        """Decode the full windows of ``pending`` spans (all of them when ``final``); the rest stay pending.

        Spans are packed one after another (``pack_gap_s`` of silence between them, ``pad_s`` at the ends) into
        windows of at most ``region_max_s``; each window is one recogniser call and each word goes back to its
        span with exact times (``unpack_words``).
        """
        sr = self.sample_rate_hz
        gap, pad = int(self.pack_gap_s * sr), int(self.asr_pad_s * sr)
        groups = pack_spans([e - s for s, e, _ in pending], int(self.region_max_s * sr), gap, pad)
        ready = groups if final else groups[:-1]  # the last window may still take spans of the next chunk
        out: list[_Span] = []
        for group in ready:
            parts = [(s, e, self._normalise(audio)) for s, e, audio in (pending[i] for i in group)]
            n, pieces = packed_layout([len(a) for _, _, a in parts], [s / sr for s, _, _ in parts], gap, pad, sr)
            window = np.zeros(n, np.float32)
            for piece, (_, _, audio) in zip(pieces, parts):
                at = round(piece.packed_start_s * sr)
                window[at : at + len(audio)] = audio
            per_span: list[list[list[Word]]] = [[] for _ in parts]
            for backend in [self.backend, *self.extra_backends]:
                x = window if backend.sample_rate_hz == sr else resample(window, sr, backend.sample_rate_hz)
                for k, words in enumerate(unpack_words(backend.transcribe(x, backend.sample_rate_hz), pieces)):
                    per_span[k].append(words)
            del window
            out += [
                self._process_span(audio, s / sr, e / sr, words=words, normalised=True)
                for (s, e, audio), words in zip(parts, per_span)
            ]
        del pending[: sum(len(g) for g in ready)]
        return out

    def _process_span(
        self,
        audio: np.ndarray,
        start_s: float,
        end_s: float,
        words: list[list[Word]] | None = None,
        normalised: bool = False,
    ) -> _Span:
        sr = self.sample_rate_hz
        if not normalised:
            audio = self._normalise(audio)
        turns, embeddings, windows = [(start_s, end_s)], [], None
        if self.diarize_cfg.enabled and self.vad is not None and self.diarize_cfg.mode == "windows":
            times, emb = window_embeddings(audio, self.diarize_cfg.window_s, self.diarize_cfg.hop_s)
            windows, embeddings = times + start_s, list(emb)
        elif self.diarize_cfg.enabled and self.vad is not None:
            # turns are split at short pauses for diarization only; ASR keeps the whole span's context
            cuts = pause_splits(audio, sr, self.diarize_cfg.turn_pause_s, min_part_s=self.diarize_cfg.min_span_s)
            bounds = [0, *cuts, len(audio)]
            turns = [(start_s + a / sr, start_s + b / sr) for a, b in zip(bounds[:-1], bounds[1:])]
            embeddings = [embed(audio[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
        if words is None:
            pad = np.zeros(int(self.asr_pad_s * sr), np.float32)
            padded = np.concatenate([pad, audio, pad])
            words = []
            for backend in [self.backend, *self.extra_backends]:
                x = padded if backend.sample_rate_hz == sr else resample(padded, sr, backend.sample_rate_hz)
                got = backend.transcribe(x, backend.sample_rate_hz)
                words.append(
                    [
                        Word(
                            w.text,
                            start_s + w.start_s - self.asr_pad_s,
                            start_s + w.end_s - self.asr_pad_s,
                            w.confidence,
                        )
                        for w in got
                    ]
                )
        if self.aligner is not None and words and words[0]:
            # the main recogniser's words re-timed by forced alignment within this span (span clock -> audio clock)
            rel = [replace(w, start_s=w.start_s - start_s, end_s=w.end_s - start_s) for w in words[0]]
            got = self.aligner.align(audio, sr, rel)
            words = [
                [replace(w, start_s=round(w.start_s + start_s, 4), end_s=round(w.end_s + start_s, 4)) for w in got],
                *words[1:],
            ]
        return _Span(start_s, end_s, words, turns, embeddings, windows)

    def _window_speakers(self, spans: list[_Span]) -> list[str]:
        """Cluster every window of the recording, re-segment each span at speaker changes (sets ``span.turns``)."""
        cfg = self.diarize_cfg
        emb = np.stack([e for span in spans for e in span.embeddings])
        if cfg.window_method == "dominant":
            # split main voice / the rest without the enrolment (refitting from an enrolled sample drifted to
            # whoever talks most, so enrolling a minority voice changed nothing: issue 11); then the
            # enrolled voice picks the side it resembles
            main, centroid = dominant_speaker(emb, cfg.other_below)
            kept_minority = False
            if self.enrolment is not None and not main.all():
                rest = emb[~main].mean(0)
                rest = rest / (np.linalg.norm(rest) + 1e-9)
                if float(rest @ self.enrolment) > float(centroid @ self.enrolment):
                    main, centroid, kept_minority = ~main, rest, True
            ids = np.where(main, 0, 1)
        else:
            ids = cluster_windows(emb, cfg.distance_threshold, cfg.max_cluster_windows)
        turn_ids, k = [], 0
        for span in spans:
            n = len(span.embeddings)
            got = windows_to_turns(span.windows, ids[k : k + n].tolist(), (span.start_s, span.end_s), cfg.min_turn_s)
            k += n
            span.turns = [(a, b) for a, b, _ in got]
            turn_ids += [c for _, _, c in got]
        turn_ids = np.array(turn_ids)
        if cfg.window_method == "dominant":
            similarity = (
                float(centroid @ self.enrolment / (np.linalg.norm(self.enrolment) + 1e-9))
                if self.enrolment is not None
                else 1.0
            )
            if similarity < cfg.enrol_min_similarity:
                log.warning("no speaker resembles the enrolled clinician (cosine %.2f); nobody kept", similarity)
            names = {0: CLINICIAN if similarity >= cfg.enrol_min_similarity else "speaker_1", 1: "speaker_0"}
            if self.enrolment is not None:
                matched = similarity >= cfg.enrol_min_similarity
                self._enrol_info = {
                    "enrolment_used": True,
                    "enrolment_score": round(similarity, 3),
                    "enrolment_threshold": cfg.enrol_min_similarity,
                    "kept_speaker": CLINICIAN if matched else None,
                    "kept_side": ("minority" if kept_minority else "majority") if matched else None,
                }
                if not matched:
                    self._enrol_info["note"] = (
                        f"no speaker resembles the enrolled voice (cosine {similarity:.2f} < "
                        f"{cfg.enrol_min_similarity}): nobody kept, no events"
                    )
            return [names[c] for c in turn_ids.tolist()]
        durations = np.array([b - a for span in spans for a, b in span.turns])
        centroids = np.stack([emb[ids == c].mean(0) for c in turn_ids])  # for enrolment: a turn's cluster centroid
        names = name_clusters(turn_ids, durations, centroids, cfg, self.enrolment)
        return [names[c] for c in turn_ids.tolist()]

    def _finish(
        self,
        spans: list[_Span],
        offset_s: float,
        duration_s: float,
        elapsed_s: float,
        snrs: list[float],
        denoised_chunks: int,
    ) -> SpeechResult:
        windowed = bool(spans) and self.diarize_cfg.enabled and spans[0].windows is not None
        speakers = self._window_speakers(spans) if windowed else []  # also re-cuts span.turns
        turns = [t for span in spans for t in span.turns]
        if windowed:
            if len(speakers) != len(turns):
                raise RuntimeError(f"diarization gave {len(speakers)} speakers for {len(turns)} turns")
        elif turns and self.diarize_cfg.enabled and spans[0].embeddings:
            speakers = assign_speakers(
                turns, np.stack([e for span in spans for e in span.embeddings]), self.diarize_cfg, self.enrolment
            )
        else:
            speakers = [CLINICIAN] * len(turns)
        all_words, events, segments = [], [], []
        k = 0
        for span in spans:
            span_speakers = speakers[k : k + len(span.turns)]
            k += len(span.turns)

            by_backend = [
                [
                    Word(
                        w.text,
                        round(w.start_s + offset_s, 4),
                        round(w.end_s + offset_s, 4),
                        w.confidence,
                        speaker_of_word(span.turns, span_speakers, w.start_s, w.end_s),
                        w.aligned,
                    )
                    for w in ws
                ]
                for ws in span.words
            ]
            all_words += by_backend[0]
            for (a, b), who in zip(span.turns, span_speakers):
                text = " ".join(
                    w.text
                    for w in by_backend[0]
                    if a <= (w.start_s + w.end_s) / 2 - offset_s < b
                    or (b == span.turns[-1][1] and (w.start_s + w.end_s) / 2 - offset_s >= b)
                )
                segments.append(
                    {"speaker": who, "start_s": round(a + offset_s, 4), "end_s": round(b + offset_s, 4), "text": text}
                )
            keep = [[w for w in ws if self.keep == "all" or w.speaker == CLINICIAN] for ws in by_backend]
            events += merge_events([self.spotter.spot(ws) for ws in keep])
        info = {
            "enrolment_used": self.enrolment is not None,
            **self._enrol_info,
            "duration_s": round(duration_s, 3),
            "elapsed_s": round(elapsed_s, 3),
            "real_time_factor": round(elapsed_s / duration_s, 4) if duration_s else None,
            "speech_s": round(sum(s.end_s - s.start_s for s in spans), 3),
            "speakers": sorted(set(speakers)),
            "speech_s_by_speaker": {
                who: round(sum(b - a for (a, b), w in zip(turns, speakers) if w == who), 3)
                for who in sorted(set(speakers))
            },
            "snr_db_estimate": round(float(np.median(snrs)), 2) if snrs else None,
            "denoised_chunks": denoised_chunks,
            "n_events": len(events),
        }
        if self.aligner is not None:
            n_words = len(all_words)
            info["words_aligned"] = sum(bool(w.aligned) for w in all_words)
            info["words_recogniser_times"] = n_words - info["words_aligned"]
        if not spans:
            log.warning("no speech found")
        self._enrol_info = {}
        return SpeechResult(all_words, events, segments, info)


MIN_ENROL_SPEECH_S = 1.0


def check_enrolment(wav: np.ndarray, sample_rate_hz: int, source: str | Path) -> np.ndarray:
    """An enrolment sample fit to embed, or ``InputError`` naming it: silent, or under ``MIN_ENROL_SPEECH_S``
    seconds of sound (a speaker embedding of less is mostly noise)."""
    wav = np.asarray(wav, np.float32).reshape(-1)
    if wav.size == 0 or float(np.sqrt(np.mean(wav.astype(np.float64) ** 2))) < SILENCE_RMS:
        raise InputError(source, "the enrolment sample is silent")
    frame = max(1, sample_rate_hz // 100)
    n = len(wav) // frame
    level = np.sqrt(np.mean(wav[: n * frame].astype(np.float64).reshape(n, frame) ** 2, axis=1)) if n else np.zeros(0)
    voiced_s = float(np.sum(level > 0.1 * level.max())) * frame / sample_rate_hz if n else 0.0
    if voiced_s < MIN_ENROL_SPEECH_S:
        raise InputError(
            source, f"the enrolment sample is too short ({voiced_s:.1f} s of sound; at least {MIN_ENROL_SPEECH_S} s)"
        )
    return wav


def group_spans(spans: list[tuple[int, int]], max_len: int) -> list[list[int]]:
    """Consecutive spans grouped so that each group's extent (first start to last end) is at most ``max_len``.

    Example:
        >>> group_spans([(0, 10), (20, 35), (40, 50), (90, 95)], 50)
        [[0, 1, 2], [3]]
    """
    groups: list[list[int]] = []
    for i, (_s, e) in enumerate(spans):
        if groups and e - spans[groups[-1][0]][0] <= max_len:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def assign_to_spans(
    words: list[tuple[float, float]], spans: list[tuple[float, float]], pad_s: float
) -> list[int | None]:
    """For each word, the span (widened by ``pad_s``) it overlaps most; ``None`` for a word in no span (said in a
    gap: dropped).

    Example:
        >>> assign_to_spans([(0.2, 0.5), (0.9, 1.3), (2.0, 2.2)], [(0.0, 1.0), (1.1, 1.8)], 0.05)
        [0, 1, None]
    """
    owner: list[int | None] = []
    for a, b in words:
        overlaps = [max(0.0, min(b, e + pad_s) - max(a, s - pad_s)) for s, e in spans]
        best = int(np.argmax(overlaps)) if overlaps else 0
        owner.append(best if overlaps and overlaps[best] > 0 else None)
    return owner


def speaker_of_word(turns: list[tuple[float, float]], speakers: list[str], start_s: float, end_s: float) -> str:
    """The speaker whose turns overlap the word most (ties: the speaker met first); a word outside every turn takes
    the nearest.

    Example:
        >>> speaker_of_word([(0.0, 1.0), (1.0, 2.0)], ["clinician", "speaker_0"], 0.8, 1.5)
        'speaker_0'
    """
    overlap: dict[str, float] = {}
    for (a, b), who in zip(turns, speakers):
        overlap[who] = overlap.get(who, 0.0) + max(0.0, min(b, end_s) - max(a, start_s))
    best = max(overlap, key=lambda who: overlap[who]) if overlap else None
    if best is not None and overlap[best] > 0:
        return best
    mid = (start_s + end_s) / 2
    k = min(range(len(turns)), key=lambda i: max(turns[i][0] - mid, mid - turns[i][1], 0.0))
    return speakers[k]


def _variable_frame_times(scan: Scan):
    """Presentation times of a variable-frame-rate scan's frames; None for a constant rate (index / fps)."""
    from sonotell.io.video import variable_frame_times

    try:
        return variable_frame_times(scan.video_path)
    except InputError:  # the labels need only fps and n_frames; a video problem is ingest's to report
        return None

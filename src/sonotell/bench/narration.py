"""Narration tracks: lines of speech placed on the scan's clock, synthesised, mixed, with ground truth.

A line's text marks its terms inline as ``[what is said](label)``, or ``[what is said](!label)``
for a negated mention ("[no effusion](!effusion)"). The truth of every term is the span of
its words as eSpeak reports them, so the benchmark knows when each term was said.

Example:
    >>> parse_markup("here is the [gall bladder](gallbladder)")
    ('here is the gall bladder', [(12, 24, 'gallbladder', False)])
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import numpy as np

from sonotell.data.tts import EspeakTTS, Speech, Voice
from sonotell.io.audio import resample

log = logging.getLogger(__name__)

_MARKUP = re.compile(r"\[([^\]]+)\]\((!?)([^)]+)\)")
_TOKEN = re.compile(r"[A-Za-z0-9']+")


@dataclass
class Line:
    """One utterance to place.

    Attributes:
        text: markup text (terms as ``[said](label)``).
        speaker: who says it (``clinician``, ``patient``, ``trainee``).
        voice: the eSpeak voice.
        at_s: wanted start time, video clock.
        latest_s: the line is dropped if it cannot start by then (None: any time before the end).
        gain_db: level relative to the clinician (a patient is further from the microphone).
        filler: fillers fill gaps after every non-filler line has been placed.
    """

    text: str
    speaker: str
    voice: Voice
    at_s: float
    latest_s: float | None = None
    gain_db: float = 0.0
    filler: bool = False


@dataclass
class PlacedLine:
    line: Line
    start_s: float  # video clock
    speech: Speech  # resampled to the track rate
    plain: str
    terms: list[tuple[int, int, str, bool]]

    @property
    def end_s(self) -> float:
        return self.start_s + len(self.speech.audio) / self.speech.sample_rate_hz


@dataclass
class Narration:
    """A rendered track (audio clock starts at ``audio_offset_s`` on the video clock) and its truth."""

    audio: np.ndarray
    sample_rate_hz: int
    audio_offset_s: float
    segments: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    speech_only: np.ndarray | None = None


def parse_markup(text: str) -> tuple[str, list[tuple[int, int, str, bool]]]:
    """Strip term markup; return the plain text and (char_start, char_end, label, negated) per term.

    Hyphens become spaces (eSpeak reads "B-lines" as one word event and drops "lines").
    """
    plain, terms, pos = [], [], 0
    out_len = 0
    for m in _MARKUP.finditer(text):
        before = text[pos : m.start()].replace("-", " ")
        plain.append(before)
        out_len += len(before)
        said = m.group(1).replace("-", " ")
        terms.append((out_len, out_len + len(said), m.group(3).strip(), m.group(2) == "!"))
        plain.append(said)
        out_len += len(said)
        pos = m.end()
    plain.append(text[pos:].replace("-", " "))
    return "".join(plain), terms


def word_times(plain: str, speech: Speech) -> list[tuple[int, int, str, float, float]]:
    """Match eSpeak word events to the text's tokens: (char_start, char_end, token, start_s, end_s)."""
    tokens = [(m.start(), m.end(), m.group(0)) for m in _TOKEN.finditer(plain)]
    out, k = [], 0
    for (pos, _length), (_w, start, end) in zip(speech.positions, speech.words):
        while k < len(tokens) and tokens[k][1] <= pos:  # first token ending after the event's position
            k += 1
        if k == len(tokens):
            break
        if out and out[-1][0] == tokens[k][0]:
            continue  # eSpeak split one token (e.g. "3rd"): keep the first event's start
        out.append((tokens[k][0], tokens[k][1], tokens[k][2], start, end))
        k += 1
    # a token eSpeak merged into the previous event ends where the next event starts: fix ends
    fixed = []
    for i, (a, b, tok, s, e) in enumerate(out):
        nxt = out[i + 1][3] if i + 1 < len(out) else e
        fixed.append((a, b, tok, s, max(s, min(e, nxt)) if i + 1 < len(out) else e))
    return fixed


def render(
    lines: list[Line],
    *,
    duration_s: float,
    sample_rate_hz: int,
    tts: EspeakTTS,
    audio_offset_s: float = 0.0,
    min_gap_s: float = 0.15,
) -> Narration:
    """Synthesise ``lines``, place them without overlap on a track of ``duration_s``, and build the truth.

    Non-filler lines are placed in order of ``at_s``, each pushed after the previous one;
    a line that cannot start by ``latest_s`` or would run past the end is dropped. Fillers
    then take the first gap after their ``at_s`` that fits them.
    """
    placed: list[PlacedLine] = []
    dropped: list[str] = []
    busy: list[tuple[float, float]] = []
    for line in sorted([l for l in lines if not l.filler], key=lambda l: l.at_s) + [l for l in lines if l.filler]:
        plain, terms = parse_markup(line.text)
        speech = _synth(tts, plain, line.voice, sample_rate_hz)
        length = len(speech.audio) / sample_rate_hz
        start = _first_fit(
            busy, max(line.at_s, audio_offset_s), length, min_gap_s, duration_s, after_last=not line.filler
        )
        latest = duration_s - length if line.latest_s is None else min(line.latest_s, duration_s - length)
        if start is None or start > latest + 1e-9:
            dropped.append(plain)
            continue
        busy.append((start, start + length))
        busy.sort()
        placed.append(PlacedLine(line, start, speech, plain, terms))
    placed.sort(key=lambda p: p.start_s)

    n = int(round((duration_s - audio_offset_s) * sample_rate_hz))
    track = np.zeros(n, np.float64)
    segments, events = [], []
    for p in placed:
        i0 = int(round((p.start_s - audio_offset_s) * sample_rate_hz))
        chunk = p.speech.audio.astype(np.float64) * 10 ** (p.line.gain_db / 20)
        chunk = chunk[: max(0, n - i0)]
        track[i0 : i0 + len(chunk)] += chunk
        words = word_times(p.plain, p.speech)
        segments.append(
            {
                "speaker": p.line.speaker,
                "start_s": round(p.start_s, 4),
                "end_s": round(p.start_s + (words[-1][4] if words else p.end_s - p.start_s), 4),
                "text": p.plain,
                "voice": p.line.voice.name,
                "words": [
                    {"text": w, "start_s": round(p.start_s + s, 4), "end_s": round(p.start_s + e, 4)}
                    for _, _, w, s, e in words
                ],
            }
        )
        for a, b, label, negated in p.terms:
            inside = [w for w in words if w[0] < b and w[1] > a]
            if not inside:
                log.warning("term %r of %r has no word events; left out of the truth", p.plain[a:b], p.plain)
                continue
            events.append(
                {
                    "label": label,
                    "term": p.plain[a:b],
                    "start_s": round(p.start_s + inside[0][3], 4),
                    "end_s": round(p.start_s + inside[-1][4], 4),
                    "speaker": p.line.speaker,
                    "negated": negated,
                }
            )
    return Narration(track.astype(np.float32), sample_rate_hz, audio_offset_s, segments, events, dropped)


def _synth(tts: EspeakTTS, plain: str, voice: Voice, sample_rate_hz: int) -> Speech:
    speech = tts.synthesize(plain, voice)
    audio = speech.audio
    # eSpeak's end pause is silence we do not want counted as the line's length
    nz = np.flatnonzero(np.abs(audio) > 1e-4)
    audio = audio[: nz[-1] + 1] if nz.size else audio
    if speech.sample_rate_hz != sample_rate_hz:
        audio = resample(audio, speech.sample_rate_hz, sample_rate_hz)
    duration = len(audio) / sample_rate_hz
    words = [(w, min(s, duration), min(e, duration)) for w, s, e in speech.words]
    return Speech(audio.astype(np.float32), sample_rate_hz, words, speech.positions)


def _first_fit(
    busy: list[tuple[float, float]], at: float, length: float, gap: float, end: float, *, after_last: bool
) -> float | None:
    """Earliest start >= ``at`` where [start, start+length] keeps ``gap`` from every busy interval."""
    if after_last and busy:
        at = max(at, busy[-1][1] + gap)
    start = at
    for b0, b1 in busy:
        if start + length + gap <= b0:
            break
        if start < b1 + gap:
            start = max(start, b1 + gap)
    return start if start + length <= end else None

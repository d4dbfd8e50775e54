"""Spot lexicon terms in recognised words: exact, fuzzy (rapidfuzz) and phonetic (metaphone) matches, with negation.

Words are compared after ``normalise``; a multi-word form is compared with the spaces
removed, so "gall bladder" matches "gallbladder" and "bee lines" matches "b lines"
phonetically. A term preceded by a negation cue ("no effusion") or followed by one
("effusion absent") is kept as an event with ``negated=True`` so that alignment can skip it.

Example:
    >>> from sonotell.types import Word
    >>> spotter = Spotter(load_lexicon("lung"))
    >>> [e.label for e in spotter.spot([Word("bee", 0.0, 0.2), Word("lines", 0.2, 0.5)])]
    ['B-lines']
"""

from __future__ import annotations

from dataclasses import dataclass

import jellyfish
from rapidfuzz import fuzz

from sonotell.config import Section, setting
from sonotell.speech.lexicon import Form, Lexicon, load_lexicon, normalise  # noqa: F401  (load_lexicon: doctest)
from sonotell.types import TermEvent, Word

PHONETIC_SCORE = 0.9
LIST_JOINERS = frozenset(
    {
        "or",
        "and",
        "nor",
        "any",
        "a",
        "an",
        "the",
        "of",
        "signs",
        "sign",
        "evidence",
        "obvious",
        "significant",
        "small",
        "large",
    }
)
NEGATION_BREAKERS = frozenset({"but", "however", "although", "though", "yet", "except", "there", "which", "whereas"})
# Cues that do not negate what follows (NegEx's pseudo-negations): "no doubt there is X", "not only X".
PSEUDO_NEGATIONS = (
    ("no", "doubt"),
    ("not", "only"),
    ("not", "just"),
    ("no", "question"),
    ("without", "doubt"),
    ("no", "change"),
    ("not", "ruled", "out"),
)
# Between a term and a following cue ("effusion is absent", "effusion has been excluded")
COPULAS = frozenset({"is", "are", "was", "were", "be", "been", "being", "has", "have", "had"})
# A double negative before an after-cue: "effusion cannot be ruled out" is not a negation
AFTER_BLOCKERS = frozenset({"not", "cannot", "can't", "never"})
SENTENCE_END = (".", "?", "!", ";")


@dataclass
class Spotter(Section):
    """Find lexicon terms in a word sequence; settings not given take ``configs/pipelines/speech.yaml``'s ``spot``.

    Args:
        lexicon: labels and their spoken forms.
        fuzzy_threshold: minimum rapidfuzz ratio (0-1) of a fuzzy match; 1.0 disables fuzzy matching.
        phonetic: also accept forms whose metaphone key equals the words'.
        min_fuzzy_chars: shorter forms must match exactly (fuzzy "pd" would match anything).
        min_phonetic_chars: shorter words are not matched by sound ("fold" sounds like "fluid" to metaphone).
        negation: detect negation cues at all (off = every mention is positive).
        negation_window: how many words before a term a cue may stand ("no signs of any effusion").
        merge_gap_s: back-to-back events of the same label and polarity at most this far apart are one
            mention (a recogniser may write one "B-lines" as "b_line b_line"); negative: never merge.
    """

    lexicon: Lexicon
    fuzzy_threshold: float = setting("pipelines", "speech", "spot", "fuzzy_threshold", ge=0.0, le=1.0)
    phonetic: bool = setting("pipelines", "speech", "spot", "phonetic")
    min_fuzzy_chars: int = setting("pipelines", "speech", "spot", "min_fuzzy_chars", ge=0)
    min_phonetic_chars: int = setting("pipelines", "speech", "spot", "min_phonetic_chars", ge=0)
    negation: bool = setting("pipelines", "speech", "spot", "negation")
    negation_window: int = setting("pipelines", "speech", "spot", "negation_window", ge=0)
    merge_gap_s: float = setting("pipelines", "speech", "spot", "merge_gap_s")

    SECTION = "spot"

    def __post_init__(self) -> None:
        super().__post_init__()
        self._max_len = max(len(f.tokens) for f in self.lexicon.forms)
        self._by_text = {f.text: f for f in self.lexicon.forms}
        self._by_key = {}
        self._by_sound: dict[str, Form] = {}
        for f in self.lexicon.forms:
            key = f.text.replace(" ", "")
            self._by_key.setdefault(key, f)
            if len(key) >= 3:
                self._by_sound.setdefault(jellyfish.metaphone(key), f)
        self._before = [tuple(c.split()) for c in self.lexicon.negation_before]
        self._after = [tuple(c.split()) for c in self.lexicon.negation_after]

    def spot(self, words: list[Word]) -> list[TermEvent]:
        """Events in time order; each word belongs to at most one event (longest, best match wins)."""
        tokens: list[tuple[str, int]] = [(t, k) for k, w in enumerate(words) for t in normalise(w.text).split()]
        texts = [t for t, _ in tokens]
        # a token that ends a sentence ("effusion." from Whisper) bounds every negation scope
        ends = {
            i
            for i, (_, k) in enumerate(tokens)
            if (i + 1 == len(tokens) or tokens[i + 1][1] != k) and words[k].text.rstrip().endswith(SENTENCE_END)
        }
        candidates = []  # (score, -length mismatch, n_tokens, start, form)
        for i in range(len(tokens)):
            for n in range(1, min(self._max_len + 1, len(tokens) - i) + 1):
                match = self._match(texts[i : i + n])
                if match:
                    score, form = match
                    candidates.append((score, -abs(n - len(form.tokens)), n, -i, form))
        taken = [False] * len(tokens)
        chosen = []
        for score, _, n, neg_i, form in sorted(candidates, key=lambda c: c[:4], reverse=True):
            i = -neg_i
            if any(taken[i : i + n]):
                continue
            taken[i : i + n] = [True] * n
            chosen.append((i, n, score, form))
        events: list[TermEvent] = []
        for i, n, score, form in sorted(chosen, key=lambda c: c[0]):
            if not self._in_context(form, texts, i, i + n, ends):
                continue
            span = [words[k] for _, k in tokens[i : i + n]]
            confidence = score * sum(w.confidence for w in span) / len(span)
            speakers = {w.speaker for w in span}
            events.append(
                TermEvent(
                    label=form.label,
                    term=" ".join(texts[i : i + n]),
                    start_s=span[0].start_s,
                    end_s=span[-1].end_s,
                    confidence=round(confidence, 4),
                    negated=self.negation and self._negated(texts, i, i + n, ends),
                    speaker=speakers.pop() if len(speakers) == 1 else None,
                )
            )
        return merge_repeats(events, self.merge_gap_s)

    def _match(self, window: list[str]) -> tuple[float, Form] | None:
        text = " ".join(window)
        if text in self._by_text:
            return 1.0, self._by_text[text]
        key = text.replace(" ", "")
        if key in self._by_key:
            return 0.98, self._by_key[key]
        best = None
        if self.phonetic and len(key) >= max(3, self.min_phonetic_chars):
            form = self._by_sound.get(jellyfish.metaphone(key))
            if (
                form is not None
                and abs(len(form.tokens) - len(window)) <= 1
                and abs(len(form.text.replace(" ", "")) - len(key)) <= 3
            ):
                best = (PHONETIC_SCORE, form)
        if self.fuzzy_threshold < 1.0 and len(key) >= self.min_fuzzy_chars:
            for fkey, form in self._by_key.items():
                # a fuzzy match must start with the same letter: "lines" is not "a lines"
                if len(fkey) < self.min_fuzzy_chars or fkey[0] != key[0] or abs(len(form.tokens) - len(window)) > 1:
                    continue
                ratio = fuzz.ratio(key, fkey) / 100.0
                if ratio >= self.fuzzy_threshold and (best is None or ratio > best[0]):
                    best = (ratio, form)
        return best

    def _negated(self, texts: list[str], start: int, stop: int, ends: set[int] = frozenset()) -> bool:
        """A cue ending at most ``negation_window`` words before the term (no sentence end, breaker or
        pseudo-negation in between), or a cue after it, past at most two copulas ("X has been excluded")."""
        for j in range(start - 1, max(-1, start - 1 - self.negation_window), -1):
            if texts[j] in NEGATION_BREAKERS or j in ends:
                break
            for cue in self._before:
                first = j - len(cue) + 1
                if first >= 0 and tuple(texts[first : j + 1]) == cue and not self._pseudo(texts, first):
                    return True
        if stop - 1 in ends:
            return False
        k = stop
        while k < len(texts) and k - stop < 3:
            for cue in self._after:
                if tuple(texts[k : k + len(cue)]) == cue:
                    return not any(t in AFTER_BLOCKERS for t in texts[stop:k])
            if texts[k] not in COPULAS and texts[k] not in AFTER_BLOCKERS or k in ends:
                break
            k += 1
        return False

    def _in_context(self, form: Form, texts: list[str], start: int, stop: int, ends: set[int]) -> bool:
        """A generic form (the lexicon's ``context``) needs a ``near`` word and no ``veto`` word within its window,
        in its sentence; every other form always counts."""
        rule = self.lexicon.context.get(form.text)
        if rule is None:
            return True
        lo = start
        while lo > 0 and start - lo < rule.window and lo - 1 not in ends:
            lo -= 1
        hi = stop
        while hi < len(texts) and hi - stop < rule.window and hi - 1 not in ends:
            hi += 1
        around = texts[lo:start] + texts[stop:hi]
        return any(w in rule.near for w in around) and not any(w in rule.veto for w in around)

    @staticmethod
    def _pseudo(texts: list[str], first: int) -> bool:
        return any(tuple(texts[first : first + len(p)]) == p for p in PSEUDO_NEGATIONS)


def merge_repeats(events: list[TermEvent], max_gap_s: float) -> list[TermEvent]:
    """Consecutive events of one label and polarity, at most ``max_gap_s`` apart, as one event (the first's
    start, the last's end, the higher confidence); ``max_gap_s < 0`` keeps every event.

    Example:
        >>> a = TermEvent("B-lines", "b line", 0.4, 0.8, 1.0, False)
        >>> b = TermEvent("B-lines", "b line", 0.85, 1.2, 0.9, False)
        >>> [(e.start_s, e.end_s) for e in merge_repeats([a, b], 0.3)]
        [(0.4, 1.2)]
    """
    if max_gap_s < 0:
        return events
    out: list[TermEvent] = []
    for e in events:
        last = out[-1] if out else None
        if (
            last is not None
            and last.label == e.label
            and last.negated == e.negated
            and e.start_s - last.end_s <= max_gap_s
        ):
            speaker = last.speaker if last.speaker == e.speaker else None
            out[-1] = TermEvent(
                last.label,
                last.term,
                last.start_s,
                max(last.end_s, e.end_s),
                max(last.confidence, e.confidence),
                last.negated,
                speaker,
            )
        else:
            out.append(e)
    return out


def merge_events(per_backend: list[list[TermEvent]]) -> list[TermEvent]:
    """Union of the backends' events: a later backend adds an event only where no earlier one has that label."""
    merged = list(per_backend[0]) if per_backend else []
    for events in per_backend[1:]:
        for e in events:
            if not any(m.label == e.label and m.start_s < e.end_s and e.start_s < m.end_s for m in merged):
                merged.append(e)
    return sorted(merged, key=lambda e: e.start_s)

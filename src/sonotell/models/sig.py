"""Selective information gating (SIG) of the text branch (Show from Tell), in its two variants.

Spoken transcripts are noisy: filler words, ASR errors, chit-chat with the patient. SIG
decides which words reach the text encoder:

* ``outlier``: drop tokens outside the known vocabulary (ASR garbage, rare words), and words
  whose ASR confidence is below ``min_confidence`` when ``Word`` objects are given;
* ``keyword``: keep only lexicon terms (multi-word terms matched as phrases), i.e. keyword
  spotting against the clinical lexicon.

A text whose gate keeps nothing is reported in ``has_info`` (False), so a recipe can skip it
or use it as a negative.

Example:
    >>> gate = SelectiveInformationGate("keyword", lexicon=["b-lines", "pleural effusion"])
    >>> gate(["umm lots of B-lines and a pleural effusion", "hello there"])
    (['b lines pleural effusion', ''], [True, False])
"""

from __future__ import annotations

from typing import Iterable, Sequence

from sonotell.errors import ConfigError
from sonotell.models.text import PAD, UNK, tokenize
from sonotell.types import Word


def lexicon_terms(lexicon) -> list[str]:
    """Flatten a lexicon into its spoken terms.

    Accepts a list of terms, a ``{label: [terms]}`` mapping, an object with ``terms``
    (strings or objects with ``.term``/``.text``), a ``sonotell.speech.lexicon.Lexicon``
    (its ``forms``), or a path / name readable by ``sonotell.speech.lexicon.load_lexicon``.
    """
    if lexicon is None:
        return []
    if isinstance(lexicon, (str, bytes)) or hasattr(lexicon, "__fspath__"):
        from sonotell.speech.lexicon import load_lexicon

        return lexicon_terms(load_lexicon(lexicon))
    out = []
    for t in _lexicon_items(lexicon):
        t = t if isinstance(t, str) else getattr(t, "term", None) or getattr(t, "text", None)
        if t and tokenize(t):
            out.append(" ".join(tokenize(t)))
    return sorted(set(out), key=lambda s: (-len(s.split()), s))  # longest first: greedy phrase match


def _flat(values: Iterable) -> list:
    """A term or a list of terms per value, as one list."""
    return [t for v in values for t in (v if isinstance(v, (list, tuple, set)) else [v])]


def _lexicon_items(lexicon) -> Iterable:
    """The raw terms of a mapping, a ``Lexicon`` (its forms), an object with ``terms``, or a list."""
    if isinstance(lexicon, dict):
        return _flat(lexicon.values()) + list(lexicon.keys())
    if hasattr(lexicon, "forms"):
        return [f.text for f in lexicon.forms]
    if hasattr(lexicon, "terms"):
        terms = lexicon.terms
        return _flat(terms.values() if isinstance(terms, dict) else terms)
    return lexicon


def greedy_phrase_matches(tokens: Sequence[str], phrases: Sequence[tuple[str, ...]]) -> list[int]:
    """Indices (into ``phrases``) of the phrases found left to right; at each position the first
    phrase that matches wins, so pass them longest first.

    Example:
        >>> greedy_phrase_matches("a pleural effusion and effusion".split(), [("pleural", "effusion"), ("effusion",)])
        [0, 1]
    """
    tokens = tuple(tokens)
    found, i = [], 0
    while i < len(tokens):
        j = next((j for j, p in enumerate(phrases) if tokens[i : i + len(p)] == p), None)
        if j is None:
            i += 1
        else:
            found.append(j)
            i += len(phrases[j])
    return found


class SelectiveInformationGate:
    """Filter transcripts before the text encoder.

    Args:
        mode: ``outlier`` | ``keyword`` | ``none`` (pass-through, the "without SIG" ablation).
        vocabulary: known words for ``outlier`` (e.g. the text encoder's vocabulary).
        lexicon: terms for ``keyword`` (see ``lexicon_terms``).
        min_confidence: ``outlier`` also drops ``Word``s below this ASR confidence.
    """

    def __init__(
        self, mode: str = "outlier", vocabulary: Sequence[str] | None = None, lexicon=None, min_confidence: float = 0.0
    ):
        if mode not in ("outlier", "keyword", "none"):
            raise ConfigError(f"SIG mode must be 'outlier', 'keyword' or 'none', got {mode!r}")
        self.mode, self.min_confidence = mode, min_confidence
        self.known = {w for w in (vocabulary or []) if w not in (PAD, UNK)}
        self.phrases = [tuple(p.split()) for p in lexicon_terms(lexicon)]
        if mode == "outlier" and not self.known:
            raise ConfigError("SIG 'outlier' needs a vocabulary of known words")
        if mode == "keyword" and not self.phrases:
            raise ConfigError("SIG 'keyword' needs a lexicon with at least one term")

    def gate_tokens(self, tokens: list[str]) -> list[str]:
        if self.mode == "none":
            return tokens
        if self.mode == "outlier":
            return [t for t in tokens if t in self.known]
        return [tok for j in greedy_phrase_matches(tokens, self.phrases) for tok in self.phrases[j]]

    def gate(self, text: str | Sequence[Word]) -> str:
        """The gated text of one transcript (a string or a list of ``Word``)."""
        if isinstance(text, str):
            tokens = tokenize(text)
        else:
            tokens = [
                tok
                for w in text
                if self.mode != "outlier" or w.confidence >= self.min_confidence
                for tok in tokenize(w.text)
            ]
        return " ".join(self.gate_tokens(tokens))

    def __call__(self, texts: Sequence[str | Sequence[Word]]) -> tuple[list[str], list[bool]]:
        """Gated texts and, per text, whether anything survived the gate."""
        gated = [self.gate(t) for t in texts]
        return gated, [bool(g) for g in gated]

"""Keyword speech input: which lexicon terms were said in a speech window, as a multi-hot vector.

The keyword variant of Show from Tell (``model.audio_source: keywords``) replaces the
raw-audio encoder by the terms the speech pipeline spotted (SIG's keyword mode taken to its
end: only lexicon keywords pass). A window's transcript -- ASR words, or the pipeline's
spotted events written as their label names (``sonotell.methods.pretrain.load_transcript_words(...,
units="terms")``) -- is matched against the lexicon's forms, longest phrase first, and each
match turns on its label. No human label is read.

Example:
    >>> terms = KeywordTerms({"liver": ["liver", "right lobe of the liver"], "kidney": ["kidney"]})
    >>> terms.labels, terms(["we see the right lobe of the liver", "um", "liver and kidney"]).tolist()
    (['liver', 'kidney'], [[True, False], [False, False], [True, True]])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from sonotell.errors import ConfigError
from sonotell.models.sig import greedy_phrase_matches
from sonotell.models.text import tokenize


def _label_forms(lexicon) -> dict[str, list[str]]:
    """``{label: [forms]}`` from a mapping, a ``Lexicon`` or a lexicon name/path; every label is also its own form."""
    if isinstance(lexicon, (str, bytes)) or hasattr(lexicon, "__fspath__"):
        from sonotell.speech.lexicon import load_lexicon

        lexicon = load_lexicon(lexicon)
    if hasattr(lexicon, "forms"):
        out: dict[str, list[str]] = {}
        for f in lexicon.forms:
            out.setdefault(f.label, []).append(f.text)
        return out
    if isinstance(lexicon, dict):
        return {str(k): [v] if isinstance(v, str) else list(v) for k, v in lexicon.items()}
    raise ConfigError(
        f"a keyword lexicon must be a name, a path, a Lexicon or a {{label: [terms]}} mapping, "
        f"got {type(lexicon).__name__}"
    )


class KeywordTerms:
    """Lexicon labels said in each transcript, as a (B, K) bool tensor (K = ``len(labels)``).

    Args:
        lexicon: a lexicon name (``abdominal``), YAML path, ``Lexicon`` or ``{label: [terms]}``.
        labels: keep only these labels, in this order (default: the lexicon's order).
    """

    def __init__(self, lexicon, labels: Sequence[str] | None = None):
        forms = _label_forms(lexicon)
        self.labels = list(labels) if labels is not None else list(forms)
        unknown = [lab for lab in self.labels if lab not in forms]
        if unknown:
            raise ConfigError(f"keyword labels {unknown} are not in the lexicon ({', '.join(forms)})")
        if not self.labels:
            raise ConfigError("a keyword lexicon needs at least one label")
        phrases = {}
        for k, lab in enumerate(self.labels):
            for text in [lab, *forms[lab]]:
                tokens = tuple(tokenize(text))
                if tokens:
                    phrases.setdefault(tokens, k)
        self.phrases = sorted(phrases.items(), key=lambda kv: (-len(kv[0]), kv[0]))  # longest first
        self._phrase_tokens = [p for p, _ in self.phrases]

    def __len__(self) -> int:
        return len(self.labels)

    def said(self, text: str) -> list[int]:
        """Indices of the labels matched in one transcript (greedy, longest phrase first)."""
        return sorted({self.phrases[j][1] for j in greedy_phrase_matches(tokenize(text), self._phrase_tokens)})

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        out = torch.zeros(len(texts), len(self.labels), dtype=torch.bool)
        for b, text in enumerate(texts):
            out[b, self.said(text)] = True
        return out

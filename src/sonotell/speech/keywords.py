"""What the recogniser may hear: a domain language model, a JSGF grammar and keyphrases, built from a lexicon.

Every word must have a pronunciation. Words the ASR dictionary lacks come from the lexicon's
``pronunciations``; failing that, a word is spelt from dictionary words it is made of
("bronchogram" = "broncho" + "gram"); failing that, a clear error says what to add.

Example:
    >>> lex = load_lexicon("lung")
    >>> "effusion" in domain_corpus(lex)
    True
"""

from __future__ import annotations

import io
import logging
from typing import Callable

from sonotell.errors import InputError
from sonotell.speech.lexicon import Lexicon, load_lexicon, normalise  # noqa: F401  (load_lexicon: doctest)

log = logging.getLogger(__name__)

# What a sonographer says besides anatomy: gives off-topic speech somewhere to go other than
# a lexicon term. Generic clinic talk, not any benchmark's script.
GENERIC_PHRASES = (
    "take a deep breath and hold it",
    "hold your breath for me",
    "you can breathe normally now",
    "breathe out and relax",
    "just relax your tummy",
    "sorry the gel is a bit cold",
    "can you turn onto your left side",
    "roll over onto your back please",
    "lift your arm above your head",
    "i am going to press a little",
    "let me get a better view",
    "let me just move the probe",
    "we are nearly done",
    "that is fine thank you",
    "okay good that is great",
    "is that comfortable for you",
    "does it hurt when i press here",
    "let me save that image",
    "freeze and measure",
    "i will take a few more pictures",
    "move a little bit to the right",
    "a bit further down please",
    "sit up for me",
    "how are you feeling today",
    "yes no maybe sure",
)
ASR_EXCLUDED_KINDS = ("misspellings",)  # spotted in text, never offered to the recogniser as words

FILLER_WORDS = (
    "a",
    "an",
    "the",
    "and",
    "of",
    "is",
    "this",
    "that",
    "there",
    "here",
    "we",
    "i",
    "it",
    "see",
    "can",
    "now",
    "okay",
    "so",
    "some",
    "very",
    "small",
    "big",
    "right",
    "left",
)


def compound(text: str) -> str:
    """A multi-word form as one LM token ("a lines" -> "a_lines"); ``normalise`` turns it back."""
    return text.replace(" ", "_")


def compound_forms(lexicon: Lexicon) -> list[str]:
    """The multi-word forms that become single recogniser words."""
    return sorted({compound(f.text) for f in asr_forms(lexicon) if len(f.tokens) > 1})


def domain_corpus(lexicon: Lexicon, compounds: bool = True) -> str:
    """Training sentences for a domain LM: every form in every carrier, plus negated mentions.

    With ``compounds`` a multi-word form is one token: the LM then gives "a lines" the
    probability of a term, not that of the article "a" followed by "lines".
    """
    lines = list(GENERIC_PHRASES)
    for form in asr_forms(lexicon):
        said = compound(form.text) if compounds else form.text
        for carrier in lexicon.carriers:
            lines.append(normalise(carrier.replace("{term}", " qqtermqq ")).replace("qqtermqq", said))
        for cue in lexicon.negation_before[:3]:
            lines.append(f"{cue} {said}")
    lines.append(" ".join(FILLER_WORDS))
    return "\n".join(dict.fromkeys(lines)) + "\n"


def domain_arpa(lexicon: Lexicon, extra_text: str = "", compounds: bool = True) -> str:
    """A trigram ARPA LM (pocketsphinx's ArpaBoLM; ``add_start`` so sentences begin with <s>)."""
    from pocketsphinx.lm import ArpaBoLM

    lm = ArpaBoLM(text=domain_corpus(lexicon, compounds) + extra_text, add_start=True)
    lm.compute()
    buf = io.StringIO()
    lm.write(buf)
    return buf.getvalue()


def jsgf_grammar(lexicon: Lexicon, extra_words: tuple[str, ...] = ()) -> str:
    """A loop over whole lexicon forms and single filler words: terms are recognised as units."""
    forms = sorted({f.text for f in asr_forms(lexicon)})
    form_words = {w for f in forms for w in f.split()}
    fillers = sorted((set(asr_vocabulary(lexicon)) | set(FILLER_WORDS) | set(extra_words)) - form_words)
    return (
        "#JSGF V1.0;\ngrammar sonotell;\n"
        "public <utterance> = (<term> | <filler>)*;\n"
        f"<term> = {' | '.join(forms)};\n"
        f"<filler> = {' | '.join(fillers)};\n"
    )


def keyphrases(lexicon: Lexicon, threshold: float = 1e-20) -> str:
    """A pocketsphinx kws list: one form per line with its detection threshold."""
    return "".join(f"{f.text} /{threshold:.0e}/\n" for f in asr_forms(lexicon))


def asr_forms(lexicon: Lexicon) -> list:
    """The forms a recogniser should be able to output (not the misspellings)."""
    return [f for f in lexicon.forms if f.kind not in ASR_EXCLUDED_KINDS]


def asr_vocabulary(lexicon: Lexicon) -> list[str]:
    """Every word the recogniser may output: forms, cues, carriers, generic clinic talk, fillers."""
    words = dict.fromkeys(w for f in asr_forms(lexicon) for w in f.text.split())
    for text in (
        list(lexicon.negation_before)
        + list(lexicon.negation_after)
        + [c.replace("{term}", " ") for c in lexicon.carriers]
        + list(GENERIC_PHRASES)
    ):
        words.update(dict.fromkeys(normalise(text).split()))
    words.update(dict.fromkeys(FILLER_WORDS))
    return list(words)


def compound_pronunciations(compounds: list[str], lookup_all, max_variants: int = 4) -> dict[str, list[str]]:
    """Pronunciations of compound tokens: the product of their words' variants (at most ``max_variants``)."""
    import itertools

    out = {}
    for token in compounds:
        variants = [lookup_all(w) for w in token.split("_")]
        out[token] = [" ".join(p) for p in itertools.islice(itertools.product(*variants), max_variants)]
    return out


# eSpeak's Scottish, Caribbean and West-Midlands voices (and many real speakers) monophthongise
# diphthongs and drop a post-vocalic r; the US-English acoustic model then hears other vowels.
ACCENT_RULES = (
    {"EY": "EH", "OW": "AO", "AY": "AA", "AW": "AA"},
    {"ER": "AH", "R": None},  # non-rhotic: "R" goes only after a vowel
)
_VOWELS = frozenset("AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split())


def accent_variants(phones: str) -> list[str]:
    """Other pronunciations of an ARPAbet string, one per rule in ``ACCENT_RULES`` (distinct, not the original).

    Example:
        >>> accent_variants("L AY N Z")
        ['L AA N Z']
        >>> accent_variants("EH R")
        ['EH']
    """
    seq = phones.split()
    out = []
    for rule in ACCENT_RULES:
        new = []
        for k, ph in enumerate(seq):
            if ph in rule and rule[ph] is None:
                if k > 0 and seq[k - 1] in _VOWELS:
                    continue
                new.append(ph)
            else:
                new.append(rule.get(ph, ph) or ph)
        text = " ".join(new)
        if text != phones and text not in out:
            out.append(text)
    return out


def missing_pronunciations(words: list[str], lookup: Callable[[str], str | None], lexicon: Lexicon) -> dict[str, str]:
    """Pronunciations to add for ``words`` the dictionary lacks; raises ``InputError`` when none can be made."""
    added = {}
    for word in words:
        if lookup(word) is not None:
            continue
        if word in lexicon.pronunciations:
            added[word] = lexicon.pronunciations[word]
            continue
        parts = split_into_known(word, lambda w: lookup(w) is not None or w in lexicon.pronunciations)
        if parts:
            added[word] = " ".join(lexicon.pronunciations.get(p) or lookup(p) for p in parts)
            log.warning(
                "%s: %r is not in the ASR dictionary; spelt as %s (add a pronunciation to do better)",
                lexicon.source,
                word,
                " + ".join(parts),
            )
            continue
        raise InputError(
            lexicon.source,
            f"the word {word!r} is not in the ASR dictionary and cannot be spelt from known words; "
            f"add it under 'pronunciations:' as ARPAbet phones (like: effusion: IH F Y UW ZH AH N)",
        )
    return added


def split_into_known(word: str, known: Callable[[str], bool], min_part: int = 3) -> list[str] | None:
    """The split of ``word`` into the fewest known parts (dynamic programming), or None."""
    best: list[list[str] | None] = [None] * (len(word) + 1)
    best[0] = []
    for end in range(1, len(word) + 1):
        for start in range(max(0, end - 20), end):
            part = word[start:end]
            if best[start] is not None and len(part) >= min_part and known(part):
                cand = best[start] + [part]
                if best[end] is None or len(cand) < len(best[end]):
                    best[end] = cand
    return best[len(word)] if best[len(word)] and len(best[len(word)]) > 1 else None

"""Lexicons: the labels a clinician may name, with every way of saying them, in YAML.

A lexicon file maps each canonical label to its spoken forms (synonyms, abbreviations,
common misspellings or mis-hearings), plus negation cues and ARPAbet pronunciations for
words the ASR dictionary lacks::

    name: lung
    scope: view              # how long a mention holds: moment (the align window) | view (until the view changes)
    labels:
      B-lines:
        scope: view          # per label, overriding the lexicon's
        terms: [b lines, b line]
        abbreviations: [bls]
        misspellings: [bee lines]
    negation:
      before: [no, without, absent]
      after: [absent, not seen]
    pronunciations:
      effusion: IH F Y UW ZH AH N

Example:
    >>> lex = load_lexicon("lung")
    >>> lex.label_of("bee lines")
    'B-lines'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from sonotell.errors import InputError

_NON_WORD = re.compile(r"[^a-z0-9' ]+")
FORM_KINDS = ("terms", "abbreviations", "misspellings")
SCOPES = ("moment", "view")  # sonotell.speech.align: a window around the mention | the view it falls in
DEFAULT_NEGATION_BEFORE = (
    "no",
    "not",
    "without",
    "nor",
    "absent",
    "negative for",
    "free of",
    "no sign of",
    "no evidence of",
    "rules out",
    "don't see",
    "do not see",
    "can't see",
    "cannot see",
    "isn't",
    "aren't",
    "is not",
    "are not",
    "absence of",
    "never",
)
DEFAULT_NEGATION_AFTER = ("absent", "not seen", "ruled out", "is absent", "not present", "not visible", "excluded")
DEFAULT_CARRIERS = (
    "here is the {term}",
    "this is the {term}",
    "now the {term}",
    "and we can see the {term}",
    "okay {term}",
    "that's the {term} there",
    "i can see {term}",
    "there is {term}",
    "there are {term}",
    "lots of {term}",
    "no {term}",
    "no {term} here",
    "looks like {term}",
    "we have {term}",
)


_DIGITS = dict(enumerate("zero one two three four five six seven eight nine ten".split()))


def normalise(text: str) -> str:
    """Lower case, hyphens and punctuation to spaces, lone digits to words: the form every stage compares.

    Example:
        >>> normalise("B-Lines, 4 of them!")
        'b lines four of them'
    """
    text = text.lower().replace("-", " ").replace("_", " ").replace("\u2019", "'")  # Whisper may write can\u2019t
    words = _NON_WORD.sub(" ", text).split()
    return " ".join(_DIGITS.get(int(w), w) if w.isdigit() and int(w) <= 10 else w for w in words)


@dataclass(frozen=True)
class Form:
    """One spoken form of a label: normalised ``text`` and its ``kind`` (terms/abbreviations/misspellings)."""

    text: str
    label: str
    kind: str

    @property
    def tokens(self) -> tuple[str, ...]:
        return tuple(self.text.split())


@dataclass(frozen=True)
class ContextRule:
    """A generic spoken form ("fluid") counts as a finding only in a finding context: one of ``near`` within
    ``window`` words of it in the same sentence, and none of ``veto`` ("drink some fluid" is not an effusion)."""

    near: frozenset[str]
    veto: frozenset[str] = frozenset()
    window: int = 4


@dataclass
class Lexicon:
    """Labels and their spoken forms; build with ``load_lexicon`` or ``Lexicon.from_dict``."""

    name: str
    forms: list[Form]
    negation_before: tuple[str, ...] = DEFAULT_NEGATION_BEFORE
    negation_after: tuple[str, ...] = DEFAULT_NEGATION_AFTER
    carriers: tuple[str, ...] = DEFAULT_CARRIERS
    pronunciations: dict[str, str] = field(default_factory=dict)
    source: str = "<dict>"
    scopes: dict[str, str] = field(default_factory=dict)  # label -> moment | view (every label listed)
    context: dict[str, ContextRule] = field(default_factory=dict)  # generic form text -> its finding context

    @classmethod
    def from_dict(cls, data: dict, source: str | Path = "<dict>") -> "Lexicon":
        """Validate and build; a duplicate or empty term raises ``InputError`` naming the source."""
        if not isinstance(data, dict) or not isinstance(data.get("labels"), dict) or not data["labels"]:
            raise InputError(source, "a lexicon needs a non-empty 'labels' mapping")
        seen: dict[str, str] = {}
        forms: list[Form] = []
        default_scope = data.get("scope", "moment")
        if default_scope not in SCOPES:
            raise InputError(source, f"scope {default_scope!r} is not one of {', '.join(SCOPES)}")
        scopes: dict[str, str] = {}
        for label, spec in data["labels"].items():
            label = str(label).strip()
            if not label:
                raise InputError(source, "a label name is empty")
            spec = {"terms": spec} if isinstance(spec, list) else (spec or {})
            if not isinstance(spec, dict):
                raise InputError(
                    source, f"label {label!r}: expected a list of terms or a mapping of {', '.join(FORM_KINDS)}"
                )
            unknown = set(spec) - {*FORM_KINDS, "scope"}
            if unknown:
                raise InputError(
                    source, f"label {label!r}: unknown keys {sorted(unknown)} (use {', '.join(FORM_KINDS)}, scope)"
                )
            scopes[label] = spec.get("scope", default_scope)
            if scopes[label] not in SCOPES:
                raise InputError(source, f"label {label!r}: scope {scopes[label]!r} is not one of {', '.join(SCOPES)}")
            label_text = normalise(label)
            for kind in FORM_KINDS:
                if not isinstance(spec.get(kind) or [], list):
                    raise InputError(source, f"label {label!r}: {kind!r} must be a list of terms")
            raw_forms = [(label, "label")] + [(t, kind) for kind in FORM_KINDS for t in (spec.get(kind) or [])]
            own_name_listed = False
            for i, (raw, kind) in enumerate(raw_forms):
                text = normalise(str(raw)) if raw is not None else ""
                if not text:
                    raise InputError(source, f"label {label!r}: empty term in {kind!r}")
                if i > 0 and text == label_text and not own_name_listed:
                    own_name_listed = True
                    continue  # the label's own name listed once more as a term: harmless
                if text in seen:
                    where = "twice" if seen[text] == label else f"for both {seen[text]!r} and {label!r}"
                    raise InputError(source, f"duplicate term {text!r} listed {where}")
                seen[text] = label
                forms.append(Form(text, label, kind))
        neg = data.get("negation") or {}
        if not isinstance(neg, dict) or not all(isinstance(neg.get(k, []), (list, tuple)) for k in ("before", "after")):
            raise InputError(source, "'negation' must map before/after to lists of cues")
        prons_raw = data.get("pronunciations") or {}
        if not isinstance(prons_raw, dict):
            raise InputError(source, "'pronunciations' must map words to ARPAbet strings")
        carriers = data.get("carriers") or DEFAULT_CARRIERS
        if not isinstance(carriers, (list, tuple)) or not all(isinstance(c, str) for c in carriers):
            raise InputError(source, "'carriers' must be a list of phrases")
        for cue in list(neg.get("before", [])) + list(neg.get("after", [])):
            if not isinstance(cue, str):
                raise InputError(source, f"negation cue {cue!r} is not text (quote yes/no/on/off in YAML)")
        prons = {normalise(str(k)): " ".join(str(v).upper().split()) for k, v in prons_raw.items()}
        context = _context_rules(data.get("context") or {}, {f.text for f in forms}, source)
        return cls(
            name=str(data.get("name", Path(str(source)).stem)),
            forms=forms,
            negation_before=tuple(normalise(c) for c in neg.get("before", DEFAULT_NEGATION_BEFORE)),
            negation_after=tuple(normalise(c) for c in neg.get("after", DEFAULT_NEGATION_AFTER)),
            carriers=tuple(carriers),
            pronunciations=prons,
            source=str(source),
            scopes=scopes,
            context=context,
        )

    @property
    def labels(self) -> list[str]:
        return list(dict.fromkeys(f.label for f in self.forms))

    def label_of(self, text: str) -> str | None:
        """The label whose form is exactly ``text`` (normalised), else None."""
        t = normalise(text)
        for f in self.forms:
            if f.text == t:
                return f.label
        return None

    def resolve_label(self, name: str) -> str | None:
        """Map a label name from elsewhere (a benchmark's "Consolidations", "b_lines") to ours."""
        exact = self.label_of(name)
        if exact:
            return exact
        key = _label_key(name)
        for label in self.labels:
            if _label_key(label) == key:
                return label
        return None

    def vocabulary(self) -> list[str]:
        """Every word of every form, negation cue and carrier phrase (for a domain LM / grammar)."""
        words: dict[str, None] = {}
        texts = [f.text for f in self.forms] + list(self.negation_before) + list(self.negation_after)
        texts += [normalise(c.replace("{term}", " ")) for c in self.carriers]
        for t in texts:
            for w in t.split():
                words[w] = None
        return list(words)


def _context_rules(raw: object, forms: set[str], source: str | Path) -> dict[str, ContextRule]:
    """``context: {form: {near: [...], veto: [...], window: n}}`` checked: each form one of the lexicon's."""
    if not isinstance(raw, dict):
        raise InputError(source, "'context' must map generic forms to {near: [...], veto: [...], window: n}")
    rules = {}
    for form, spec in raw.items():
        text = normalise(str(form))
        if text not in forms:
            raise InputError(source, f"context: {form!r} is not a form of any label")
        if not isinstance(spec, dict) or set(spec) - {"near", "veto", "window"} or not spec.get("near"):
            raise InputError(source, f"context: {form!r} needs a 'near' list (and optionally 'veto', 'window')")
        words = {}
        for key in ("near", "veto"):
            value = spec.get(key) or []
            if not isinstance(value, list) or not all(isinstance(w, str) for w in value):
                raise InputError(source, f"context: {form!r}: {key!r} must be a list of words (quote yes/no in YAML)")
            words[key] = frozenset(normalise(w) for w in value)
        window = spec.get("window", 4)
        if not isinstance(window, int) or isinstance(window, bool) or window < 1:
            raise InputError(source, f"context: {form!r}: 'window' must be a whole number of words >= 1")
        rules[text] = ContextRule(words["near"], words["veto"], window)
    return rules


def _label_key(name: str) -> str:
    words = normalise(name).split()
    return " ".join(w[:-1] if len(w) > 3 and w.endswith("s") else w for w in words)


def packaged_lexicons() -> list[str]:
    """Names of the lexicons that ship with sonotell."""
    folder = resources.files("sonotell") / "speech" / "lexicons"
    return sorted(Path(str(p)).stem for p in folder.iterdir() if str(p).endswith(".yaml"))


def load_lexicon(name_or_path: str | Path) -> Lexicon:
    """A packaged lexicon by name (``lung``, ``eus``, ``abdominal``, ``fetal``) or a YAML file."""
    path = Path(name_or_path)
    if not path.suffix:
        path = Path(str(resources.files("sonotell") / "speech" / "lexicons" / f"{name_or_path}.yaml"))
        if not path.exists():
            raise InputError(name_or_path, f"no such lexicon; packaged: {', '.join(packaged_lexicons())}")
    if not path.exists():
        raise InputError(path, "lexicon file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputError(path, "lexicon is not UTF-8 text") from None
    except yaml.YAMLError as e:
        raise InputError(path, f"not valid YAML ({e.__class__.__name__})") from None
    return Lexicon.from_dict(data, source=path)

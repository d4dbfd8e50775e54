"""Lexicon suggestions: words said around events a reviewer added or relabelled are candidate synonyms.

When a reviewer adds an event the pipeline missed, or relabels one it got wrong, the clinician
probably said the finding in words the lexicon lacks. Every phrase (1 to ``max_words`` words) said
within ``pad_s`` of such an event is a candidate for that event's label, unless it is already a form
of the lexicon or only stop words. Candidates are counted over events (once per event) and written
as a YAML patch in the lexicon's own format (``labels: {label: {terms: [...]}}``) for a person to merge.

Example:
    >>> words = [{"text": "big", "start_s": 0.9, "end_s": 1.0}, {"text": "gallbladder", "start_s": 1.0, "end_s": 1.5}]
    >>> candidate_phrases(words, 1.0, 1.5, pad_s=0.2, max_words=2)
    ['big', 'gallbladder', 'big gallbladder']
"""

from __future__ import annotations

from pathlib import Path

from sonotell.errors import InputError
from sonotell.review.store import LabelsFolder
from sonotell.speech.lexicon import load_lexicon, normalise

STOP_WORDS = frozenset(
    {
        "a",
        "an",
        "the",
        "and",
        "or",
        "of",
        "in",
        "on",
        "at",
        "to",
        "is",
        "are",
        "was",
        "were",
        "be",
        "this",
        "that",
        "these",
        "those",
        "here",
        "there",
        "it",
        "its",
        "i",
        "we",
        "you",
        "we're",
        "i'm",
        "it's",
        "there's",
        "here's",
        "so",
        "um",
        "uh",
        "er",
        "ah",
        "okay",
        "ok",
        "now",
        "see",
        "can",
        "look",
        "looks",
        "like",
        "just",
        "some",
        "with",
        "for",
        "as",
    }
)


def candidate_phrases(
    words: list[dict], start_s: float, end_s: float, *, pad_s: float = 1.0, max_words: int = 3
) -> list[str]:
    """Phrases of consecutive words said within ``pad_s`` of ``[start_s, end_s]`` (not all stop words)."""
    near = [normalise(w["text"]) for w in words if w["end_s"] >= start_s - pad_s and w["start_s"] <= end_s + pad_s]
    near = [w for w in near if w]
    out: list[str] = []
    for n in range(1, max_words + 1):
        for i in range(len(near) - n + 1):
            gram = near[i : i + n]
            if all(g in STOP_WORDS for g in gram) or gram[0] in STOP_WORDS or gram[-1] in STOP_WORDS:
                continue
            phrase = " ".join(gram)
            if phrase not in out:
                out.append(phrase)
    return out


def suggest(
    labels_dir: str | Path, *, lexicon: str | None = None, pad_s: float = 1.0, max_words: int = 3, min_count: int = 1
) -> list[dict]:
    """Rows ``{label, phrase, count, scans, known_as}`` sorted by label then count (most first)."""
    folder = LabelsFolder.open(labels_dir)
    lex = load_lexicon(lexicon or folder.lexicon_name or "")
    found: dict[tuple[str, str], dict] = {}
    for scan_id in folder.scan_ids:
        review = folder.review(scan_id)
        decided = [
            d
            for d in review["decisions"].values()
            if d["status"] == "added"
            or (d["status"] == "edited" and d.get("base") and d.get("label") != d["base"].get("label"))
        ]
        if not decided:
            continue
        words = _checked_words(folder.path / f"{scan_id}.json", folder.scan_doc(scan_id).get("words", []))
        for d in decided:
            for phrase in candidate_phrases(
                words, float(d["start_s"]), float(d["end_s"]), pad_s=pad_s, max_words=max_words
            ):
                if lex.label_of(phrase) == d["label"]:
                    continue
                row = found.setdefault(
                    (d["label"], phrase),
                    {
                        "label": d["label"],
                        "phrase": phrase,
                        "count": 0,
                        "scans": set(),
                        "known_as": lex.label_of(phrase) or "",
                    },
                )
                row["count"] += 1
                row["scans"].add(scan_id)
    rows = [{**r, "scans": len(r["scans"])} for r in found.values() if r["count"] >= min_count]
    return sorted(rows, key=lambda r: (r["label"], -r["count"], r["phrase"]))


def _checked_words(path: Path, words) -> list[dict]:
    """The label file's words, each with text and finite times (a hand-edited file fails here, in one line)."""
    from sonotell.review.store import is_number

    if not isinstance(words, list):
        raise InputError(path, "words must be a list")
    for k, w in enumerate(words):
        if not (isinstance(w, dict) and isinstance(w.get("text"), str) and is_number(w.get("start_s"))):
            raise InputError(path, f"word {k}: needs text and a start_s in seconds")
        if not is_number(w.get("end_s")):
            raise InputError(path, f"word {k}: needs an end_s in seconds")
    return words


def patch_yaml(rows: list[dict]) -> str:
    """The suggestions as a lexicon patch (same shape as a lexicon's ``labels``), counts as comments."""
    import yaml

    by_label: dict[str, list[str]] = {}
    for r in rows:
        if not r["known_as"]:  # a form of another label is a conflict for a person to settle, not a synonym
            by_label.setdefault(r["label"], []).append(r["phrase"])
    head = "# sonotell lexicon suggest: candidate synonyms from reviewed events (check before merging)\n"
    for r in rows:
        head += (
            f"#   {r['label']}: {r['phrase']!r} x{r['count']} in {r['scans']} scan(s)"
            + (f" (already a form of {r['known_as']!r})" if r["known_as"] else "")
            + "\n"
        )
    return head + yaml.safe_dump(
        {"labels": {k: {"terms": v} for k, v in by_label.items()}}, sort_keys=True, allow_unicode=True
    )

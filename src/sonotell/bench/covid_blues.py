"""The ``covid_blues`` benchmark: 362 real lung clips of 63 patients (BLUE protocol), narrated like ``pocus``.

Source: ``<data_root>/covid_blues/lus_videos/patient_<id>_<L1..R3>[_2].mp4`` and ``severity.csv``
(a clip matches the row whose ``video_file`` is its stem). Licence CC BY-NC-ND 4.0
(Wiedemann et al. 2025): build it locally for research benchmarks; never commit or
redistribute the build or anything derived from it.

For each clip:

- **video**: 60-100 frames at 25 fps, so every clip plays as a cine loop re-encoded to the
  first whole number of loops reaching ``video.min_duration_s`` (as in ``pocus``).
- **label**: the lung ultrasound severity score, ``severity_0`` .. ``severity_3``.
- **labels**: ``a_lines`` / ``b_lines`` from their yes/no columns (values are stripped), plus
  the findings the physician's comment states without negation (31 clips have one), with the
  POCUS finding names: "broken / interrupted / thickened pleura line" is ``pleural_irregularity``,
  "consolidated areas" ``consolidation``.
- **subject**: ``blues-pt<id>`` (prefixed, so pooled with ``pocus`` no two patients share an id).
- **narration, noise**: ``pocus``'s narration and mixing (``pocus.build_lung_scan``); the comment
  is spoken as the physician's free text; the impression names the severity score.

Example:
    >>> build_benchmark("covid_blues", "bench_out/cb", overrides=["data_root=../shared/data"])  # doctest: +SKIP
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from sonotell.bench import pocus
from sonotell.data.tts import EspeakTTS, Voice
from sonotell.errors import InputError

CLASSES = ["severity_0", "severity_1", "severity_2", "severity_3"]
FINDINGS = list(pocus.FINDINGS)
# Comment phrasing of this set, then the POCUS terms (first match wins per span).
FREE_TEXT_TERMS = [
    [
        r"(?:broken|interrupted|thickened|irregular|fragmented) pleura(?:l)? line"
        r"|pleura(?:l)? line (?:thickened|broken|interrupted|irregular)",
        "pleural_irregularity",
    ],
    [r"(?:sub[- ]?pleura\w* )?consolidat\w*(?: areas?)?", "consolidation"],
    *[[p, label] for p, label in pocus._FREE_TEXT_TERMS],
]
_FILE = re.compile(r"patient_(\d+)_([LR]\d)(?:_(\d+))?$")


def _data_root(cfg: dict) -> Path:
    root = Path(cfg["data_root"]).expanduser()
    if not (root / "covid_blues" / "severity.csv").exists():
        raise InputError(
            root / "covid_blues" / "severity.csv",
            "COVID-BLUES labels not found; set data_root (e.g. --set data_root=../shared/data)",
        )
    return root


def _yes(value, path: Path, row: int, column: str) -> bool:
    v = str(value).strip().lower()
    if v not in ("yes", "no"):
        raise InputError(path, f"row {row + 2}: {column} must be yes or no, got {value!r}")
    return v == "yes"


def read_labels(root: Path) -> pd.DataFrame:
    """One row per clip on disk with ``path``, ``patient``, ``label``, ``findings``, ``comment``."""
    path = root / "covid_blues" / "severity.csv"
    table = pd.read_csv(path, dtype={"video_file": str, "comments": str}, keep_default_na=False)
    missing = [c for c in ("video_file", "Severity Score", "A-lines", "B-lines", "comments") if c not in table.columns]
    if missing:
        raise InputError(path, f"missing columns: {', '.join(missing)}")
    files = {p.stem: p for p in sorted((root / "covid_blues" / "lus_videos").glob("*.mp4"))}
    rows = []
    for i, r in enumerate(table.to_dict("records")):
        stem = str(r["video_file"]).strip()
        if stem not in files:
            continue
        m = _FILE.match(stem)
        if not m:
            raise InputError(path, f"row {i + 2}: video_file {stem!r} is not patient_<id>_<point>")
        try:
            score = int(float(r["Severity Score"]))
        except ValueError:
            raise InputError(path, f"row {i + 2}: Severity Score {r['Severity Score']!r} is not a number") from None
        if not 0 <= score <= 3:
            raise InputError(path, f"row {i + 2}: Severity Score {score} outside 0-3")
        comment = str(r["comments"]).strip()
        found = {"a_lines"} if _yes(r["A-lines"], path, i, "A-lines") else set()
        found |= {"b_lines"} if _yes(r["B-lines"], path, i, "B-lines") else set()
        found |= comment_findings(comment)
        rows.append(
            {
                "stem": stem,
                "path": files[stem],
                "patient": m.group(1),
                "label": CLASSES[score],
                "findings": [f for f in FINDINGS if f in found],
                "comment": comment,
            }
        )
    return pd.DataFrame(rows).sort_values("stem").reset_index(drop=True)


def comment_findings(comment: str) -> set[str]:
    """Findings a comment states without negation, e.g. "broken pleura line" -> pleural_irregularity."""
    if not comment:
        return set()
    tagged = pocus.tag_free_text(comment, FREE_TEXT_TERMS)
    return {lab for lab in re.findall(r"\]\((!?\w+)\)", tagged) if not lab.startswith("!") and lab in FINDINGS}


def plan(cfg: dict, seed: int) -> list[dict]:
    root = _data_root(cfg)
    table = read_labels(root)
    if cfg.get("limit"):
        groups = [g for _, g in table.groupby("label", sort=True)]
        picked, i = [], 0
        while len(picked) < int(cfg["limit"]) and any(i < len(g) for g in groups):
            picked += [g.iloc[i] for g in groups if i < len(g)]
            i += 1
        table = pd.DataFrame(picked[: int(cfg["limit"])]).reset_index(drop=True)
    subjects = sorted({f"blues-pt{p}" for p in table["patient"]})
    rng = np.random.default_rng([seed, 1])
    n_test = int(round(len(subjects) * float(cfg["voices"]["test_subject_fraction"])))
    test_subjects = (
        set(np.array(subjects)[rng.permutation(len(subjects))[:n_test]].tolist()) if len(subjects) > 1 else set()
    )
    specs = []
    for r in table.to_dict("records"):
        subj = f"blues-pt{r['patient']}"
        specs.append(
            {
                "scan_id": f"blues_{pocus.scan_id_of(r['stem'])}",
                "subject_id": subj,
                "source": str(Path(r["path"]).relative_to(root)),
                "label": r["label"],
                "findings": list(r["findings"]),
                "md1": r["comment"],
                "free_text_terms": FREE_TEXT_TERMS,
                "probe": "convex",
                "voice_split": "test" if subj in test_subjects else "train",
            }
        )
    return specs


def classes_of(cfg: dict) -> dict:
    return {"classes": list(CLASSES), "label_names": list(FINDINGS), "mask_classes": [], "task_classes": list(CLASSES)}


def build_scan(
    spec: dict, root: Path, cfg: dict, seed: int, voices: dict[str, list[Voice]], tts: EspeakTTS
) -> tuple[dict, dict]:
    row, truth = pocus.build_lung_scan(spec, root, cfg, seed, voices, tts, _data_root(cfg))
    truth["comment"] = truth.pop("md1_comment")
    return row, truth

"""Results tables in the layout of a paper's Table III: one row per variant, Markdown + JSON.

Example:
    >>> row = {"variant": "image_voice", "accuracy": 0.8, "precision": 0.7, "recall": 0.7, "f1": 0.7}
    >>> row.update(boot_mean=0.8, boot_std=0.05)
    >>> md = results_markdown([row], {"image_voice": 0.76})
    >>> "| image_voice |" in md
    True
"""

from __future__ import annotations

from pathlib import Path

from sonotell.files import write_json, write_text


def _f(v) -> str:
    return "–" if v is None else f"{v:.3f}"


def results_markdown(rows: list[dict], paper_accuracy: dict | None = None, title: str = "Results") -> str:
    """The Table III layout: variant, accuracy, macro P/R/F1, bootstrap accuracy mean ± std, paper accuracy."""
    paper_accuracy = paper_accuracy or {}
    lines = [
        f"## {title}",
        "",
        "| variant | accuracy | precision | recall | F1 | bootstrap accuracy (mean ± std) "
        "| paper accuracy | description |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "accuracy" not in r:
            lines.append(
                f"| {r['variant']} | – | – | – | – | – | {_f(paper_accuracy.get(r['variant']))} "
                f"| skipped: {r.get('skipped', '')} |"
            )
            continue
        lines.append(
            f"| {r['variant']} | {_f(r['accuracy'])} | {_f(r['precision'])} | {_f(r['recall'])} | {_f(r['f1'])} | "
            f"{_f(r['boot_mean'])} ± {_f(r['boot_std'])} | {_f(paper_accuracy.get(r['variant']))} "
            f"| {r.get('description', '')} |"
        )
    return "\n".join(lines) + "\n"


def per_class_markdown(name: str, summary: dict) -> str:
    lines = [f"### {name}: per class", "", "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for c, v in summary["per_class"].items():
        lines.append(f"| {c} | {_f(v['precision'])} | {_f(v['recall'])} | {_f(v['f1'])} | {v['support']} |")
    return "\n".join(lines) + "\n"


def ordering_sentence(rows: list[dict], order: tuple[str, ...] = ("image_voice", "voice", "image")) -> str:
    """Whether the measured accuracies follow the paper's ordering (image+voice > voice > image)."""
    acc = {r["variant"]: r["accuracy"] for r in rows if "accuracy" in r}
    if not all(o in acc for o in order):
        return "The paper's ordering could not be checked (a variant is missing)."
    holds = all(acc[a] > acc[b] for a, b in zip(order, order[1:]))
    measured = " vs ".join(f"{o} {acc[o]:.3f}" for o in order)
    return f"Paper's ordering {' > '.join(order)}: {'holds' if holds else 'does NOT hold'} here ({measured})."


def write_results(out_dir: str | Path, rows: list[dict], per_variant: dict, meta: dict) -> Path:
    """Write ``results.md`` and ``results.json`` (atomically); returns the Markdown path."""
    out_dir = Path(out_dir)
    title = (
        f"voice_label on {meta.get('benchmark', '?')}: {meta.get('n_samples')} samples, "
        f"{meta.get('n_patients')} patients, {meta.get('cv', {}).get('scheme')} "
        f"({meta.get('cv', {}).get('k')} folds), pooled predictions"
    )
    parts = [results_markdown(rows, meta.get("paper_accuracy"), title), ordering_sentence(rows), ""]
    parts.append(
        f"Classes (sample counts): {meta.get('class_counts')}. "
        "Paper numbers are for EUS with 5 classes; they are a reference, not the same task."
    )
    if meta.get("majority_class_accuracy") is not None:
        parts.append(
            f"Always predicting the most frequent class scores accuracy {meta['majority_class_accuracy']:.3f}."
        )
    if meta.get("keyword_encoder"):
        ke = meta["keyword_encoder"]
        parts.append(
            f"Keyword encoder (stands in for Speech Commands): {len(ke.get('words') or [])} words, "
            f"held-out-voice accuracy {_f(ke.get('held_out_voice_accuracy'))}."
        )
    thr = [r for r in rows if "train_samples_per_s" in r]
    if thr:
        parts += ["", "| variant | training samples/s | inference clips/s |", "|---|---|---|"]
        parts += [
            f"| {r['variant']} | {r['train_samples_per_s']:.1f} | {r['inference_clips_per_s']:.1f} |" for r in thr
        ]
    for w in meta.get("warnings", []):
        parts.append(f"- warning: {w}")
    parts.append("")
    for name, pv in per_variant.items():
        parts.append(per_class_markdown(name, pv["summary"]))
    md = write_text(out_dir / "results.md", "\n".join(parts) + "\n")
    write_json(out_dir / "results.json", {"meta": meta, "rows": rows, "variants": per_variant})
    return md

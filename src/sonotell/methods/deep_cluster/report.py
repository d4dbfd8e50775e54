"""Summaries, paired comparisons, the Markdown report and plots of the deep-clustering experiment."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from sonotell.data.frames import FrameSet
from sonotell.files import write_json, write_text
from sonotell.methods.deep_cluster.splits import Split

log = logging.getLogger(__name__)


def mean_std(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, float)
    return (float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0) if len(a) else (float("nan"), float("nan"))


def summarise(rows: list[dict]) -> dict:
    """Mean / std (over folds x seeds) and best-seed F1 for each table cell."""
    return {
        "clustering": [_cell(c, key, best_seed=True) for key, c in _cells(rows, "clustering", ("prior",))],
        "lambda": [_cell(c, key) for key, c in _cells(rows, "lambda", ("lambda",))],
        "semisup": [_cell(c, key) for key, c in _cells(rows, "semisup", ("fraction", "init", "method"), True)],
    }


def _cells(rows: list[dict], table: str, fields: tuple, scored_only: bool = False) -> list[tuple[dict, list[dict]]]:
    """The cells of one table, sorted by their ``fields``: (field values, the cell's runs)."""
    runs = [r for r in rows if r["table"] == table]
    keys = sorted({tuple(r[f] for f in fields) for r in runs})
    chosen = [r for r in runs if not scored_only or "f1" in r]
    return [(dict(zip(fields, k)), [r for r in chosen if tuple(r[f] for f in fields) == k]) for k in keys]


def _cell(runs: list[dict], key: dict, best_seed: bool = False) -> dict:
    """F1 mean / std of a cell's runs (and its best seed's mean), AP mean when every run has one."""
    m, sd = mean_std([r["f1"] for r in runs])
    out = {**key, "f1_mean": m, "f1_std": sd}
    if best_seed:
        by_seed: dict = {}
        for r in runs:
            by_seed.setdefault(r["seed"], []).append(r["f1"])
        out["f1_best_seed"] = max(np.mean(v) for v in by_seed.values())
    ap = [r.get("ap") for r in runs]
    out["ap_mean"] = mean_std(ap)[0] if None not in ap else None
    out["n_runs"] = len(runs)
    return out


def paired_clustering(rows: list[dict], seed: int = 0) -> dict:
    """Dirichlet vs negative-entropy prior, and each vs "every label present", paired by (fold, seed) on F1."""
    from sonotell.eval.paired import paired_difference

    paired = _clustering_pairs(rows)
    out = {}
    for name, pairs in paired.items():
        complete = [(a, b) for a, b in pairs if a is not None and b is not None]
        # the two priors are compared only where every (fold, seed) has both
        enough = len(complete) == len(pairs) if name[1] == "negative_entropy" else True
        if enough and len(complete) >= 2:
            out[name] = paired_difference([a for a, _ in complete], [b for _, b in complete], seed=seed)
    return out


def _clustering_pairs(rows: list[dict]) -> dict[tuple[str, str], list[tuple]]:
    """Per comparison, its (F1 of A, F1 of B) pairs by (fold, seed); None where a run is missing."""
    scored = [r for r in rows if r.get("f1") is not None]
    runs = {(r["prior"], r["fold"], r["seed"]): r["f1"] for r in scored if r.get("table") == "clustering"}
    every = {r["fold"]: r["f1"] for r in scored if r.get("method") == "all_positive"}
    keys = sorted({(f, s) for (_, f, s) in runs}, key=str)
    paired = {
        ("dirichlet", "negative_entropy"): [
            (runs.get(("dirichlet", *k)), runs.get(("negative_entropy", *k))) for k in keys
        ]
    }
    for prior in ("dirichlet", "negative_entropy"):
        paired[(prior, "every label present")] = [(runs.get((prior, *k)), every.get(k[0])) for k in keys]
    return paired


def write_report(rows: list[dict], frames: FrameSet, splits: list[Split], cfg: dict, out_dir: Path) -> Path:
    """``results.json`` (every run + summary), ``report.md`` and the F1-vs-fraction plot."""
    summary = summarise(rows)
    split_info = [
        {
            "test": s.test_groups,
            "val": s.val_groups,
            "n_train": len(s.train),
            "n_pool": len(s.pool),
            "n_val": len(s.val),
            "n_test": len(s.test),
        }
        for s in splits
    ]
    write_json(
        out_dir / "results.json",
        {"classes": frames.classes, "splits": split_info, "config": cfg, "summary": summary, "runs": rows},
    )
    lines = [
        "# Deep clustering and multi-label semi-supervised learning",
        "",
        f"{int(frames.labelled.sum())} labelled / {len(frames.images)} frames, classes: {', '.join(frames.classes)}; "
        f"{len(splits)} subject-level folds; weighted F1 on test with per-class thresholds from validation.",
        "",
        "## Clustering alone (Algorithm 1 labels from the training dev set)",
        "",
        "F1: weighted, thresholds from validation. AP: support-weighted average precision on test (threshold-free).",
        "",
        "| prior | F1 mean | F1 std | best seed | AP mean | runs |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['prior']} | {r['f1_mean']:.3f} | {r['f1_std']:.3f} | {r['f1_best_seed']:.3f} "
        f"| {_fmt(r.get('ap_mean'))} | {r['n_runs']} |"
        for r in summary["clustering"]
    ]
    lines += [
        "",
        "## Dirichlet prior weight lambda",
        "",
        "| lambda | F1 mean | F1 std | AP mean | runs |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['lambda']:g} | {r['f1_mean']:.3f} | {r['f1_std']:.3f} | {_fmt(r.get('ap_mean'))} | {r['n_runs']} |"
        for r in summary["lambda"]
    ]
    lines += [
        "",
        "## Init x method x labelled fraction",
        "",
        "| fraction | init | method | F1 mean | F1 std | AP mean | runs |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['fraction']:g} | {r['init']} | {r['method']} | {r['f1_mean']:.3f} | {r['f1_std']:.3f} "
        f"| {_fmt(r.get('ap_mean'))} | {r['n_runs']} |"
        for r in summary["semisup"]
    ]
    paired = paired_clustering(rows)
    if paired:
        from sonotell.eval.paired import describe

        lines += [
            "",
            "## Paired comparisons (same folds x seeds; 95 % bootstrap interval of the mean F1 difference)",
            "",
            "| A | B | F1 difference A - B | pairs |",
            "|---|---|---|---|",
        ]
        lines += [f"| {a} | {b} | {describe(r)} | {r['n']} |" for (a, b), r in paired.items()]
    write_text(out_dir / "report.md", "\n".join(lines) + "\n")
    write_json(out_dir / "paired.json", [{"a": a, "b": b, **r} for (a, b), r in paired.items()])
    if summary["semisup"]:
        _plot_f1_vs_fraction(summary["semisup"], out_dir / "f1_vs_fraction.png")
    return out_dir / "report.md"


def _fmt(v) -> str:
    return "" if v is None else f"{v:.3f}"


def _plot_f1_vs_fraction(cells: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sonotell.files import atomic_path

    fig, ax = plt.subplots(figsize=(6, 4))
    for init, method in sorted({(c["init"], c["method"]) for c in cells}):
        pts = sorted(
            (c["fraction"], c["f1_mean"], c["f1_std"]) for c in cells if (c["init"], c["method"]) == (init, method)
        )
        x, y, e = (np.array(v) for v in zip(*pts))
        label = method if init == "-" else f"{init} init, {method}"
        ax.errorbar(
            100 * x,
            y,
            yerr=e,
            marker="o",
            capsize=3,
            linestyle=":" if init == "-" else "-" if init == "cluster" else "--",
            label=label,
        )
    ax.set_xlabel("labelled fraction (%)")
    ax.set_ylabel("weighted F1 (test)")
    ax.set_xscale("log")
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)

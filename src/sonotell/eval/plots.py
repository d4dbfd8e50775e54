"""Plots a person can open: confusion matrices, bar and line charts, written as PNG atomically.

Example:
    >>> confusion_matrix_png("cm.png", [[0.8, 0.2], [0.1, 0.9]], ["a", "b"])  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from sonotell.files import atomic_path


def _figure(width: float, height: float):
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt, plt.figure(figsize=(width, height), dpi=110)


def _save(plt, fig, path: str | Path) -> Path:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)


def confusion_matrix_png(
    path: str | Path,
    cm: Sequence[Sequence[float]],
    class_names: Sequence[str],
    title: str = "confusion (rows: true class, normalised)",
) -> Path:
    """A confusion matrix normalised by true class, with the value in every cell."""
    cm = np.asarray(cm, float)
    n = len(class_names)
    plt, fig = _figure(1.2 + 0.7 * n, 1.0 + 0.6 * n)
    ax = fig.add_subplot(111)
    ax.imshow(cm, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            ax.text(
                j,
                i,
                f"{cm[i, j]:.2f}",
                ha="center",
                va="center",
                color="white" if cm[i, j] > 0.5 else "black",
                fontsize=8,
            )
    ax.set_xticks(range(n), class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    return _save(plt, fig, path)


def bar_png(
    path: str | Path,
    names: Sequence[str],
    values: Sequence[float],
    errors: Sequence[float] | None = None,
    ylabel: str = "",
    title: str = "",
    reference: dict[str, float] | None = None,
) -> Path:
    """Bars with optional error bars; ``reference`` adds a marker per name (e.g. the paper's numbers)."""
    plt, fig = _figure(1.5 + 0.8 * len(names), 3.2)
    ax = fig.add_subplot(111)
    x = np.arange(len(names))
    ax.bar(x, values, yerr=errors, capsize=3, color="#4c72b0")
    if reference:
        xs = [i for i, n in enumerate(names) if n in reference]
        ax.scatter(xs, [reference[names[i]] for i in xs], marker="_", s=400, color="red", label="paper", zorder=3)
        ax.legend(fontsize=8)
    ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    return _save(plt, fig, path)


def line_png(
    path: str | Path,
    series: dict[str, tuple[Sequence[float], Sequence[float]]],
    xlabel: str = "",
    ylabel: str = "",
    title: str = "",
) -> Path:
    """One line per ``name: (x, y)``."""
    plt, fig = _figure(5, 3.2)
    ax = fig.add_subplot(111)
    for name, (x, y) in series.items():
        ax.plot(x, y, marker="o", ms=3, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    if len(series) > 1:
        ax.legend(fontsize=8)
    return _save(plt, fig, path)

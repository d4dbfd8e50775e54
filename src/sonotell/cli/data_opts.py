"""``--data`` / ``--benchmark`` / ``--labels``: how every learning command is told which scans to learn from."""

from __future__ import annotations

from pathlib import Path

DATA_HELP = (
    "Your scans: an ingest manifest CSV or a dataset YAML (manifest + labels + lexicon); instead of --benchmark."
)
LABELS_HELP = (
    "With --data: the labels folder (`sonotell label` or `sonotell review export`); default: the dataset file's."
)


def benchmark_or_data(benchmark: Path | None, data: Path | None, labels: Path | None, out: Path):
    """The benchmark folder as given, or the user's dataset as a benchmark-shaped view (speech in place of truth)."""
    from sonotell.errors import InputError

    if (data is None) == (benchmark is None):
        raise InputError(out, "give exactly one of --data (your scans) or --benchmark")
    if data is None:
        return benchmark
    from sonotell.data.dataset import load_dataset

    return load_dataset(data, labels=labels).as_benchmark()

"""Options several commands share, each written once as an ``Annotated`` alias.

A command names its parameter and the alias: ``seed: Seed = 0``, ``benchmark: BenchmarkDir = None``,
``devices: Devices = 1``; the flag, its short form and its help come from here, so ``-l`` means
``--labels`` wherever the alias is used. Adopted by the recipe commands (``cluster``, ``semisup``,
``experiment``, ``pretrain``, ``localise``, ``finetune``, ``bench``); the other command modules
adopt them by replacing their own ``typer.Option(...)`` declarations with these names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from sonotell.cli.data_opts import DATA_HELP, LABELS_HELP, benchmark_or_data
from sonotell.cli.ui import SEED_HELP, ConfigName, Overrides, Seed

__all__ = [
    "Accelerator",
    "BenchmarkDir",
    "ConfigName",
    "ConfigSeed",
    "DataFile",
    "Devices",
    "LabelsDir",
    "Lexicon",
    "NumNodes",
    "Overrides",
    "Seed",
    "Strategy",
    "input_paths",
    "scans",
]

BENCHMARK_HELP = "Benchmark folder (from `sonotell bench build`) or its name under bench_out/."
LEXICON_HELP = "Lexicon: a packaged name (e.g. lung, abdominal) or a YAML path."

# Optional[...] rather than `X | None`: typer reads these annotations at run time (Python 3.11 is fine with
# both, but the aliases are also read by tools that evaluate them under older rules).
BenchmarkDir = Annotated[Optional[Path], typer.Option("--benchmark", "-b", help=BENCHMARK_HELP)]
DataFile = Annotated[Optional[Path], typer.Option("--data", "-d", help=DATA_HELP)]
LabelsDir = Annotated[Optional[Path], typer.Option("--labels", "-l", help=LABELS_HELP)]
Lexicon = Annotated[str, typer.Option("--lexicon", help=LEXICON_HELP)]
ConfigSeed = Annotated[Optional[int], typer.Option("--seed", help=SEED_HELP + " Default: the config's seed.")]

# Lightning's placement of a training run (README "Scaling out").
Devices = Annotated[int, typer.Option("--devices", help="Devices for training (Lightning).")]
Accelerator = Annotated[str, typer.Option("--accelerator", help="cpu, gpu or auto.")]
Strategy = Annotated[str, typer.Option("--strategy", help="Lightning strategy, e.g. ddp for several devices.")]
NumNodes = Annotated[int, typer.Option("--num-nodes", min=1, help="Machines in a DDP run (each runs this command).")]


def input_paths(benchmark: Path | None, data: Path | None, labels: Path | None) -> list[Path | None]:
    """The files a command reads from ``--benchmark`` or ``--data``/``--labels``: no output may replace them."""
    if data is not None:
        return [data, labels]
    return [benchmark, None if benchmark is None else benchmark / "manifest.csv"]


def scans(benchmark: Path | None, data: Path | None, labels: Path | None, out: Path) -> tuple[object, list]:
    """What a learning command learns from (``--benchmark``, or ``--data``/``--labels`` as a benchmark-shaped
    view) and the files it must not overwrite."""
    inputs = input_paths(benchmark, data, labels)
    return benchmark_or_data(benchmark, data, labels, out), inputs

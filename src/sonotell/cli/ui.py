"""What the CLI shows: progress bars, tables, seeding. Only CLI code imports this."""

from __future__ import annotations

import contextlib
from enum import Enum
from pathlib import Path
from typing import Annotated, Iterator

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from sonotell.files import output_lock, refuse_overwriting_inputs
from sonotell.seeding import seed_everything  # noqa: F401  (re-exported for commands)

console = Console(stderr=True)

SEED_HELP = "Random seed; the same seed gives the same outputs."
OVERRIDE_HELP = "Config override key=value (dotted keys), repeatable."
ENGINE_HELP = "local (a process pool here) or ray (extra sonotell[ray]; one task per scan, retried if its worker dies)."
ADDRESS_HELP = "Ray cluster to join (host:port, ray://host:port or auto; default $RAY_ADDRESS; none: start Ray here)."
WORKERS_HELP = "Scans processed in parallel (local processes, or the CPUs of a Ray instance started here)."
CONFIG_NAME_HELP = "Config name (paper or small) or a YAML path."

# Options every command spells the same way: `seed: Seed = 0`, `override: Overrides = []`,
# `config: ConfigName = "small"`.
Seed = Annotated[int, typer.Option("--seed", help=SEED_HELP)]
Overrides = Annotated[list[str], typer.Option("--set", help=OVERRIDE_HELP)]
ConfigName = Annotated[str, typer.Option("--config", help=CONFIG_NAME_HELP)]


# Choices the parser refuses a typo in (values: the library's names; tests/cli check they agree).
class Recipe(str, Enum):
    """Self-supervised pretraining recipes (``sonotell.methods.pretrain.RECIPES``)."""

    show_from_tell = "show_from_tell"
    dual = "dual"
    av_contrastive = "av_contrastive"


class Experiment(str, Enum):
    """Paper experiment suites (``sonotell.methods.EXPERIMENTS``)."""

    voice_label = "voice_label"
    deep_cluster = "deep_cluster"
    pretrain_downstream = "pretrain_downstream"


class SemisupMethod(str, Enum):
    """``sonotell semisup --method`` (``sonotell.methods.deep_cluster.SEMISUP_METHODS``)."""

    supervised = "supervised"
    one_head = "one_head"
    two_head = "two_head"


class Prior(str, Enum):
    """Cluster-size terms (``sonotell.methods.deep_cluster.PRIORS``)."""

    dirichlet = "dirichlet"
    negative_entropy = "negative_entropy"


class EngineName(str, Enum):
    """Batch engines (``sonotell.engine.ENGINES``)."""

    local = "local"
    ray = "ray"


class VoiceSplit(str, Enum):
    """Which of a benchmark's voices ``eval labels`` scores."""

    test = "test"
    train = "train"
    all = "all"


class Truth(str, Enum):
    """What ``eval labels`` scores against."""

    benchmark = "benchmark"
    reviewed = "reviewed"


@contextlib.contextmanager
def progress_bar(description: str) -> Iterator:
    """A rich progress bar exposed as a ``Progress`` callback ``(done, total, message)``."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[message]}"),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task(description, total=None, message="")

        def update(done: int, total: int, message: str = "") -> None:
            bar.update(task, completed=done, total=total, message=message)

        yield update


def print_table(title: str, rows: list[dict]) -> None:
    """Print a list of dicts as a table (columns from the first row)."""
    if not rows:
        console.print(f"{title}: (no rows)")
        return
    table = Table(title=title)
    for k in rows[0]:
        table.add_column(str(k), overflow="fold")  # wrap long paths and label lists; never cut them to "…"
    for r in rows:
        table.add_row(*[_fmt(r.get(k)) for k in rows[0]])
    Console().print(table)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    return "" if v is None else str(v)


def path_option(value: str | None) -> Path | None:
    """A ``--config`` / ``--lexicon`` value that names a file (has a suffix), else None (a packaged name)."""
    return Path(value) if value and Path(value).suffix else None


@contextlib.contextmanager
def guarded_output(out: Path, inputs: list, command: str | None = None) -> Iterator[None]:
    """Refuse an ``out`` that is (or links to) one of ``inputs``, then hold ``out``'s lock for the block.

    Every command that writes wraps its work in this, so an output never replaces an input and
    two runs never write into one output at the same time (see ``sonotell.files``). ``command``
    (``"sonotell predict"``) claims a folder output: another command's folder is refused.
    """
    refuse_overwriting_inputs([out], inputs)
    with output_lock(out, command):
        yield

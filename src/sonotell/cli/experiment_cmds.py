"""``sonotell experiment RECIPE``: run a paper's full set of experiments and write its tables."""

from __future__ import annotations

from pathlib import Path

import typer

from sonotell.cli.data_opts import DATA_HELP, LABELS_HELP, benchmark_or_data
from sonotell.cli.ui import OVERRIDE_HELP, SEED_HELP, console, progress_bar, seed_everything


def register(app: typer.Typer) -> None:
    @app.command()
    def experiment(
        recipe: str = typer.Argument(..., help="Experiment name, e.g. voice_label or deep_cluster."),
        benchmark: Path = typer.Option(None, "--benchmark", "-b", help="Benchmark folder (from `sonotell bench build`) or its name under bench_out/."),
        data: Path = typer.Option(None, "--data", "-d", help=DATA_HELP),
        labels: Path = typer.Option(None, "--labels", "-l", help=LABELS_HELP),
        out: Path = typer.Option(Path("runs"), "--out", help="Output folder; tables go to OUT/RECIPE/."),
        config: str = typer.Option("small", "--config", help="Config name (paper or small) or a YAML path."),
        override: list[str] = typer.Option([], "--set", help=OVERRIDE_HELP),
        seed: int = typer.Option(0, "--seed", help=SEED_HELP),
    ) -> None:
        """Run every experiment of a recipe's paper and write Markdown + JSON tables."""
        from sonotell.methods import run_experiment

        benchmark = benchmark_or_data(benchmark, data, labels, out)
        seed_everything(seed)
        with progress_bar(f"experiment {recipe}") as progress:
            result = run_experiment(recipe, benchmark=benchmark, out_dir=out / recipe, config=config, overrides=override, seed=seed, progress=progress)
        console.print(f"wrote {result}")

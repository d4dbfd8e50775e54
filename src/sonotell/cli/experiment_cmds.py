"""``sonotell experiment RECIPE``: run a paper's full set of experiments and write its tables."""

from __future__ import annotations

from pathlib import Path

import typer

from sonotell.cli.options import BenchmarkDir, ConfigName, DataFile, LabelsDir, Overrides, Seed, scans
from sonotell.cli.ui import Experiment, console, guarded_output, path_option, progress_bar, seed_everything


def register(app: typer.Typer) -> None:
    @app.command()
    def experiment(
        recipe: Experiment = typer.Argument(..., help="Experiment suite."),
        benchmark: BenchmarkDir = None,
        data: DataFile = None,
        labels: LabelsDir = None,
        out: Path = typer.Option(Path("runs"), "--out", help="Output folder; tables go to OUT/RECIPE/."),
        config: ConfigName = "small",
        override: Overrides = [],  # noqa: B006  (typer reads, never mutates, the default)
        seed: Seed = 0,
    ) -> None:
        """Run every experiment of a recipe's paper and write Markdown + JSON tables."""
        from sonotell.methods import run_experiment

        benchmark, inputs = scans(benchmark, data, labels, out)
        seed_everything(seed)
        with (
            guarded_output(out / recipe.value, [*inputs, path_option(config)], "sonotell experiment"),
            progress_bar(f"experiment {recipe.value}") as progress,
        ):
            result = run_experiment(
                recipe.value,
                benchmark=benchmark,
                out_dir=out / recipe.value,
                config=config,
                overrides=override,
                seed=seed,
                progress=progress,
            )
        console.print(f"wrote {result}")

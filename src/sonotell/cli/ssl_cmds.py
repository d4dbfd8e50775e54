"""``sonotell pretrain RECIPE``: self-supervised pretraining from narrated scans -> an encoder checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from sonotell.cli.options import (
    Accelerator,
    BenchmarkDir,
    ConfigName,
    DataFile,
    Devices,
    LabelsDir,
    NumNodes,
    Overrides,
    Seed,
    Strategy,
    input_paths,
)
from sonotell.cli.ui import (
    Recipe,
    console,
    guarded_output,
    path_option,
    print_table,
    progress_bar,
)
from sonotell.seeding import seed_everything


def register(app: typer.Typer) -> None:
    """Add ``pretrain`` to the main app."""

    @app.command()
    def pretrain(
        recipe_choice: Recipe = typer.Argument(..., metavar="RECIPE", help="Pretraining recipe."),
        benchmark: BenchmarkDir = None,
        data: DataFile = None,
        labels: LabelsDir = None,
        out: Path = typer.Option(
            Path("runs/pretrain"), "--out", help="Output folder; the checkpoint goes to OUT/RECIPE/encoder.pt."
        ),
        config: ConfigName = "small",
        override: Overrides = [],  # noqa: B006  (typer reads, never mutates, the default)
        seed: Seed = 0,
        devices: Devices = 1,
        accelerator: Accelerator = "cpu",
        strategy: Strategy = "auto",
        num_nodes: NumNodes = 1,
        cache: Path = typer.Option(
            None, "--cache", help="Frame cache folder, shared by runs (default: OUT/frame_cache)."
        ),
    ) -> None:
        """Pretrain a recipe's encoders without labels and write an encoder checkpoint with its config.

        With --data (your narrated scans, no labels needed), the words of the --labels folder
        (`sonotell label`) feed the text branch.

        Example: sonotell pretrain show_from_tell --benchmark bench_out/synthetic --set train.epochs=2
        """
        from sonotell.errors import InputError
        from sonotell.methods.pretrain import pretrain as run_pretrain

        recipe = recipe_choice.value
        if (data is None) == (benchmark is None):
            raise InputError(out, "give exactly one of --data (your scans) or --benchmark")
        inputs = input_paths(benchmark, data, labels)
        if data is not None:
            from sonotell.data.dataset import load_dataset

            benchmark = load_dataset(data, labels=labels)
        seed_everything(seed)
        with (
            guarded_output(out / recipe, [*inputs, path_option(config)], "sonotell pretrain"),
            progress_bar(f"pretrain {recipe}") as progress,
        ):
            ckpt = run_pretrain(
                recipe,
                benchmark,
                out / recipe,
                config=config,
                overrides=override,
                seed=seed,
                progress=progress,
                devices=devices,
                accelerator=accelerator,
                strategy=strategy,
                cache_dir=cache or out / "frame_cache",
                num_nodes=num_nodes,
            )
        summary = ckpt.parent / "pretrain.json"
        if summary.exists():
            info = json.loads(summary.read_text())
            rows = [{"metric": k, "value": v} for k, v in sorted(info.get("metrics", {}).items())]
            rows += [
                {"metric": "train clips", "value": info.get("train_clips")},
                {"metric": "seconds", "value": info.get("seconds")},
            ]
            print_table(f"{recipe} pretraining", rows)
        console.print(f"wrote {ckpt} (config beside it: {ckpt.with_suffix('.yaml')})")

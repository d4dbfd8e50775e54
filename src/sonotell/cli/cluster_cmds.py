"""``sonotell cluster`` and ``sonotell semisup``: deep clustering and multi-label semi-supervised
learning on a folder of frames (Dadoun et al. 2023). ``sonotell experiment deep_cluster`` runs
the paper's full tables."""

from __future__ import annotations

from pathlib import Path

import typer

from sonotell.cli.options import Overrides, Seed
from sonotell.cli.ui import (
    Prior,
    SemisupMethod,
    console,
    guarded_output,
    path_option,
    print_table,
    progress_bar,
)
from sonotell.seeding import seed_everything

FRAMES_HELP = "Frame folder: frameset.npz, or images/*/*.jpg with RGB organ masks in annotations/*/*.png."


def register(app: typer.Typer) -> None:
    """Add ``cluster`` and ``semisup`` to the main app."""

    @app.command()
    def cluster(
        frames: Path = typer.Argument(..., help=FRAMES_HELP),
        out: Path = typer.Option(
            Path("runs/cluster"), "--out", help="Output folder (checkpoint, assignments.csv, clusters.json)."
        ),
        k: int = typer.Option(
            0, "--k", help="Number of clusters; 0 = number of frequent label combinations of the labelled frames."
        ),
        prior: Prior = typer.Option(
            Prior.dirichlet, "--prior", help="Cluster-size term: dirichlet (L_SD) or negative_entropy (PICA's L_NE)."
        ),
        config: str = typer.Option("small", "--config", help="deep_cluster config (paper or small) or a YAML path."),
        override: Overrides = [],  # noqa: B006  (typer reads, never mutates, the default)
        seed: Seed = 0,
    ) -> None:
        """Cluster frames with PICA + a cluster-size prior; name clusters from the labelled frames (Algorithm 1)."""
        from sonotell.methods.deep_cluster import cluster_frames

        seed_everything(seed)
        with (
            guarded_output(out, [frames, path_option(config)], "sonotell cluster"),
            progress_bar("clustering") as progress,
        ):
            result = cluster_frames(
                frames, out, k=k, prior=prior.value, config=config, overrides=override, seed=seed, progress=progress
            )
        print_table(
            f"clusters (K={result['k']}, {result['prior']}; organ frequency among labelled frames)", result["clusters"]
        )
        console.print(f"wrote {out / 'assignments.csv'}, {out / 'clusters.json'}, {out / 'cluster_model.pt'}")

    @app.command()
    def semisup(
        frames: Path = typer.Argument(..., help=FRAMES_HELP),
        method: SemisupMethod = typer.Option(
            SemisupMethod.two_head, "--method", help="supervised, or FixMatch with one or two heads."
        ),
        init: str = typer.Option(
            "random", "--init", help="Encoder init: random, or a checkpoint path (e.g. from `sonotell cluster`)."
        ),
        fraction: float = typer.Option(
            1.0, "--fraction", help="Fraction of the labelled training frames used as labels."
        ),
        fold: int = typer.Option(
            0, "--fold", help="Which subject-level split (test = block FOLD, validation = the next)."
        ),
        out: Path = typer.Option(Path("runs/semisup"), "--out", help="Output folder (checkpoints, report.json)."),
        config: str = typer.Option(
            "small",
            "--config",
            help=(
                "deep_cluster config (paper or small) or a YAML path; "
                "its semisup section sets FixMatch (--set semisup.steps=10)."
            ),
        ),
        override: Overrides = [],  # noqa: B006  (typer reads, never mutates, the default)
        seed: Seed = 0,
    ) -> None:
        """Multi-label fine-tuning or FixMatch on one subject-level split; per-class P/R/F1 on test."""
        from sonotell.methods.deep_cluster import semisup_frames

        seed_everything(seed)
        inputs = [frames, path_option(config), None if init == "random" else Path(init)]
        with guarded_output(out, inputs, "sonotell semisup"), progress_bar(method.value) as progress:
            rep = semisup_frames(
                frames,
                out,
                method=method.value,
                init=init,
                fraction=fraction,
                fold=fold,
                config=config,
                overrides=override,
                seed=seed,
                progress=progress,
            )
        rows = [{"class": c, **v} for c, v in rep["per_class"].items()] + [{"class": "weighted", **rep["weighted"]}]
        print_table(
            f"{method.value}, {init} init, {fraction:g} labelled "
            f"({rep['n_labelled']} frames, {rep['n_unlabelled']} unlabelled)"
            f" - test subjects {', '.join(rep['test_subjects'])}",
            rows,
        )
        console.print(f"wrote {out / 'report.json'}")

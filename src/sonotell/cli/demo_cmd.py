"""``sonotell demo``: the whole job end to end on data the demo makes itself."""

from __future__ import annotations

from pathlib import Path

import typer

from sonotell.cli.ui import SEED_HELP, console, guarded_output, print_table, progress_bar


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        out: Path = typer.Option(
            Path("demo_out"), "--out", "-o", help="Output folder (report.md, plots, labels, checkpoints)."
        ),
        subjects: int = typer.Option(
            6, "--subjects", help="Synthetic subjects (2 scans each); a third are held out for testing."
        ),
        epochs: int = typer.Option(12, "--epochs", help="Training epochs of the organ classifier."),
        seed: int = typer.Option(0, "--seed", help=SEED_HELP),
    ) -> None:
        """Synthetic narrated scans -> ingest -> labels from speech -> training -> evaluation report.

        Needs no data and no network. Takes a few minutes on 2 CPU cores.
        """
        import json

        from sonotell.demo import run_demo

        with guarded_output(out, [], "sonotell demo"), progress_bar("demo") as progress:
            report = run_demo(out, seed=seed, subjects=subjects, epochs=epochs, progress=progress)
        summary = json.loads((out / "demo.json").read_text())
        print_table(
            "demo stages",
            [
                {"stage": s["name"], "status": s["status"], "seconds": s["seconds"], "note": s["note"]}
                for s in summary["stages"]
            ],
        )
        if summary["results"].get("classification"):
            print_table("organ classification on held-out subjects", summary["results"]["classification"])
        console.print(f"report: {report}")

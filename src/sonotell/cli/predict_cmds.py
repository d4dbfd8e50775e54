"""``sonotell predict MODEL SCANS --out DIR``: a trained classifier over new scans, narrated or silent."""

from __future__ import annotations

from pathlib import Path

import typer

from sonotell.cli.ui import console, guarded_output, print_table, progress_bar


def register(app: typer.Typer) -> None:
    @app.command()
    def predict(
        model: Path = typer.Argument(..., help="model.pt from `sonotell train` (or its folder)."),
        scans: list[Path] = typer.Argument(
            ..., help="Videos, folders of videos, ingest manifests or dataset YAMLs; speech is not needed."
        ),
        out: Path = typer.Option(
            ..., "--out", "-o", help="Output folder: per-scan probabilities, contact sheets, summary.csv/json."
        ),
        lexicon: str = typer.Option(
            None, "--lexicon", help="Refuse the model when its label set differs from this lexicon's."
        ),
        video: bool = typer.Option(
            False, "--video/--no-video", help="Also write <scan>.overlay.mp4 with the Grad-CAM map of the top label."
        ),
        parquet: bool = typer.Option(
            False, "--parquet", help="Write per-frame probabilities as Parquet instead of CSV."
        ),
        batch_size: int = typer.Option(
            64, "--batch-size", help="Frames per forward pass (memory is flat in video length)."
        ),
    ) -> None:
        """Per-frame label probabilities, a per-scan summary and a contact sheet for every scan.

        A label is predicted where its probability reaches the threshold `sonotell train` chose for it on
        its training split (stored in model.pt); a scan is `present` when its mean probability reaches the
        label's clip threshold.

        Example: sonotell predict runs/clf/model.pt archive/ --out predictions/
        """
        from sonotell.methods.predict import dataset_label_sets, predict_scans, scans_from

        items = scans_from(scans)
        label_sets = dataset_label_sets(scans)
        with guarded_output(out, [model, *scans], "sonotell predict"), progress_bar("predict") as progress:
            summary = predict_scans(
                model,
                items,
                out,
                lexicon=lexicon,
                data_label_sets=label_sets,
                batch_size=batch_size,
                overlay=video,
                parquet=parquet,
                progress=progress,
            )
        import json

        doc = json.loads(summary.read_text())
        for f in doc["failed"]:
            console.print(f"[red]failed:[/red] {f['error']}", markup=True, highlight=False, soft_wrap=True)
        shown = [r for r in doc["labels"] if r["predicted_share"] > 0]
        print_table(
            "predicted labels per scan",
            [
                {k: r[k] for k in ("scan_id", "label", "peak_prob", "threshold", "predicted_share", "present", "spans")}
                for r in shown
            ],
        )
        console.print(f"wrote {len(items) - doc['n_failed']} scans to {out} (summary: {summary})")

"""``sonotell deid MANIFEST --labels LABELS --out DIR`` (a shareable copy) and ``sonotell deid check DIR``."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.core import TyperGroup

from sonotell.cli.ui import console, print_table, progress_bar


class _RunByDefault(TyperGroup):
    """``sonotell deid MANIFEST ...`` means ``sonotell deid run MANIFEST ...``."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


def _config(name: str, overrides: list[str] | None):
    from sonotell.config import load_config
    from sonotell.deid.pipeline import DeidConfig

    return DeidConfig.from_dict(load_config("deid", name, overrides or []))


CONFIG_HELP = "Packaged deid config name or a YAML file."
SET_HELP = "Override a config key, e.g. --set speech.pad_s=0.3 (repeatable)."


def register(app: typer.Typer) -> None:
    deid_app = typer.Typer(
        help="De-identify scans, narration and labels for sharing; check a de-identified folder.",
        no_args_is_help=True,
        cls=_RunByDefault,
    )
    app.add_typer(deid_app, name="deid")

    @deid_app.command("run")
    def run(
        manifest: Path = typer.Argument(..., help="The scans' manifest.csv."),
        labels: Path = typer.Option(None, "--labels", help="Output folder of `sonotell label` (transcripts, labels)."),
        out: Path = typer.Option(..., "--out", help="The shareable folder to write (outside every input folder)."),
        key: Path = typer.Option(
            ..., "--key", help="Pseudonym key file (made when missing; keep it private, outside OUT)."
        ),
        mapping: Path = typer.Option(None, "--mapping", help="Original -> pseudonym table (default: KEY.mapping.csv)."),
        lexicon: str = typer.Option(
            None, "--lexicon", help="Lexicon whose terms are never redacted (default: labels')."
        ),
        config: str = typer.Option("default", "--config", help=CONFIG_HELP),
        overrides: list[str] = typer.Option(None, "--set", help=SET_HELP),
    ) -> None:
        """Write OUT: frames blanked outside the sector and under burned-in text, DICOM tags scrubbed, spoken
        identifiers redacted and silenced, ids pseudonymised, and OUT/deid_report.json listing every removal."""
        from sonotell.deid.pipeline import deidentify

        cfg = _config(config, overrides)
        with progress_bar("de-identifying") as update:
            report = deidentify(
                manifest, labels, out, key, mapping_path=mapping, config=cfg, lexicon=lexicon, progress=update
            )
        print_table("removals", [{"kind": k, "count": n} for k, n in report.counts().items()])
        for flag in report.flags:
            console.print(f"[yellow]flag[/yellow] {flag.scan_id}: {flag.problem}")
        console.print(f"wrote {out} (report: {out / 'deid_report.json'})")

    @deid_app.command("check")
    def check_cmd(
        folder: Path = typer.Argument(..., help="A folder written by `sonotell deid`."),
        config: str = typer.Option("default", "--config", help=CONFIG_HELP),
        overrides: list[str] = typer.Option(None, "--set", help=SET_HELP),
    ) -> None:
        """Run the detectors again on FOLDER; exit 1 when anything identifying is found."""
        from sonotell.deid.pipeline import check

        with progress_bar("checking") as update:
            findings = check(folder, config=_config(config, overrides), progress=update)
        if findings:
            print_table("still identifying", [f.__dict__ for f in findings])
            raise typer.Exit(1)
        console.print(f"{folder}: nothing identifying found")

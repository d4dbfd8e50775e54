"""The ``sonotell`` command line: thin — parses arguments, calls library functions, shows progress.

Each area registers its commands from its own module, so the areas grow independently.
"""

from __future__ import annotations

import importlib
import logging
import sys

import typer

from sonotell.errors import SonotellError

app = typer.Typer(
    name="sonotell",
    help="Learn ultrasound anatomy from what clinicians say while they scan.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)



@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show library log messages (INFO)."),
) -> None:
    """sonotell: narrated ultrasound scans -> labelled frames -> in-domain models."""
    if verbose:
        logging.getLogger("sonotell").setLevel(logging.INFO)


# Modules that define ``register(app)``.
COMMAND_MODULES = (
    "sonotell.cli.ingest_cmds",
    "sonotell.cli.speech_cmds",
    "sonotell.cli.experiment_cmds",
    "sonotell.cli.train_cmds",
    "sonotell.cli.predict_cmds",
    "sonotell.cli.ssl_cmds",
    "sonotell.cli.ssl_downstream_cmds",
    "sonotell.cli.cluster_cmds",
    "sonotell.cli.bench_cmds",
    "sonotell.cli.demo_cmd",
)

for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main() -> None:
    """Entry point: SonotellError becomes one red line and exit code 2, never a traceback."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except SonotellError as e:
        from rich.console import Console

        Console(stderr=True).print(f"[red]error:[/red] {e}", markup=True, highlight=False)
        sys.exit(2)

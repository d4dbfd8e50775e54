"""The ``sonotell`` command line: thin — parses arguments, calls library functions, shows progress.

Each area registers its commands from its own module, so the areas grow independently.
"""

from __future__ import annotations

import errno
import importlib
import logging
import sys
import warnings

import typer

from sonotell.errors import SonotellError

app = typer.Typer(
    name="sonotell",
    help="Learn ultrasound anatomy from what clinicians say while they scan.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


# Third-party warnings a user cannot act on (how our training loop drives Lightning, library deprecations).
# Filtered at the CLI boundary only; --verbose shows them.
QUIET_WARNINGS = (
    r"You defined a `validation_step` but have no `val_dataloader`",
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    r"The number of training batches \(\d+\) is smaller than the logging interval",
    r"The '\w+_dataloader' does not have many workers",
)


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show library log messages (INFO) and every warning."),
) -> None:
    """sonotell: narrated ultrasound scans -> labelled frames -> in-domain models."""
    if verbose:
        logging.getLogger("sonotell").setLevel(logging.INFO)
    else:
        for pattern in QUIET_WARNINGS:
            warnings.filterwarnings("ignore", message=pattern)


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
    "sonotell.cli.review_cmds",
    "sonotell.cli.deid_cmds",
)

for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main() -> None:
    """Entry point: SonotellError becomes one red line and exit code 2, never a traceback."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except SonotellError as e:
        _fail(str(e))
    except OSError as e:
        if e.errno not in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            raise
        # A full disk outside sonotell.files' atomic writes: still one line, naming the file.
        _fail(f"{e.filename or 'output'}: could not be written: no space left on device (earlier outputs are intact)")


def _fail(message: str) -> None:
    from rich.console import Console
    from rich.markup import escape

    # escape: a message quoting "[...]" (a YAML error, a file name) must not be read as markup
    Console(stderr=True).print(f"[red]error:[/red] {escape(message)}", markup=True, highlight=False, soft_wrap=True)
    sys.exit(2)

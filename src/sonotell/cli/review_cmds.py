"""``sonotell review`` (web app, export), ``lexicon suggest``, ``export label-studio`` / ``import label-studio``."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.core import TyperGroup

from sonotell.cli.ui import console, guarded_output, print_table


class _ServeByDefault(TyperGroup):
    """``sonotell review LABELS_DIR`` means ``sonotell review serve LABELS_DIR``."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["serve", *args]
        return super().parse_args(ctx, args)


def _group(app: typer.Typer, name: str, help: str, **kwargs) -> typer.Typer:
    for group in app.registered_groups:
        if group.name == name:
            return group.typer_instance
    sub = typer.Typer(help=help, no_args_is_help=True, **kwargs)
    app.add_typer(sub, name=name)
    return sub


def register(app: typer.Typer) -> None:
    review_app = _group(
        app,
        "review",
        "Review and correct speech labels in a local web app; export the reviewed labels.",
        cls=_ServeByDefault,
    )

    @review_app.command("serve")
    def serve(
        labels_dir: Path = typer.Argument(..., help="Output folder of `sonotell label`."),
        manifest: Path = typer.Option(
            None, "--manifest", "-m", help="The scans' manifest.csv (default: LABELS_DIR/manifest.csv or beside it)."
        ),
        lexicon: str = typer.Option(
            None, "--lexicon", "-l", help="Lexicon of the labels (default: the one `label` used)."
        ),
        host: str = typer.Option(
            "127.0.0.1", "--host", help="Address to bind; anything but loopback requires the token in the URL."
        ),
        port: int = typer.Option(0, "--port", min=0, max=65535, help="Port (0: a free one)."),
        reviewer: str = typer.Option(
            None, "--reviewer", help="Name saved with each decision (default: the login name)."
        ),
        open_browser: bool = typer.Option(False, "--open", help="Open the page in a browser."),
        cache: Path = typer.Option(
            None,
            "--cache",
            help="Folder of browser previews (CACHE/previews, as `ingest --cache --preview` makes; "
            "default LABELS_DIR/cache). A scan without one gets it on first open.",
        ),
    ) -> None:
        """Start the review web app on LABELS_DIR (Ctrl+C to stop). Every change is saved at once."""
        import getpass
        import webbrowser

        import uvicorn

        from sonotell.review.app import LOOPBACK, create_app, is_loopback, new_token

        loopback = is_loopback(host)
        token = None if loopback else new_token()
        app_ = create_app(
            labels_dir,
            manifest,
            lexicon=lexicon,
            reviewer=reviewer or getpass.getuser(),
            token=token,
            allowed_hosts=LOOPBACK if loopback else (),
            cache_dir=cache,
        )
        sock = _bind(host, port)
        bound = sock.getsockname()[1]
        if port and bound != port:
            console.print(f"port {port} is in use; using {bound}", highlight=False)
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{shown}:{bound}/" + (f"?token={token}" if token else "")
        console.print(f"review {labels_dir} at [bold]{url}[/bold]  (Ctrl+C to stop)", highlight=False)
        if open_browser:
            webbrowser.open(url)
        server = uvicorn.Server(uvicorn.Config(app_, log_level="warning", access_log=False))
        server.run(sockets=[sock])

    @review_app.command("export")
    def export(
        labels_dir: Path = typer.Argument(..., help="Output folder of `sonotell label` (with review files)."),
        out: Path = typer.Option(
            ..., "--out", "-o", help="A new folder for the reviewed labels (same schema as `label`, plus source)."
        ),
        only_reviewed: bool = typer.Option(False, "--only-reviewed", help="Keep only the scans marked reviewed."),
    ) -> None:
        """Write frame labels with the reviews applied; any command taking a labels folder accepts OUT."""
        from sonotell.review.store import export_reviewed

        with guarded_output(out, [labels_dir], "sonotell review export"):
            summary = export_reviewed(labels_dir, out, only_reviewed=only_reviewed)
        console.print(f"wrote {out} ({summary['n_scans']} scans, {summary['n_reviewed']} marked reviewed)")

    lexicon_app = _group(app, "lexicon", "Lexicon tools.")

    @lexicon_app.command("suggest")
    def lexicon_suggest(
        labels_dir: Path = typer.Argument(..., help="Output folder of `sonotell label` with review files."),
        out: Path = typer.Option(
            None, "--out", "-o", help="Write the YAML patch here (default LABELS_DIR/lexicon_suggestions.yaml)."
        ),
        lexicon: str = typer.Option(
            None, "--lexicon", "-l", help="Lexicon to compare with (default: the one `label` used)."
        ),
        pad: float = typer.Option(1.0, "--pad", min=0.0, help="Words said within this many seconds of an event count."),
        max_words: int = typer.Option(3, "--max-words", min=1, max=6, help="Longest candidate phrase, in words."),
        min_count: int = typer.Option(
            1, "--min-count", min=1, help="Keep phrases said around at least this many events."
        ),
    ) -> None:
        """Candidate synonyms: words said around events a reviewer added or relabelled, with counts, as a YAML patch."""
        from sonotell.files import write_text
        from sonotell.review.suggest import patch_yaml, suggest

        rows = suggest(labels_dir, lexicon=lexicon, pad_s=pad, max_words=max_words, min_count=min_count)
        print_table("lexicon suggestions", rows)
        out = out or labels_dir / "lexicon_suggestions.yaml"
        write_text(out, patch_yaml(rows))
        console.print(f"wrote {out}")

    export_app = _group(app, "export", "Export to other tools.")
    import_app = _group(app, "import", "Import from other tools.")

    @export_app.command("label-studio")
    def export_ls(
        labels_dir: Path = typer.Argument(..., help="Output folder of `sonotell label`."),
        out: Path = typer.Option(..., "--out", "-o", help="Folder for config.xml and tasks.json."),
        manifest: Path = typer.Option(None, "--manifest", "-m", help="The scans' manifest.csv (video file names)."),
        media_url_prefix: str = typer.Option(
            "/data/local-files/?d=",
            "--media-url-prefix",
            "--media-url",
            help="URL prefix of the media files: each task's video and narration URL is this prefix, then the "
            "file's path relative to the manifest's folder (with --previews: relative to PREVIEWS).",
        ),
        previews: Path = typer.Option(
            None,
            "--previews",
            help="Use browser previews (H.264 + narration; `ingest --cache C --preview` makes them in C) as the "
            "tasks' videos: the cache folder C (missing previews are made).",
        ),
    ) -> None:
        """Label Studio tasks (pipeline events as predictions with scores) and its labelling config."""
        from sonotell.review.labelstudio import export_label_studio

        with guarded_output(out, [labels_dir, manifest], "sonotell export label-studio"):
            info = export_label_studio(
                labels_dir, out, media_url_prefix=media_url_prefix, manifest=manifest, previews=previews
            )
        console.print(f"wrote {out}/config.xml and {out}/tasks.json ({info['tasks']} tasks at {info['fps']:g} fps)")

    @import_app.command("label-studio")
    def import_ls(
        export_json: Path = typer.Argument(..., help="Label Studio's JSON export of the project."),
        labels: Path = typer.Option(
            ..., "--labels", help="The labels folder the tasks came from: review files are written there."
        ),
        mark_reviewed: bool = typer.Option(
            True, "--mark-reviewed/--no-mark-reviewed", help="Mark annotated scans reviewed."
        ),
    ) -> None:
        """Turn Label Studio annotations into review files (then `sonotell review export`)."""
        from sonotell.review.labelstudio import import_label_studio

        counts = import_label_studio(export_json, labels, mark_reviewed=mark_reviewed)
        print_table("imported", [counts])


def _bind(host: str, port: int, tries: int = 20):
    """A listening socket on ``port`` or, when it is taken, the next free one of ``tries``; one clear error else."""
    import socket

    from sonotell.errors import InputError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    last: OSError | None = None
    for p in [port] if port == 0 else range(port, min(port + tries, 65536)):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, p))
            return sock
        except OSError as e:
            sock.close()
            last = e
    raise InputError(f"{host}:{port}", f"cannot listen ({last.strerror if last else 'no port'}); try another --port")

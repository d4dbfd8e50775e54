"""``sonotell ingest DIR``: find narrated scans, validate every file, write the manifest (and caches)."""

from __future__ import annotations

from pathlib import Path

import typer

from sonotell.cli.ui import (
    ADDRESS_HELP,
    ENGINE_HELP,
    SEED_HELP,
    WORKERS_HELP,
    EngineName,
    console,
    print_table,
    progress_bar,
    seed_everything,
)


def _parse_size(text: str) -> tuple[int, int] | None:
    if text.lower() in ("native", "none", ""):
        return None
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"{text!r}: expected HEIGHTxWIDTH, e.g. 128x128, or 'native'") from None
    return h, w


def register(app: typer.Typer) -> None:
    @app.command()
    def ingest(
        folder: Path = typer.Argument(
            ..., help="Folder searched recursively for videos (mp4/avi/mov/mpeg/gif/dcm) and the speech beside them."
        ),
        out: Path = typer.Option(
            Path("manifest.csv"),
            "--out",
            "-o",
            help="Manifest CSV to write (schema: docs/ingest.md); a folder gets FOLDER/manifest.csv.",
        ),
        metadata: Path = typer.Option(
            None,
            "--meta",
            help=(
                "Sidecar CSV/JSON with subject_id / audio_offset_s / roi per file "
                "(default: FOLDER/metadata.csv or .json)."
            ),
        ),
        crop: bool = typer.Option(
            True, "--crop/--no-crop", help="Detect the moving ultrasound sector and record it as the ROI."
        ),
        max_mismatch: float = typer.Option(
            0.5, "--max-mismatch", help="Largest allowed audio/video duration difference, as a fraction of the video."
        ),
        engine: EngineName = typer.Option(EngineName.local, "--engine", help=ENGINE_HELP),
        address: str = typer.Option(None, "--address", help=ADDRESS_HELP),
        workers: int = typer.Option(2, "--workers", "-j", help=WORKERS_HELP),
        task_cpus: float = typer.Option(1.0, "--task-cpus", help="CPUs Ray reserves per task."),
        task_memory_gb: float = typer.Option(None, "--task-memory-gb", help="Memory (GB) Ray reserves per task."),
        resume: bool = typer.Option(
            True, "--resume/--fresh", help="Skip files validated by an earlier run and unchanged since."
        ),
        cache: Path = typer.Option(
            None, "--cache", help="Also decode every good scan into a frame cache under this folder."
        ),
        size: str = typer.Option(
            "128x128", "--size", help="Working size HEIGHTxWIDTH of the cached frames, or 'native'."
        ),
        audio_rate: int = typer.Option(16000, "--audio-rate", help="Sample rate of the cached audio (Hz)."),
        video_only: bool = typer.Option(
            False,
            "--video-only",
            help="Accept scans without speech (no audio file or track): for `sonotell predict` on silent archives.",
        ),
        preview: bool = typer.Option(
            False,
            "--preview",
            help="Also make a browser-playable preview (H.264 + the narration as AAC) of every good scan "
            "in CACHE/previews (needs --cache), for `sonotell review serve --cache CACHE`.",
        ),
        seed: int = typer.Option(0, "--seed", help=SEED_HELP),
    ) -> None:
        """Build a manifest of the narrated scans in FOLDER; report every bad file and keep the good ones."""
        from sonotell.engine import EngineSpec, open_engine
        from sonotell.files import output_lock, refuse_overwriting_inputs
        from sonotell.io.crop import CropParams
        from sonotell.io.ingest import IngestOptions, build_caches, manifest_path
        from sonotell.io.ingest import ingest as run_ingest

        seed_everything(seed)
        if preview and cache is None:
            raise typer.BadParameter("--preview needs --cache (the previews go to CACHE/previews)")
        working_size = _parse_size(size)
        options = IngestOptions(
            detect_crop=crop, crop=CropParams(), max_duration_mismatch=max_mismatch, video_only=video_only
        )
        spec = EngineSpec(
            engine.value, workers=workers, address=address, cpus_per_task=task_cpus, memory_gb_per_task=task_memory_gb
        )
        refuse_overwriting_inputs([cache], [folder, metadata])
        out = manifest_path(out)  # `--out somedir`: somedir/manifest.csv
        with open_engine(spec), output_lock(out):  # one Ray connection for the probes and the caches
            with progress_bar("ingest") as progress:
                result = run_ingest(
                    folder, out, metadata=metadata, options=options, engine=spec, resume=resume, progress=progress
                )
            for problem in result.problems:
                console.print(f"[red]bad file:[/red] {problem}", markup=True, highlight=False, soft_wrap=True)
            if cache is not None and result.scans:
                with output_lock(cache, "sonotell ingest --cache"), progress_bar("cache") as progress:
                    cache_problems = build_caches(
                        result.scans, cache, size=working_size, audio_rate_hz=audio_rate, engine=spec, progress=progress
                    )
                for problem in cache_problems:
                    console.print(f"[red]not cached:[/red] {problem}", markup=True, highlight=False, soft_wrap=True)
            if preview and result.scans:
                from sonotell.io.preview import build_previews

                with output_lock(cache), progress_bar("preview") as progress:
                    preview_problems = build_previews(result.scans, cache, progress=progress)
                for problem in preview_problems:
                    console.print(f"[red]no preview:[/red] {problem}", markup=True, highlight=False, soft_wrap=True)
        print_table(
            f"ingest {folder}",
            [
                {
                    "scans": len(result.scans),
                    "bad files": len(result.problems),
                    "reused (unchanged)": result.reused,
                    "hours of video": round(sum(s.duration_s or 0 for s in result.scans) / 3600, 3),
                    "manifest": str(result.manifest_path),
                },
            ],
        )
        if not result.scans:
            console.print("[red]error:[/red] no valid scans found", markup=True)
            raise typer.Exit(1)

"""``sonotell localise`` and ``sonotell finetune``: use a pretrained encoder downstream."""

from __future__ import annotations

from pathlib import Path

import typer

from sonotell.cli.options import BenchmarkDir, DataFile, LabelsDir, Overrides, Seed, scans
from sonotell.cli.ui import console, guarded_output, path_option, print_table, progress_bar, seed_everything


def register(app: typer.Typer) -> None:
    @app.command()
    def localise(
        video: Path = typer.Argument(..., help="Scan video (mp4/avi/mov/gif or DICOM cine)."),
        audio: Path = typer.Option(
            None, "--audio", "-a", help="Speech audio (wav/flac/ogg); default: the video's own track."
        ),
        out: Path = typer.Option(Path("overlay.mp4"), "--out", "-o", help="Overlay video to write (.mp4)."),
        checkpoint: Path = typer.Option(
            ..., "--checkpoint", "-c", help="A show_from_tell checkpoint (from `sonotell pretrain`)."
        ),
        size: int = typer.Option(224, "--size", help="Working resolution (square, pixels)."),
        n_frames: int = typer.Option(1, "--n-frames", help="Frames per clip fed for each output frame (centred)."),
        every: int = typer.Option(1, "--every", help="Localise every N-th frame."),
        window_s: float = typer.Option(0.3, "--window", help="Seconds of speech before and after each frame."),
        audio_offset_s: float = typer.Option(
            0.0, "--audio-offset", help="Where the audio starts on the video clock (s)."
        ),
        alpha: float = typer.Option(0.45, "--alpha", help="Opacity of the heat map."),
        seed: Seed = 0,
    ) -> None:
        """Audio-guided localisation: overlay each frame's response to the speech around it."""
        from sonotell.errors import InputError
        from sonotell.files import output_lock, refuse_overwriting_inputs
        from sonotell.methods.localise import load_localiser, localise_video, render_overlay

        if out.suffix.lower() not in (".mp4", ".mov", ".mkv", ".avi"):
            raise InputError(out, "overlay video must end in .mp4, .mov, .mkv or .avi")
        seed_everything(seed)
        refuse_overwriting_inputs([out], [video, audio, checkpoint, checkpoint.with_suffix(".yaml")])
        model, recipe = load_localiser(checkpoint)
        with output_lock(out), progress_bar("localise") as progress:
            result = localise_video(
                video,
                audio,
                model,
                size=(size, size),
                n_frames=n_frames,
                every=every,
                window_s=(window_s, window_s),
                audio_offset_s=audio_offset_s,
                progress=progress,
            )
            render_overlay(result, out, alpha=alpha)
        console.print(
            f"wrote {out} ({len(result.maps)} frames, model {result.frames_per_s:.1f} frames/s, recipe {recipe})"
        )

    @app.command()
    def finetune(
        benchmark: BenchmarkDir = None,
        data: DataFile = None,
        labels: LabelsDir = None,
        checkpoint: list[Path] = typer.Option(
            ..., "--checkpoint", "-c", help="Local encoder checkpoint to fine-tune from; repeatable."
        ),
        out: Path = typer.Option(
            Path("runs/finetune"), "--out", help="Output folder (results.md, results.json, confusion/)."
        ),
        config: str = typer.Option("small", "--config", help="Downstream config (paper or small) or a YAML path."),
        override: Overrides = [],  # noqa: B006  (typer reads, never mutates, the default)
        seed: Seed = 0,
    ) -> None:
        """Fine-tune plane/finding classification from checkpoints vs random init (patient-level k-fold CV)."""
        import json

        from sonotell.methods.downstream import results_table, run_finetune

        benchmark, inputs = scans(benchmark, data, labels, out)
        seed_everything(seed)
        names = {}
        for c in checkpoint:
            name = c.stem if c.stem not in names else f"{c.parent.name}/{c.stem}"
            names[name] = c
        with (
            guarded_output(out, [*inputs, path_option(config), *checkpoint], "sonotell finetune"),
            progress_bar("finetune") as progress,
        ):
            md = run_finetune(benchmark, names, out, config=config, overrides=override, seed=seed, progress=progress)
        print_table(
            "downstream F1 (mean ± std over folds)",
            results_table(json.loads((Path(md).parent / "results.json").read_text())),
        )
        console.print(f"wrote {md}")

"""``sonotell label`` / ``transcribe`` / ``eval labels``: narration -> words -> time-aligned frame labels."""

from __future__ import annotations

from pathlib import Path

import typer

from sonotell.cli.ui import (
    ADDRESS_HELP,
    ENGINE_HELP,
    OVERRIDE_HELP,
    SEED_HELP,
    WORKERS_HELP,
    EngineName,
    Truth,
    VoiceSplit,
    console,
    path_option,
    print_table,
    progress_bar,
    seed_everything,
)

CONFIG_HELP = (
    "Pipeline config: speech (default: Whisper base), speech_light (pocketsphinx), speech_small, speech_paper, "
    "baseline, or a YAML path."
)
LEXICON_HELP = "Lexicon: lung, eus, abdominal, fetal, or a YAML path."


def _scans(source: Path):
    """Scans of a manifest.csv, or of a benchmark folder (its manifest.csv)."""
    from sonotell.io.manifest import read_manifest

    path = source / "manifest.csv" if source.is_dir() else source
    return read_manifest(path).scans


def register(app: typer.Typer) -> None:
    @app.command()
    def label(
        manifest: Path = typer.Argument(..., help="manifest.csv (from `sonotell ingest`) or a benchmark folder."),
        lexicon: str = typer.Option(..., "--lexicon", "-l", help=LEXICON_HELP),
        out: Path = typer.Option(
            ..., "--out", "-o", help="Output folder: <scan>.labels.csv, <scan>.json, summary.csv/json."
        ),
        config: str = typer.Option("speech", "--config", help=CONFIG_HELP),
        override: list[str] = typer.Option([], "--set", help=OVERRIDE_HELP),
        workers: int = typer.Option(1, "--workers", "-w", min=1, help=WORKERS_HELP),
        engine: EngineName = typer.Option(EngineName.local, "--engine", help=ENGINE_HELP),
        address: str = typer.Option(None, "--address", help=ADDRESS_HELP),
        enrol: Path = typer.Option(
            None, "--enrol", help="A clinician voice sample (wav): keep the speaker who sounds like it."
        ),
        resume: bool = typer.Option(
            True, "--resume/--no-resume", help="Skip scans already labelled with the same config and lexicon."
        ),
        overwrite: bool = typer.Option(
            False,
            "--overwrite",
            help="Replace labels that OUT holds from another config or lexicon (refused otherwise).",
        ),
        seed: int = typer.Option(0, "--seed", help=SEED_HELP),
    ) -> None:
        """Turn each scan's narration into per-frame labels (resumable, parallel over scans)."""
        import json

        from sonotell import labels as labels_io
        from sonotell.config import load_config
        from sonotell.engine import EngineSpec
        from sonotell.files import check_run_fingerprint, output_lock, refuse_overwriting_inputs
        from sonotell.speech.batch import label_scans
        from sonotell.speech.lexicon import load_lexicon
        from sonotell.speech.pipeline import recipe_fingerprint

        seed_everything(seed)
        cfg = load_config("pipelines", config, override)
        if enrol is not None:
            cfg.setdefault("diarize", {})["enrol_wav"] = str(enrol.resolve())
        lex = load_lexicon(lexicon)  # a bad lexicon fails here, before any work
        scans = _scans(manifest)
        inputs = [
            manifest,
            manifest / "manifest.csv" if manifest.is_dir() else None,
            enrol,
            path_option(config),
            path_option(lexicon),
        ]
        inputs += [p for s in scans for p in (s.video_path, s.audio_path)]
        refuse_overwriting_inputs(labels_io.output_names(out, [s.scan_id for s in scans]), inputs)
        with output_lock(out):
            check_run_fingerprint(out, recipe_fingerprint(cfg, lex), overwrite=overwrite, what="sonotell label")
            spec = EngineSpec(engine.value, workers=workers, address=address)
            with progress_bar("label") as progress:
                summary_path = label_scans(
                    scans, out, config=cfg, lexicon=lexicon, engine=spec, resume=resume, progress=progress
                )
        summary = json.loads(summary_path.read_text())
        rows = labels_io.read_summary_rows(out)
        columns = ("scan_id", "status", "n_frames", "labelled_frames", "n_events", "n_negated", "labels")
        print_table("labels", [{k: r.get(k, "") for k in columns} for r in rows])
        for f in summary["failed"]:
            console.print(f"[red]failed:[/red] {f['error']}", highlight=False)
        console.print(f"wrote {out} ({summary['n_done']} labelled, {summary['n_failed']} failed)")
        if summary["n_failed"]:
            raise typer.Exit(1)

    @app.command()
    def transcribe(
        audio: Path = typer.Argument(..., help="An audio file or a video with an audio track."),
        lexicon: str = typer.Option(
            ..., "--lexicon", "-l", help=LEXICON_HELP + " Required: it sets the vocabulary the recogniser listens for."
        ),
        out: Path = typer.Option(None, "--out", "-o", help="Write the transcript JSON here (words, segments, events)."),
        config: str = typer.Option("speech", "--config", help=CONFIG_HELP),
        override: list[str] = typer.Option([], "--set", help=OVERRIDE_HELP),
        offset: float = typer.Option(0.0, "--offset", help="Audio start on the video clock, seconds."),
        enrol: Path = typer.Option(
            None, "--enrol", help="A clinician voice sample (wav): keep the speaker who sounds like it."
        ),
        seed: int = typer.Option(0, "--seed", help=SEED_HELP),
    ) -> None:
        """Transcribe one recording: speakers, words with timestamps, spotted terms."""
        from sonotell.config import load_config
        from sonotell.files import refuse_overwriting_inputs, write_json
        from sonotell.speech.pipeline import SpeechPipeline

        seed_everything(seed)
        inputs = [audio, path_option(config), path_option(lexicon)]
        refuse_overwriting_inputs([out], inputs)  # `--out a.wav` must not turn the recording into JSON
        with progress_bar("transcribe") as progress:
            progress(0, 1, audio.name)
            cfg = load_config("pipelines", config, override)
            if enrol is not None:
                cfg.setdefault("diarize", {})["enrol_wav"] = str(enrol.resolve())
            pipe = SpeechPipeline(cfg, lexicon)
            result = pipe.process_file(audio, offset)
            progress(1, 1, "done")
        print_table(
            "segments",
            [
                {"speaker": s["speaker"], "start_s": s["start_s"], "end_s": s["end_s"], "text": s["text"]}
                for s in result.segments
            ],
        )
        print_table(
            "terms",
            [
                {
                    "label": e.label,
                    "said": e.term,
                    "start_s": e.start_s,
                    "end_s": e.end_s,
                    "negated": e.negated,
                    "confidence": e.confidence,
                }
                for e in result.events
            ],
        )
        if out is not None:
            write_json(out, result.to_dict())
            console.print(f"wrote {out}")

    labels_app = typer.Typer(help="Labels folders: upgrade to format 2, re-align events.", no_args_is_help=True)
    app.add_typer(labels_app, name="labels")

    @labels_app.command("upgrade")
    def labels_upgrade(
        old: Path = typer.Argument(..., help="A labels folder (`sonotell label` or `review export`), format 1 or 2."),
        out: Path = typer.Option(..., "--out", "-o", help="The new folder (format 2); never OLD."),
        manifest: Path = typer.Option(
            None,
            "--manifest",
            "-m",
            help="manifest.csv or benchmark folder of the scans: their videos give the views of `view`-scope labels "
            "when OLD did not record them (else a mention holds align.max_view_s either side).",
        ),
        lexicon: str = typer.Option(None, "--lexicon", "-l", help=LEXICON_HELP + " Default: the folder's."),
        override: list[str] = typer.Option(
            [], "--set", help="align settings replacing the folder's, e.g. --set align.max_view_s=10."
        ),
        overwrite: bool = typer.Option(
            False, "--overwrite", help="Replace labels that OUT holds from another config or lexicon."
        ),
    ) -> None:
        """Rebuild the frame files from OLD's events with the format-2 rules (per-label states, scopes):
        no speech recognition is run again."""
        import yaml

        from sonotell import labels as labels_io
        from sonotell.errors import ConfigError
        from sonotell.files import output_lock, refuse_overwriting_inputs
        from sonotell.speech.realign import realign_folder

        overrides = {}
        for item in override:
            key, sep, value = item.partition("=")
            if not sep or not key.startswith("align."):
                raise ConfigError(f"--set {item!r}: expected align.KEY=VALUE")
            overrides[key[len("align.") :]] = yaml.safe_load(value)
        scans = _scans(manifest) if manifest is not None else None
        inputs = [old, manifest, path_option(lexicon), *labels_io.folder_files(old)]
        refuse_overwriting_inputs(labels_io.output_names(out, labels_io.scan_ids(old)), inputs)
        with output_lock(out), progress_bar("upgrade") as progress:
            summary = realign_folder(
                old, out, scans=scans, lexicon=lexicon, overrides=overrides, overwrite=overwrite, progress=progress
            )
        print_table(
            "labels (format 2)",
            [{"label": k, "scans": v} for k, v in sorted(summary["scans_with_label"].items())],
        )
        for f in summary["failed"]:
            console.print(f"[red]failed:[/red] {f['error']}", highlight=False)
        views = ", ".join(f"{k} {v}" for k, v in summary["views"].items() if v)
        console.print(f"wrote {out} ({summary['n_done']} scans, {summary['n_failed']} failed; views: {views})")
        if summary["n_failed"]:
            raise typer.Exit(1)

    eval_app = _eval_group(app)

    @eval_app.command("labels")
    def eval_labels(
        labels_dir: Path = typer.Argument(
            ..., help="Output folder of `sonotell label` (or of `sonotell review export`)."
        ),
        benchmark: Path = typer.Option(None, "--benchmark", "-b", help="A benchmark folder with the truth."),
        truth: Truth = typer.Option(
            Truth.benchmark,
            "--truth",
            help="benchmark: a benchmark's truth (--benchmark) or a truth CSV (--events); "
            "reviewed: the scans marked reviewed in `sonotell review`.",
        ),
        events: Path = typer.Option(
            None,
            "--events",
            help="Or a hand-written truth CSV: scan_id,label,start_s,end_s,negated,speaker (docs/speech.md).",
        ),
        lexicon: str = typer.Option(
            None, "--lexicon", "-l", help="Lexicon used to map the truth's label names (default: none)."
        ),
        split: VoiceSplit = typer.Option(VoiceSplit.test, "--split", help="Benchmark voice split to score."),
        tolerance: float = typer.Option(
            0.5,
            "--tolerance",
            min=0.0,
            help=(
                "An event matches a true one of its label within this many seconds "
                "(0.5 and 1.0 are always reported too)."
            ),
        ),
        out: Path = typer.Option(
            None, "--out", "-o", help="Write the metrics JSON here (default LABELS_DIR/eval_labels.json)."
        ),
        seed: int = typer.Option(0, "--seed", help=SEED_HELP + " (unused: the evaluation is deterministic)"),
    ) -> None:
        """Score labels: positive and negated mentions (apart and together) at 0.5 s and 1 s, per voice and per speaker;
        timestamp error, frame accuracy, diarization, term WER, RTF."""
        from sonotell.errors import InputError
        from sonotell.eval.labels import evaluate_labels_dir, evaluate_labels_events
        from sonotell.files import refuse_overwriting_inputs, write_json
        from sonotell.speech.lexicon import load_lexicon

        split = split.value
        if truth is Truth.reviewed:
            from sonotell.eval.labels import evaluate_labels_against
            from sonotell.review.store import LabelsFolder, reviewed_truth

            truths = reviewed_truth(labels_dir)
            if not truths:
                raise InputError(labels_dir, "no scan is marked reviewed (mark scans reviewed in `sonotell review`)")
            align = LabelsFolder.open(labels_dir).align_config
            summary, per_scan = evaluate_labels_against(labels_dir, truths, tolerance_s=tolerance, align_config=align)
            rows = [{"metric": k, "value": v} for k, v in summary.items() if not isinstance(v, (list, dict))]
            print_table(f"labels vs reviewed labels ({summary['n_scans']} reviewed scans)", rows)
            out = out or labels_dir / "eval_labels_reviewed.json"
            scans = [{k: v for k, v in s.items() if k != "term_pairs"} for s in per_scan]
            write_json(out, {"summary": summary, "per_scan": scans})
            console.print(f"wrote {out}")
            return
        if (benchmark is None) == (events is None):
            raise typer.BadParameter(
                "give either --benchmark DIR or --events FILE.csv", param_hint="--benchmark/--events"
            )
        lex = load_lexicon(lexicon) if lexicon else None
        if events is not None:
            summary, per_scan = evaluate_labels_events(labels_dir, events, lexicon=lex, tolerance_s=tolerance)
            title = f"labels vs {events.name}"
        else:
            from sonotell.bench import load_benchmark

            bench = load_benchmark(benchmark)
            table = bench.table
            ids = (
                list(table["scan_id"]) if split == "all" else list(table.loc[table["voice_split"] == split, "scan_id"])
            )
            summary, per_scan = evaluate_labels_dir(labels_dir, bench, lexicon=lex, scan_ids=ids, tolerance_s=tolerance)
            title = f"labels vs {bench.name} ({split} voices)"
        print_table(title, [{"metric": k, "value": v} for k, v in summary.items() if not isinstance(v, (list, dict))])
        print_table("mentions (label and negation must match)", _polarity_rows(summary["by_polarity"]))
        if summary.get("by_voice"):
            print_table(
                "per voice", [{"voice": v, **r} for v, pol in summary["by_voice"].items() for r in _polarity_rows(pol)]
            )
        print_table("per true speaker", [{"speaker": w, **r} for w, r in summary["by_speaker"].items()])
        out = out or labels_dir / "eval_labels.json"
        from sonotell.labels import folder_files

        label_files = folder_files(labels_dir)
        truth_files = [events] if events is not None else [benchmark, benchmark / "manifest.csv"]
        refuse_overwriting_inputs([out], [labels_dir, *truth_files, *label_files])
        write_json(
            out, {"summary": summary, "per_scan": [{k: v for k, v in s.items() if k != "term_pairs"} for s in per_scan]}
        )
        console.print(f"wrote {out}")


def _polarity_rows(by_polarity: dict) -> list[dict]:
    return [
        {"tolerance_s": tol, "mentions": kind, **{k: c[k] for k in ("tp", "fp", "fn", "precision", "recall", "f1")}}
        for tol, row in by_polarity.items()
        for kind, c in row.items()
    ]


def _eval_group(app: typer.Typer) -> typer.Typer:
    """The shared ``sonotell eval`` group: reuse it when another area registered it first."""
    for group in app.registered_groups:
        if group.name == "eval":
            return group.typer_instance
    eval_app = typer.Typer(help="Evaluate outputs against ground truth.", no_args_is_help=True)
    app.add_typer(eval_app, name="eval")
    return eval_app

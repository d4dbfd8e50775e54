"""``sonotell bench``: build narrated benchmarks and list the known ones."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from sonotell.cli.options import ConfigSeed, Overrides
from sonotell.cli.ui import (
    ADDRESS_HELP,
    ENGINE_HELP,
    WORKERS_HELP,
    EngineName,
    console,
    guarded_output,
    path_option,
    print_table,
    progress_bar,
)
from sonotell.seeding import seed_everything


def register(app: typer.Typer) -> None:
    bench = typer.Typer(
        help="Narrated benchmarks: real (or simulated) ultrasound + synthesised narration + ground truth.",
        no_args_is_help=True,
    )
    app.add_typer(bench, name="bench")

    @bench.command("build")
    def build(
        name: str = typer.Argument(..., help="Benchmark: synthetic, pocus, covid_blues or abdominal."),
        out: Path = typer.Option(
            None, "--out", "-o", help="Output folder (default bench_out/NAME). A rerun resumes an interrupted build."
        ),
        config: str = typer.Option(
            None, "--config", help="Config name under configs/bench or a YAML path (default: NAME)."
        ),
        override: Overrides = [],  # noqa: B006  (typer reads, never mutates, the default)
        seed: ConfigSeed = None,
        engine: EngineName = typer.Option(EngineName.local, "--engine", help=ENGINE_HELP),
        address: str = typer.Option(None, "--address", help=ADDRESS_HELP),
        workers: int = typer.Option(1, "--workers", "-w", min=1, help=WORKERS_HELP),
    ) -> None:
        """Build (or resume) a narrated benchmark folder: media, manifest.csv, truth/, masks/, bench.json.

        Example: sonotell bench build synthetic --set subjects=2 --set audio.snr_db=[5,5]
        """
        from sonotell.bench import build_benchmark, load_benchmark
        from sonotell.engine import EngineSpec

        if seed is not None:
            seed_everything(seed)
        out = out or Path("bench_out") / name
        t0 = time.perf_counter()
        with (
            guarded_output(out, [path_option(config)], "sonotell bench build"),
            progress_bar(f"bench {name}") as progress,
        ):
            root = build_benchmark(
                name,
                out,
                config=config,
                overrides=override,
                seed=seed,
                progress=progress,
                engine=EngineSpec(engine.value, workers=workers, address=address),
            )
        bench = load_benchmark(root)
        table = bench.table
        rows = [
            {
                "scans": len(bench.scans),
                "subjects": table["subject_id"].nunique(),
                "classes": len(bench.classes),
                "train-voice scans": int((table["voice_split"] == "train").sum()),
                "test-voice scans": int((table["voice_split"] == "test").sum()),
                "seconds": round(time.perf_counter() - t0, 1),
            }
        ]
        print_table(f"benchmark {bench.name}", rows)
        console.print(f"wrote {root}")

    # The help is passed here, not as a docstring, so that it stays one line in `sonotell bench --help`.
    @bench.command(
        "combine",
        help=(
            "One benchmark over several (scan and patient ids must be unique across them): "
            "pretrain on all the lung clips."
        ),
    )
    def combine(
        sources: list[Path] = typer.Argument(
            ..., help="Built benchmark folders, e.g. bench_out/pocus bench_out/covid_blues."
        ),
        out: Path = typer.Option(..., "--out", "-o", help="The combined benchmark folder (media stay in the sources)."),
    ) -> None:
        from sonotell.bench import load_benchmark
        from sonotell.bench.combine import combine_benchmarks

        with guarded_output(out, list(sources), "sonotell bench combine"):
            bench = load_benchmark(combine_benchmarks(list(sources), out))
        print_table(
            f"benchmark {bench.name}",
            [
                {
                    "scans": len(bench.scans),
                    "subjects": bench.table["subject_id"].nunique(),
                    "classes": len(bench.classes),
                }
            ],
        )
        console.print(f"wrote {out}")

    @bench.command("list")
    def list_() -> None:
        """List the benchmarks this version can build, with their config's main settings."""
        from sonotell.bench.build import benchmark_config, list_benchmarks

        rows = []
        for name in list_benchmarks():
            try:
                cfg = benchmark_config(name)
            except Exception as e:  # a missing config should not hide the others
                rows.append({"name": name, "seed": "", "noise SNR dB": "", "note": f"config error: {e}"})
                continue
            snr = cfg.get("audio", {}).get("snr_db")
            rows.append(
                {
                    "name": name,
                    "seed": cfg.get("seed"),
                    "noise SNR dB": "" if snr is None else f"{snr}",
                    "note": cfg.get("description", ""),
                }
            )
        print_table("benchmarks", rows)

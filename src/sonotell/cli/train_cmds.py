"""``sonotell train voice_label`` and ``sonotell gradcam``: one training run and its explanations."""

from __future__ import annotations

from pathlib import Path

import typer

from sonotell.cli.ui import (
    OVERRIDE_HELP,
    SEED_HELP,
    console,
    guarded_output,
    path_option,
    print_table,
    progress_bar,
    seed_everything,
)

train_app = typer.Typer(help="Train one recipe on a benchmark (checkpoint + config beside it).", no_args_is_help=True)


@train_app.command("voice_label")
def train_voice_label_cmd(
    benchmark: Path = typer.Option(..., "--benchmark", "-b", help="Benchmark folder (from `sonotell bench build`) or its name under bench_out/."),
    out: Path = typer.Option(Path("runs/voice_label_train"), "--out", help="Output folder: model.pt, model.yaml, logs."),
    variant: str = typer.Option("image_voice", "--variant", help="image_voice, voice, image, pretrained_voice, random_pairs, reduced_input."),
    config: str = typer.Option("small", "--config", help="Method config (paper or small) or a YAML path."),
    override: list[str] = typer.Option([], "--set", help=OVERRIDE_HELP),
    devices: int = typer.Option(1, "--devices", help="Devices for training (Lightning)."),
    accelerator: str = typer.Option("cpu", "--accelerator", help="cpu or gpu."),
    strategy: str = typer.Option("auto", "--strategy", help="auto, or ddp for several devices (gloo on CPU)."),
    num_nodes: int = typer.Option(1, "--num-nodes", min=1, help="Machines in a DDP run (each runs this command)."),
    seed: int = typer.Option(0, "--seed", help=SEED_HELP),
) -> None:
    """Train the voice-assisted labelling network (Bonmati et al. 2021) on every sample of a benchmark."""
    from sonotell.methods.voice_label import train_voice_label

    seed_everything(seed)
    override = [*override, f"train.devices={devices}", f"train.accelerator={accelerator}", f"train.strategy={strategy}"]
    override.append(f"train.num_nodes={num_nodes}")
    with guarded_output(out, [benchmark, benchmark / "manifest.csv", path_option(config)]), progress_bar(f"train voice_label ({variant})") as progress:
        ckpt = train_voice_label(benchmark, out, config=config, overrides=override, seed=seed, variant=variant, progress=progress)
    from sonotell.methods.voice_label import load_voice_label

    _, meta = load_voice_label(ckpt)
    st = meta["stats"]
    print_table("voice_label training", [{"variant": variant, "epochs": st["epochs_run"], "final loss": st["final_train_loss"], "train samples/s": st["train_samples_per_s"], "checkpoint": str(ckpt)}])


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")

    @app.command("gradcam")
    def gradcam_cmd(
        checkpoint: Path = typer.Option(..., "--checkpoint", "-c", help="model.pt from `sonotell train voice_label`."),
        benchmark: Path = typer.Option(..., "--benchmark", "-b", help="Benchmark folder whose samples to explain."),
        out: Path = typer.Option(Path("runs/gradcam"), "--out", help="Folder for the PNG overlays."),
        n: int = typer.Option(4, "--n", help="Number of samples; each gets a matched and a mismatched voice."),
        seed: int = typer.Option(0, "--seed", help=SEED_HELP),
    ) -> None:
        """Grad-CAM of the image branch for (image, voice) pairs, matched and mismatched (paper Fig. 7)."""
        from sonotell.methods.voice_label import gradcam_from_checkpoint

        seed_everything(seed)
        with guarded_output(out, [checkpoint, benchmark, benchmark / "manifest.csv"]), progress_bar("gradcam") as progress:
            paths = gradcam_from_checkpoint(checkpoint, benchmark, out, n=n, seed=seed, progress=progress)
        console.print(f"wrote {len(paths)} overlays to {out}")

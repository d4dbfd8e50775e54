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

train_app = typer.Typer(
    help=(
        "Train a frame classifier on your scans (`sonotell train --data ...`), "
        "or a recipe (`sonotell train voice_label`)."
    ),
    invoke_without_command=True,
)

DATA_HELP = "Your scans: an ingest manifest CSV, a dataset YAML (manifest + labels + lexicon) or a benchmark folder."


@train_app.callback()
def train_classifier_cmd(
    ctx: typer.Context,
    data: Path = typer.Option(None, "--data", "-d", help=DATA_HELP),
    benchmark: Path = typer.Option(
        None, "--benchmark", "-b", help="A benchmark folder (a dataset that also carries ground truth)."
    ),
    labels: Path = typer.Option(
        None,
        "--labels",
        "-l",
        help="Labels folder from `sonotell label` or `sonotell review export` (default: the dataset file's).",
    ),
    lexicon: str = typer.Option(
        None, "--lexicon", help="Lexicon of the label set (default: the one the labels were made with)."
    ),
    out: Path = typer.Option(
        Path("runs/train"), "--out", "-o", help="Output folder: model.pt, model.yaml, metrics.json, training logs."
    ),
    init: Path = typer.Option(None, "--init", help="Start from this `sonotell pretrain` encoder checkpoint."),
    encoder: str = typer.Option(
        None,
        "--encoder",
        help="Registered encoder (e.g. image_resnet, image_resnext, video_r2plus1d); default: the config's.",
    ),
    multilabel: bool = typer.Option(
        None,
        "--multilabel/--single-label",
        help="Every label per frame (sigmoid) or one label per frame (softmax); default: the config's.",
    ),
    config: str = typer.Option("small", "--config", help="Config name (small or paper) or a YAML path."),
    override: list[str] = typer.Option([], "--set", help=OVERRIDE_HELP),
    cache: Path = typer.Option(None, "--cache", help="Frame cache folder (default: OUT/cache)."),
    devices: int = typer.Option(1, "--devices", help="Devices for training (Lightning)."),
    accelerator: str = typer.Option("cpu", "--accelerator", help="cpu or gpu."),
    strategy: str = typer.Option("auto", "--strategy", help="auto, or ddp for several devices (gloo on CPU)."),
    seed: int = typer.Option(0, "--seed", help=SEED_HELP),
    cv: int = typer.Option(
        0, "--cv", min=0, help="Instead of one split: K-fold by subject, repeated per --seeds; writes OUT/cv.json."
    ),
    seeds: str = typer.Option("0,1", "--seeds", help="With --cv: comma-separated seeds, one K-fold split each."),
) -> None:
    """Train a frame (or clip) classifier on your scans' speech (or reviewed) labels; metrics on held-out subjects.

    Several findings per frame by default; a finding nobody mentioned is left out of the loss. Writes
    model.pt and metrics.json: per label and macro AUROC, average precision and F1 (at the per-label
    threshold chosen on the training split, also used by `sonotell predict`) at frame and clip level,
    beside the baselines "all present" and "prior".

    Example: sonotell train --data scans/manifest.csv --labels labels/ --out runs/clf
    """
    if ctx.invoked_subcommand is not None:
        return
    from sonotell.data.dataset import load_dataset
    from sonotell.errors import InputError
    from sonotell.methods.frame_classifier import cross_validate, load_classifier, train_classifier

    if (data is None) == (benchmark is None):
        raise InputError(out, "give exactly one of --data (your scans) or --benchmark")
    seed_everything(seed)
    ds = load_dataset(data if data is not None else benchmark, labels=labels, lexicon=lexicon)
    if encoder is not None:
        override = [*override, f"encoder={encoder}"]
    if multilabel is not None:
        override = [*override, f"multilabel={str(multilabel).lower()}"]
    guard = guarded_output(out, [data, benchmark, labels, path_option(config), init, cache], "sonotell train")
    if cv:
        with guard:
            _cross_validate(ds, out, cv, seeds, config, override, cache, cross_validate)
        return
    with guard, progress_bar("train classifier") as progress:
        ckpt = train_classifier(
            ds,
            out,
            config=config,
            overrides=override,
            init=init,
            seed=seed,
            cache_dir=cache,
            devices=devices,
            accelerator=accelerator,
            strategy=strategy,
            progress=progress,
        )
    _, meta = load_classifier(ckpt)
    m = meta["metrics"]
    print_table(
        f"held-out subjects ({', '.join(meta['test_subjects'])}), against {m.get('truth')} labels, clip level "
        f"(clip = {m.get('clip_aggregate', 'mean')} of its frames)",
        metric_rows(m, "clip"),
    )
    if m.get("not_trainable"):
        console.print(f"not trainable (no present frame in training): {', '.join(m['not_trainable'])}")
    console.print(
        f"wrote {ckpt} (trained on {meta['train_frames']} frames of {len(meta['train_subjects'])} subjects; "
        f"labels: {', '.join(meta['classes'])}); per-frame figures in {ckpt.parent / 'metrics.json'}"
    )


def metric_rows(m: dict, level: str) -> list[dict]:
    """One row per label (and macro) of a metrics.json: model, the two baselines, the threshold."""
    if not m.get("truth"):
        return []
    rows = []
    for label in [*m["labels"], "macro"]:
        row = {"label": label}
        for metric, short in (("auroc", "AUROC"), ("average_precision", "AP"), ("f1", "F1")):
            row[short] = _cell(m[metric][level].get(label))
            row[f"{short} all present"] = _cell(m["baselines"]["all_present"][metric][level].get(label))
            row[f"{short} prior"] = _cell(m["baselines"]["prior"][metric][level].get(label))
        row["threshold"] = _cell(m["threshold"][level].get(label)) if label != "macro" else ""
        if label in m.get("not_trainable", []):
            row["AUROC"] = "not trainable"
        rows.append(row)
    return rows


def _cell(v) -> str:
    return "–" if v is None else f"{v:.3f}"


def _cross_validate(ds, out: Path, k: int, seeds: str, config: str, override: list[str], cache, cross_validate):
    from sonotell.errors import InputError
    from sonotell.files import write_json

    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise InputError(out, f"--seeds must be comma-separated integers, not {seeds!r}") from None
    sources = ("labels", "truth") if ds.has_truth else ("labels",)
    with progress_bar(f"train --cv {k}") as progress:
        result = cross_validate(
            ds,
            out,
            folds=k,
            seeds=seed_list,
            sources=sources,
            config=config,
            overrides=override,
            cache_dir=cache,
            progress=progress,
        )
    path = write_json(out / "cv.json", result)
    rows = []
    for label in [*result["labels"], "macro"]:
        for src in result["summary"]["sources"]:
            row = {"label": label, "trained on": src}
            for metric in ("auroc", "average_precision", "f1"):
                cell = result["summary"]["figures"][f"{metric}/clip/{label}"][src]
                row[metric] = _cell(cell["mean"])
                row[f"{metric} − prior"] = _interval(cell["vs_prior"])
            rows.append(row)
    print_table(f"{k}-fold by subject × seeds {seed_list}, clip level, against {result['truth']}", rows)
    console.print(f"wrote {path}")


def _interval(r: dict | None) -> str:
    return "–" if r is None else f"{r['mean']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}]"


@train_app.command("voice_label")
def train_voice_label_cmd(
    benchmark: Path = typer.Option(
        ..., "--benchmark", "-b", help="Benchmark folder (from `sonotell bench build`) or its name under bench_out/."
    ),
    out: Path = typer.Option(
        Path("runs/voice_label_train"), "--out", help="Output folder: model.pt, model.yaml, logs."
    ),
    variant: str = typer.Option(
        "image_voice", "--variant", help="image_voice, voice, image, pretrained_voice, random_pairs, reduced_input."
    ),
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
    with (
        guarded_output(out, [benchmark, benchmark / "manifest.csv", path_option(config)], "sonotell train voice_label"),
        progress_bar(f"train voice_label ({variant})") as progress,
    ):
        ckpt = train_voice_label(
            benchmark, out, config=config, overrides=override, seed=seed, variant=variant, progress=progress
        )
    from sonotell.methods.voice_label import load_voice_label

    _, meta = load_voice_label(ckpt)
    st = meta["stats"]
    print_table(
        "voice_label training",
        [
            {
                "variant": variant,
                "epochs": st["epochs_run"],
                "final loss": st["final_train_loss"],
                "train samples/s": st["train_samples_per_s"],
                "checkpoint": str(ckpt),
            }
        ],
    )


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
        with (
            guarded_output(out, [checkpoint, benchmark, benchmark / "manifest.csv"], "sonotell gradcam"),
            progress_bar("gradcam") as progress,
        ):
            paths = gradcam_from_checkpoint(checkpoint, benchmark, out, n=n, seed=seed, progress=progress)
        console.print(f"wrote {len(paths)} overlays to {out}")

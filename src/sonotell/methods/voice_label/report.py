"""The experiment's figures: the accuracy plot and Grad-CAM of matched and mismatched voices."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from sonotell.files import write_json
from sonotell.methods.voice_label.samples import Samples

log = logging.getLogger(__name__)


def accuracy_plot(out_dir: Path, rows: list[dict], bench_name: str, reference: dict | None) -> None:
    from sonotell.eval.plots import bar_png

    done_rows = [r for r in rows if "accuracy" in r]
    if done_rows:
        bar_png(
            out_dir / "accuracy.png",
            [r["variant"] for r in done_rows],
            [r["accuracy"] for r in done_rows],
            [r["boot_std"] for r in done_rows],
            ylabel="accuracy (pooled; bars: bootstrap std)",
            title=f"voice_label on {bench_name}",
            reference=reference,
        )


def gradcam_examples(
    model, samples: Samples, test_idx: np.ndarray, out_dir: Path, n: int = 3, seed: int = 0
) -> list[Path]:
    """Grad-CAM of the image branch for matched and mismatched (other-class voice) pairs (paper Fig. 7).

    Writes one PNG overlay per pair and ``gradcam.json``: per image, the class predicted with
    each voice and the Pearson correlation of the two maps (1: the voice does not move the map).
    """
    from sonotell.eval.gradcam import GradCAM, save_overlay

    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    cam = GradCAM(model, model.image_branch.last_conv)
    paths, records = [], []
    for j in test_idx[:n]:
        others = np.flatnonzero(samples.label != samples.label[j])
        pairs = [("matched", int(j))] + ([("mismatched", int(rng.choice(others)))] if len(others) else [])
        frames = samples.frames[j]
        if model.in_frames < len(frames):  # a reduced-input model: evenly spaced frames of the 25
            frames = frames[np.linspace(0, len(frames) - 1, model.in_frames).round().astype(int)]
        frames_t = torch.from_numpy(frames.astype(np.float32) / 255.0)[None]
        record = {
            "scan_id": str(samples.scan_id[j]),
            "time_s": float(samples.time_s[j]),
            "image_class": samples.classes[samples.label[j]],
        }
        maps = []
        for kind, v in pairs:
            spec = torch.from_numpy(samples.spec[v].astype(np.float32))[None]
            with torch.no_grad():
                model.eval()
                pred = int(model(frames_t, spec).argmax(1))
            heat = cam(frames_t, spec, target=pred)[0]
            maps.append(heat.flatten().numpy())
            record[kind] = {
                "voice_class": samples.classes[samples.label[v]],
                "predicted": samples.classes[pred],
                "map": heat.numpy(),
            }
            title = (
                f"img {samples.classes[samples.label[j]]} | voice {samples.classes[samples.label[v]]} "
                f"-> {samples.classes[pred]}"
            )
            paths.append(
                save_overlay(
                    out_dir / f"{samples.scan_id[j]}_{samples.time_s[j]:.2f}s_{kind}.png",
                    samples.frames[j][len(samples.frames[j]) // 2],
                    heat,
                    title=title,
                )
            )
        if len(maps) == 2 and maps[0].std() > 0 and maps[1].std() > 0:
            record["map_correlation"] = float(np.corrcoef(maps[0], maps[1])[0, 1])
        records.append(record)
    if records:
        write_json(out_dir / "gradcam.json", records)
    return paths

"""Saliency prediction as a downstream task: a saliency head on a pretrained vs random encoder.

The papers fine-tune their encoders to predict sonographer gaze. No gaze data exist here, so
the ground truth of a frame is the region of what was *said* about it: the masks of the
organs named (not negated) within ``window_s`` of the frame, as a binary fixation map and a
Gaussian-blurred density (``sonotell.eval.saliency``). A ``SaliencyModel`` (encoder
``feature_map`` + ``SaliencyHead``) is trained with KL divergence under leave-one-subject-out
(or grouped k-fold) CV and scored with KL, NSS, AUC-Judd, CC, SIM and comp.

Example:
    >>> data = saliency_data_from_benchmark(load_benchmark("bench_out/abdominal"))  # doctest: +SKIP
    >>> res = saliency_cv(lambda: load_encoder("encoder.pt")[0], data, folds, cfg, "runs/sal")  # doctest: +SKIP
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from sonotell.config import Section, defaults_from
from sonotell.errors import ConfigError
from sonotell.files import write_json
from sonotell.models.saliency_head import SaliencyModel, saliency_kl_loss
from sonotell.progress import Progress, silent
from sonotell.train import Task, fit

METRICS = ("kl", "nss", "auc_judd", "cc", "sim", "comp")


@dataclass
class SaliencyData:
    images: np.ndarray  # (N, H, W) uint8
    densities: np.ndarray  # (N, H, W) float32, each sums to 1
    fixations: np.ndarray  # (N, H, W) bool
    subject_ids: np.ndarray
    scan_ids: np.ndarray
    frame_indices: np.ndarray


def saliency_data_from_benchmark(
    benchmark, size: tuple[int, int] = (64, 64), window_s: float = 1.0, sigma_frac: float = 0.04
) -> SaliencyData:
    """One sample per distinct mask image of each scan (the middle frame showing it), whose
    target is the union of the organs named within ``window_s`` of that frame."""
    from PIL import Image

    from sonotell.eval.saliency import mask_to_density
    from sonotell.io.video import read_frames

    imgs, dens, fixs, subs, scans, idxs = [], [], [], [], [], []
    for scan in benchmark.scans:
        truth = benchmark.truth(scan.scan_id)
        by_file: dict[str, list[int]] = {}
        for k, rel in truth.get("masks", {}).items():
            by_file.setdefault(rel, []).append(int(k))
        if not by_file:
            continue
        frames = None
        for _rel, ks in sorted(by_file.items()):
            j = sorted(ks)[len(ks) // 2]
            t = j / float(scan.fps)
            named = {
                e["label"]
                for e in truth["events"]
                if not e.get("negated") and e["start_s"] - window_s <= t <= e["end_s"] + window_s
            }
            ids = [benchmark.mask_classes.index(n) for n in named if n in benchmark.mask_classes]
            mask = benchmark.mask(scan.scan_id, j)
            if mask is None or not ids:
                continue
            small = np.asarray(Image.fromarray(mask).resize((size[1], size[0]), Image.NEAREST))
            fix = np.isin(small, ids)
            if not fix.any():
                continue
            if frames is None:
                frames = read_frames(scan.video_path, size=size)
            imgs.append(frames[min(j, len(frames) - 1)])
            fixs.append(fix)
            dens.append(mask_to_density(small, ids, sigma_px=sigma_frac * max(size)).astype(np.float32))
            subs.append(scan.subject_id)
            scans.append(scan.scan_id)
            idxs.append(j)
    if not imgs:
        raise ConfigError(f"{benchmark.root}: no masked frame with a named organ: no saliency ground truth")
    return SaliencyData(
        np.stack(imgs), np.stack(dens), np.stack(fixs), np.asarray(subs), np.asarray(scans), np.asarray(idxs)
    )


class FrameFeatures(nn.Module):
    """``feature_map`` of single frames (B, H, W) from an image encoder, a video encoder
    (as one-frame clips) or a recipe model's ``video`` / ``image`` encoder."""

    def __init__(self, model: nn.Module):
        super().__init__()
        for attr in ("image", "video"):
            sub = getattr(model, attr, None)
            if isinstance(sub, nn.Module) and hasattr(sub, "feature_map"):
                model = sub
                break
        if not hasattr(model, "feature_map"):
            raise ConfigError(
                f"{type(model).__name__} has no feature map (feature_map, .video or .image): "
                "cannot attach a saliency head"
            )
        self.encoder = model
        self.is_video = hasattr(model, "_as_5d")

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder.feature_map(x[:, None] if self.is_video else x)


class SaliencyTask(Task):
    """KL(target density || predicted distribution)."""

    def step(self, batch) -> dict:
        return {"loss": saliency_kl_loss(self.model(batch["image"]), batch["density"])}


class _Frames(torch.utils.data.Dataset):
    def __init__(self, data: SaliencyData, idx):
        self.data, self.idx = data, np.asarray(idx, int)

    def __len__(self):
        return len(self.idx)

    def __getitem__(self, i):
        j = self.idx[i]
        return {
            "image": torch.from_numpy(self.data.images[j].astype(np.float32) / 255.0),
            "density": torch.from_numpy(self.data.densities[j]),
        }


_default = defaults_from("methods/saliency_downstream", "paper")


@dataclass(frozen=True)
class SaliencyConfig(Section):
    """The saliency head and its training; defaults from ``configs/methods/saliency_downstream/paper.yaml``."""

    SECTION = "saliency"
    hidden: int = _default("hidden", ge=1)
    depth: int = _default("depth", ge=0)
    freeze_encoder: bool = _default("freeze_encoder")
    optimizer: dict = _default("optimizer")
    batch_size: int = _default("batch_size", ge=1)
    epochs: int = _default("epochs", ge=0)


def saliency_fold(
    make_encoder: Callable[[], nn.Module], data: SaliencyData, train_idx, test_idx, cfg: dict, out_dir: Path, seed: int
) -> dict:
    """Train a head (and fine-tune the encoder unless ``freeze_encoder``) on ``train_idx``; mean metrics on
    ``test_idx``."""
    from sonotell.eval.saliency import saliency_metrics
    from sonotell.seeding import seed_everything

    seed_everything(seed)
    torch.manual_seed(seed)
    features = FrameFeatures(make_encoder())
    with torch.no_grad():
        features.eval()
        channels = features.feature_map(torch.rand(1, *data.images.shape[1:])).shape[1]
    features.train()
    head = SaliencyConfig.from_dict(cfg)
    model = SaliencyModel(features, channels, hidden=head.hidden, depth=head.depth)
    if head.freeze_encoder:
        for p in model.encoder.parameters():
            p.requires_grad_(False)
    task = SaliencyTask(model, optimizer=dict(head.optimizer), recipe="saliency_downstream", config=cfg)
    g = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(
        _Frames(data, train_idx), batch_size=head.batch_size, shuffle=True, generator=g
    )
    fit(task, loader, None, out_dir=out_dir, max_epochs=head.epochs, seed=seed)
    model.eval()
    x = torch.from_numpy(data.images[test_idx].astype(np.float32) / 255.0)
    pred = model.predict(x).numpy()
    rows = [saliency_metrics(p, data.densities[j], data.fixations[j]) for p, j in zip(pred, test_idx)]
    return {m: float(np.nanmean([r[m] for r in rows])) for m in METRICS} | {"n": len(rows)}


def saliency_cv(
    make_encoder: Callable[[], nn.Module],
    data: SaliencyData,
    folds,
    cfg: dict,
    out_dir: str | Path,
    seed: int = 0,
    progress: Progress = silent,
) -> dict:
    """Per-fold metrics, their mean and std; cached in ``out_dir/saliency_cv.json`` (resumable)."""
    cache = Path(out_dir) / "saliency_cv.json"
    if cache.exists():
        return json.loads(cache.read_text())
    per_fold = []
    for f, (tr, te) in enumerate(folds):
        per_fold.append(saliency_fold(make_encoder, data, tr, te, cfg, Path(out_dir) / f"fold{f}", seed + f))
        progress(f + 1, len(folds), f"saliency fold {f + 1}")
    res = {
        "per_fold": per_fold,
        **{f"{m}_mean": float(np.mean([p[m] for p in per_fold])) for m in METRICS},
        **{f"{m}_std": float(np.std([p[m] for p in per_fold])) for m in METRICS},
    }
    write_json(cache, res)
    return res


def subject_folds(data: SaliencyData, k: int | None = None, seed: int = 0):
    """Leave-one-subject-out (``k`` None) or grouped k-fold over subjects; disjointness asserted."""
    from sonotell.eval.cv import make_folds

    return make_folds(data.subject_ids, "lopo" if k is None else "kfold", k or 0, seed)

"""``sonotell train``: a frame (or clip) classifier from a dataset's speech or reviewed labels.

The everyday task: scans a user narrated (or reviewed) -> a classifier of their frames. Frames
are sector-cropped and resized as in the frame cache; subjects are split into training and
held-out ones; the model is any registered image/video encoder (or a ``sonotell pretrain``
encoder) with a linear head, trained by the one ``ClassificationTask``.

Writes ``model.pt`` (``torch.load(weights_only=True)`` loads it: tensors and JSON-able metadata
only), ``model.yaml`` (the same metadata, readable) and ``metrics.json``. The metadata holds the
config, the label map, the lexicon and its fingerprint, the split and the held-out metrics, and
says which labels they were measured against (``reviewed``, ``speech`` or ``truth``).

Example:
    >>> from sonotell.data.dataset import load_dataset
    >>> ckpt = train_classifier(load_dataset("scans/manifest.csv", labels="labels/"), "runs/clf")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sonotell.config import load_config
from sonotell.data.dataset import ABSENT, PRESENT, UNKNOWN, Dataset
from sonotell.errors import ConfigError, InputError
from sonotell.files import atomic_path, write_json, write_text
from sonotell.progress import Progress, silent

log = logging.getLogger(__name__)

TASK = "frame_classifier"
FORMAT = "sonotell/1"


class FrameClassifier(nn.Module):
    """A registered encoder + a linear head: frames (B, H, W) or clips (B, T, H, W) -> logits (B, K).

    An image encoder sees the middle frame of a clip; a video encoder (or a pretraining
    recipe's model, through ``encode_video``) sees the whole clip.
    """

    def __init__(
        self,
        num_classes: int,
        encoder: str | nn.Module = "image_resnet",
        encoder_config: str | None = "small",
        input_kind: str | None = None,
        feature_dim: int | None = None,
    ):
        super().__init__()
        if isinstance(encoder, str):
            from sonotell.models import create_model

            input_kind = input_kind or ("image" if encoder.startswith("image") else "video")
            encoder = create_model(encoder, config=encoder_config)
        self.encoder = encoder
        self.input_kind = input_kind or "video"
        dim = feature_dim or getattr(encoder, "out_dim", None)
        if dim is None:
            raise ConfigError("the encoder has no out_dim: give feature_dim")
        self.head = nn.Linear(int(dim), num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_kind == "image":
            if x.ndim == 4:
                x = x[:, x.shape[1] // 2]
            fn = getattr(self.encoder, "encode_image", None) or self.encoder
        else:
            if x.ndim == 3:
                x = x[:, None]
            fn = getattr(self.encoder, "encode_video", None) or self.encoder
        return fn(x).reshape(x.shape[0], -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def cam_layer(self) -> nn.Module | None:
        """The layer Grad-CAM reads: the image encoder's second-to-last stage, when there is one."""
        net = getattr(self.encoder, "net", None)
        return getattr(net, "layer3", None) or getattr(net, "layer2", None)


def build_model(meta: dict) -> FrameClassifier:
    """The untrained network a checkpoint's metadata describes."""
    cfg, k = meta["config"], len(meta["classes"])
    init = meta.get("init")
    if init:
        from sonotell.methods.downstream import model_for_recipe

        encoder = model_for_recipe(init["recipe"], init.get("config") or {})
        return FrameClassifier(k, encoder, input_kind="video", feature_dim=int(init["feature_dim"]))
    return FrameClassifier(k, cfg["encoder"], cfg.get("encoder_config"))


# --------------------------------------------------------------------------- data


@dataclass
class FrameSamples:
    """Frames held in memory with their targets: ``x`` uint8 (N, T, H, W), ``y`` (N,) or (N, K)."""

    x: np.ndarray
    y: np.ndarray
    scan_ids: np.ndarray
    subject_ids: np.ndarray
    frame_index: np.ndarray
    source: np.ndarray


def frame_targets(
    states: np.ndarray, multilabel: bool, unknown: str = "absent_if_labelled"
) -> tuple[np.ndarray, np.ndarray]:
    """Targets of frames from their (N, K) states, and which frames are usable.

    Single-label: a frame stating exactly one present label gets its index; others are unused.
    Multi-label: (N, K) of 1 / 0 / -1; ``unknown="absent_if_labelled"`` turns the unknown
    labels of a frame with any known label into absent; frames with no known label are unused.

    Example:
        >>> s = np.array([[1, -1], [-1, -1], [1, 1], [-1, 0]], np.int8)
        >>> frame_targets(s, False)
        (array([0]), array([ True, False, False, False]))
        >>> frame_targets(s, True)[0].tolist()
        [[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]
    """
    if not multilabel:
        present = states == PRESENT
        use = present.sum(1) == 1
        return present[use].argmax(1), use
    if unknown not in ("absent_if_labelled", "ignore"):
        raise ConfigError(f"unknown must be 'absent_if_labelled' or 'ignore', not {unknown!r}")
    use = (states != UNKNOWN).any(1)
    y = states[use].astype(np.float32)
    if unknown == "absent_if_labelled":
        y[y == UNKNOWN] = ABSENT
    return y, use


def gather(
    ds: Dataset, scan_ids: list[str], cfg: dict, cache_dir: Path, labels_from: str, progress: Progress = silent
) -> FrameSamples:
    """Sector-cropped frames (every ``frame_step``-th) of ``scan_ids`` with targets from labels or truth."""
    size, t, step = tuple(cfg["size"]), int(cfg["n_frames"]), int(cfg["frame_step"])
    xs, ys, sids, subs, fis, srcs = [], [], [], [], [], []
    for n, scan_id in enumerate(scan_ids):
        progress(n, len(scan_ids), f"frames of {scan_id}")
        scan = ds.scan(scan_id)
        if labels_from == "truth":
            cache = _cache(scan, cache_dir, size)
            index = np.arange(0, cache.n_frames, step)
            states, source = ds.truth_states(scan_id, index, cache.fps), np.full(len(index), "truth")
        else:
            fs = ds.frame_states(scan_id)
            if not len(fs.frame_index):
                continue
            keep = fs.frame_index % step == 0
            if not (fs.state[keep] != UNKNOWN).any():
                continue  # nothing said about this scan: no need to decode it
            cache = _cache(scan, cache_dir, size)
            keep &= fs.frame_index < cache.n_frames
            index, states, source = fs.frame_index[keep], fs.state[keep], fs.source[keep]
        y, use = frame_targets(states, bool(cfg["multilabel"]), str(cfg["unknown"]))
        if not use.any():
            continue
        index = index[use]
        windows = np.clip(index[:, None] + np.arange(t)[None, :] - t // 2, 0, cache.n_frames - 1)
        xs.append(cache.take(windows.ravel()).reshape(len(index), t, *cache.size))
        ys.append(y)
        sids += [scan_id] * len(index)
        subs += [scan.subject_id] * len(index)
        fis.append(index)
        srcs.append(source[use])
    progress(len(scan_ids), len(scan_ids), "frames gathered")
    k = len(ds.label_names)
    if not xs:
        empty_y = np.zeros((0, k), np.float32) if cfg["multilabel"] else np.zeros(0, int)
        return FrameSamples(
            np.zeros((0, t, *size), np.uint8), empty_y, np.array([]), np.array([]), np.zeros(0, int), np.array([])
        )
    return FrameSamples(
        np.concatenate(xs),
        np.concatenate(ys),
        np.array(sids),
        np.array(subs),
        np.concatenate(fis),
        np.concatenate(srcs),
    )


def _cache(scan, cache_dir: Path, size: tuple[int, int]):
    """The scan's frame cache; with audio when the scan has some, so it is the cache `ingest --cache` made."""
    from sonotell.io.cache import FrameCache

    has_audio = scan.audio_path is not None or bool(scan.audio_sample_rate_hz)
    return FrameCache.build(scan, cache_dir, size=size, audio_rate_hz=16000 if has_audio else None)


class _Frames(torch.utils.data.Dataset):
    def __init__(self, s: FrameSamples):
        self.s = s

    def __len__(self) -> int:
        return len(self.s.y)

    def __getitem__(self, i: int):
        return torch.from_numpy(self.s.x[i].astype(np.float32) / 255.0), torch.as_tensor(self.s.y[i])


# --------------------------------------------------------------------------- train


def method_config(config: str | dict = "small", overrides: list[str] | None = None) -> dict:
    if isinstance(config, dict):
        from sonotell.config import apply_overrides

        return apply_overrides(config, overrides or [])
    return load_config("methods/train", config, overrides)


def train_classifier(
    ds: Dataset,
    out_dir: str | Path,
    *,
    config: str | dict = "small",
    overrides: list[str] | None = None,
    init: str | Path | None = None,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    devices: int = 1,
    accelerator: str = "cpu",
    strategy: str = "auto",
    progress: Progress = silent,
) -> Path:
    """Train on the training subjects of ``ds``; evaluate on the held-out ones; return ``model.pt``."""
    from sonotell.seeding import seed_everything
    from sonotell.train import ClassificationTask, fit
    from sonotell.train.classify import masked_bce

    cfg = method_config(config, overrides)
    if init is not None:
        cfg["init"] = str(init)
    out_dir = Path(out_dir)
    _refuse_inputs_as_output(ds, out_dir)
    labels_from = str(cfg["labels_from"])
    if labels_from not in ("labels", "truth"):
        raise ConfigError(f"labels_from must be 'labels' or 'truth', not {labels_from!r}")
    if labels_from == "labels" and ds.labels_dir is None:
        raise InputError(ds.path, "no labels folder: give --labels (from `sonotell label` or `sonotell review export`)")
    if not ds.label_names:
        raise InputError(ds.path, "no label set: give --lexicon")
    train_ids, test_ids = ds.split(float(cfg["test_fraction"]), seed)
    cache_dir = Path(cache_dir) if cache_dir is not None else out_dir / "cache"
    seed_everything(seed)
    train = gather(ds, train_ids, cfg, cache_dir, labels_from, progress)
    if len(train.y) == 0:
        raise InputError(
            ds.labels_dir or ds.path,
            f"no labelled frames in the {len(train_ids)} training scans "
            "(speech named no lexicon label there; check `summary.csv` of the labels folder)",
        )
    k, multilabel = len(ds.label_names), bool(cfg["multilabel"])
    seed_everything(seed)
    model, init_meta = _new_model(cfg, k)
    tcfg = cfg["train"]
    weights = None
    if not multilabel and tcfg.get("class_weighted", True):
        counts = np.bincount(train.y, minlength=k).astype(np.float64)
        weights = torch.tensor(
            np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / max((counts > 0).sum(), 1), 0.0),
            dtype=torch.float32,
        )
    task = ClassificationTask(
        model,
        masked_bce if multilabel else None,
        optimizer=dict(tcfg["optimizer"]),
        recipe=TASK,
        config=cfg,
        class_weights=weights,
        multilabel=multilabel,
    )
    bs = int(tcfg["batch_size"])
    loader = torch.utils.data.DataLoader(
        _Frames(train),
        batch_size=bs,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
        drop_last=len(train.y) > bs,
    )
    fit(
        task,
        loader,
        out_dir=out_dir / "training",
        max_epochs=int(tcfg["epochs"]),
        seed=seed,
        resume=False,
        devices=devices,
        accelerator=accelerator,
        strategy=strategy,
        progress=progress,
    )
    model.eval()
    metrics = evaluate(model, ds, test_ids, cfg, cache_dir)
    meta = {
        "task": TASK,
        "classes": list(ds.label_names),
        "multilabel": multilabel,
        "config": cfg,
        "init": init_meta,
        "lexicon": ds.lexicon,
        "lexicon_fingerprint": ds.lexicon_fingerprint,
        "dataset": str(ds.path),
        "labels_from": labels_from,
        "train_scans": train_ids,
        "test_scans": test_ids,
        "train_subjects": sorted({ds.scan(s).subject_id for s in train_ids}),
        "test_subjects": sorted({ds.scan(s).subject_id for s in test_ids}),
        "train_frames": int(len(train.y)),
        "metrics": metrics,
        "seed": seed,
    }
    return save_classifier(out_dir / "model.pt", model, meta)


def _new_model(cfg: dict, k: int) -> tuple[FrameClassifier, dict | None]:
    if not cfg.get("init"):
        return FrameClassifier(k, cfg["encoder"], cfg.get("encoder_config")), None
    from sonotell.methods.downstream import load_encoder

    encoder, recipe = load_encoder(cfg["init"])
    from sonotell.train import load_model_checkpoint

    ckpt_cfg = load_model_checkpoint(cfg["init"])["config"]
    example = torch.zeros(1, int(cfg["n_frames"]), *cfg["size"])
    encoder.eval()
    with torch.no_grad():
        dim = int((getattr(encoder, "encode_video", None) or encoder)(example).reshape(1, -1).shape[1])
    encoder.train()
    meta = {"recipe": recipe, "config": ckpt_cfg, "feature_dim": dim, "checkpoint": str(cfg["init"])}
    return FrameClassifier(k, encoder, input_kind="video", feature_dim=dim), meta


@torch.no_grad()
def predict_samples(model: nn.Module, s: FrameSamples, multilabel: bool, batch_size: int = 64) -> np.ndarray:
    """Probabilities (N, K): softmax, or per-label sigmoid when ``multilabel``."""
    out = []
    for i in range(0, len(s.x), batch_size):
        logits = model(torch.from_numpy(s.x[i : i + batch_size].astype(np.float32) / 255.0))
        out.append((torch.sigmoid(logits) if multilabel else torch.softmax(logits, 1)).numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def evaluate(model: nn.Module, ds: Dataset, test_ids: list[str], cfg: dict, cache_dir: Path) -> dict:
    """Metrics on held-out subjects: against reviewed labels when there are any, else speech; plus truth."""
    refs = {}
    if cfg["labels_from"] == "labels":
        s = gather(ds, test_ids, cfg, cache_dir, "labels")
        reviewed = s.source == "reviewed"
        if reviewed.any():
            refs["reviewed"] = _subset(s, reviewed)
        elif len(s.y):
            refs["speech"] = s
    if ds.has_truth:
        refs["truth"] = gather(ds, test_ids, {**cfg, "unknown": "absent_if_labelled"}, cache_dir, "truth")
    out = {"measured_against": next(iter(refs), None)}
    for name, s in refs.items():
        out[name] = score(
            predict_samples(model, s, bool(cfg["multilabel"])), s.y, ds.label_names, bool(cfg["multilabel"])
        )
    return out


def score(probs: np.ndarray, y: np.ndarray, classes: list[str], multilabel: bool) -> dict:
    """Accuracy and macro F1 (single-label), or per-entry accuracy, macro F1 and AUC (multi-label)."""
    if not len(y):
        return {"frames": 0}
    if not multilabel:
        from sonotell.eval.metrics import classification_summary

        summ = classification_summary(y, probs.argmax(1), classes)
        return {"frames": int(len(y)), "accuracy": summ["accuracy"], "macro_f1": summ["f1"]}
    known = y >= 0
    pred = probs >= 0.5
    acc = float(((pred == (y > 0.5)) & known).sum() / max(known.sum(), 1))
    f1s, aucs = [], []
    for k in range(y.shape[1]):
        m = known[:, k]
        t, p, sc = y[m, k] > 0.5, pred[m, k], probs[m, k]
        if t.any():
            tp = float((t & p).sum())
            f1s.append(2 * tp / max(float(t.sum() + p.sum()), 1e-9))
            if (~t).any():
                aucs.append(_auc(t, sc))
    return {
        "frames": int(len(y)),
        "accuracy": acc,
        "macro_f1": float(np.mean(f1s)) if f1s else float("nan"),
        "macro_auc": float(np.mean(aucs)) if aucs else float("nan"),
    }


def _auc(t: np.ndarray, s: np.ndarray) -> float:
    from scipy.stats import rankdata

    r = rankdata(s)
    n1, n0 = t.sum(), (~t).sum()
    return float((r[t].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _subset(s: FrameSamples, m: np.ndarray) -> FrameSamples:
    return FrameSamples(s.x[m], s.y[m], s.scan_ids[m], s.subject_ids[m], s.frame_index[m], s.source[m])


def _refuse_inputs_as_output(ds: Dataset, out_dir: Path) -> None:
    out = out_dir.resolve()
    for p in [ds.path, ds.labels_dir, *(s.video_path for s in ds.scans)]:
        if p is not None and Path(p).resolve() == out:
            raise InputError(out_dir, "the output folder is one of the inputs: choose another --out")


# --------------------------------------------------------------------------- checkpoint


def save_classifier(path: Path, model: nn.Module, meta: dict) -> Path:
    """Write ``model.pt`` (weights + JSON-able metadata, for ``weights_only=True``), model.yaml, metrics.json."""
    import json

    import yaml

    meta = json.loads(json.dumps(meta, default=str))  # JSON-able only: nothing a loader could execute
    payload = {"format": FORMAT, "recipe": TASK, "config": meta, "state_dict": model.state_dict()}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    write_text(path.with_suffix(".yaml"), yaml.safe_dump(meta, sort_keys=False))
    write_json(path.parent / "metrics.json", meta["metrics"])
    return path


def load_classifier(path: str | Path) -> tuple[FrameClassifier, dict]:
    """The trained classifier and its metadata; a checkpoint of another task is refused, naming both."""
    from sonotell.safeload import load_weights_only
    from sonotell.train.checkpoint import CheckpointError, load_state_checked

    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        raw = load_weights_only(path)  # a pickled checkpoint: the same refusal (and how to convert) as elsewhere
    except InputError as e:
        raise CheckpointError(str(e)) from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a sonotell checkpoint (expected format {FORMAT!r})")
    if raw.get("recipe") != TASK:
        raise CheckpointError(
            f"{path}: checkpoint of task {raw.get('recipe')!r}, expected {TASK!r} (from `sonotell train`)"
        )
    meta = raw["config"]
    model = build_model(meta)
    load_state_checked(model, raw["state_dict"], path, TASK)
    return model.eval(), meta

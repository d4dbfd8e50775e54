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

import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sonotell.config import load_config
from sonotell.data.dataset import ABSENT, PRESENT, UNKNOWN, Dataset
from sonotell.errors import ConfigError, InputError
from sonotell.files import write_bytes, write_json, write_text
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
    """Frames held in memory with their targets.

    ``x`` uint8 (N, T, H, W); ``y`` the loss targets, (N,) class indices or (N, K) of 1 / 0 / -1;
    ``states`` (N, K) int8, the reference states the frames were gathered with (PRESENT / ABSENT /
    UNKNOWN), used to score against them.
    """

    x: np.ndarray
    y: np.ndarray
    scan_ids: np.ndarray
    subject_ids: np.ndarray
    frame_index: np.ndarray
    source: np.ndarray
    states: np.ndarray | None = None

    def subset(self, m: np.ndarray) -> FrameSamples:
        states = self.states[m] if self.states is not None else None
        return FrameSamples(
            self.x[m], self.y[m], self.scan_ids[m], self.subject_ids[m], self.frame_index[m], self.source[m], states
        )


UNKNOWN_POLICIES = ("mask", "weak_negative", "absent_if_labelled")


def frame_targets(states: np.ndarray, multilabel: bool, unknown: str = "mask") -> tuple[np.ndarray, np.ndarray]:
    """Targets of frames from their (N, K) states, and which frames are usable.

    Single-label: a frame stating exactly one present label gets its index; others are unused.
    Multi-label: (N, K) of 1 present / 0 absent (a negated mention) / -1 unknown, for frames with
    any known label. ``unknown="mask"`` and ``"weak_negative"`` keep -1 (the loss masks it or
    takes it as a down-weighted negative); ``"absent_if_labelled"`` (the old rule) makes it 0.

    Example:
        >>> s = np.array([[1, -1], [-1, -1], [1, 1], [-1, 0]], np.int8)
        >>> frame_targets(s, False)
        (array([0]), array([ True, False, False, False]))
        >>> frame_targets(s, True)[0].tolist()
        [[1.0, -1.0], [1.0, 1.0], [-1.0, 0.0]]
    """
    if not multilabel:
        present = states == PRESENT
        use = present.sum(1) == 1
        return present[use].argmax(1), use
    if unknown == "ignore":  # the old name of "mask"
        unknown = "mask"
    if unknown not in UNKNOWN_POLICIES:
        raise ConfigError(f"unknown must be one of {', '.join(UNKNOWN_POLICIES)}, not {unknown!r}")
    use = (states != UNKNOWN).any(1)
    y = states[use].astype(np.float32)
    if unknown == "absent_if_labelled":
        y[y == UNKNOWN] = ABSENT
    return y, use


def _spread(n: int, most: int) -> np.ndarray:
    """Indices of at most ``most`` of ``n`` items, evenly spread (all when ``most`` <= 0)."""
    if most <= 0 or n <= most:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, most).round().astype(int))


def gather(
    ds: Dataset, scan_ids: list[str], cfg: dict, cache_dir: Path, labels_from: str, progress: Progress = silent
) -> FrameSamples:
    """Sector-cropped frames (every ``frame_step``-th, at most ``max_frames_per_scan``) with targets."""
    size, t, step = tuple(cfg["size"]), int(cfg["n_frames"]), int(cfg["frame_step"])
    most = int(cfg.get("max_frames_per_scan", 0) or 0)
    xs, ys, sts, sids, subs, fis, srcs = [], [], [], [], [], [], []
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
        pick = _spread(int(use.sum()), most)
        index, states, y, source = index[use][pick], states[use][pick], y[pick], source[use][pick]
        windows = np.clip(index[:, None] + np.arange(t)[None, :] - t // 2, 0, cache.n_frames - 1)
        xs.append(cache.take(windows.ravel()).reshape(len(index), t, *cache.size))
        ys.append(y)
        sts.append(states.astype(np.int8))
        sids += [scan_id] * len(index)
        subs += [scan.subject_id] * len(index)
        fis.append(index)
        srcs.append(source)
    progress(len(scan_ids), len(scan_ids), "frames gathered")
    k = len(ds.label_names)
    if not xs:
        empty_y = np.zeros((0, k), np.float32) if cfg["multilabel"] else np.zeros(0, int)
        return FrameSamples(
            np.zeros((0, t, *size), np.uint8),
            empty_y,
            np.array([]),
            np.array([]),
            np.zeros(0, int),
            np.array([]),
            np.zeros((0, k), np.int8),
        )
    return FrameSamples(
        np.concatenate(xs),
        np.concatenate(ys),
        np.array(sids),
        np.array(subs),
        np.concatenate(fis),
        np.concatenate(srcs),
        np.concatenate(sts),
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
    cfg = method_config(config, overrides)
    if init is not None:
        cfg["init"] = str(init)
    out_dir = Path(out_dir)
    _refuse_inputs_as_output(ds, out_dir)
    labels_from = _check_config(ds, cfg)
    train_ids, test_ids = ds.split(float(cfg["test_fraction"]), seed)
    cache_dir = Path(cache_dir) if cache_dir is not None else out_dir / "cache"
    from sonotell.seeding import seed_everything

    seed_everything(seed)
    train = gather(ds, train_ids, cfg, cache_dir, labels_from, progress)
    if len(train.y) == 0:
        raise InputError(
            ds.labels_dir or ds.path,
            f"no labelled frames in the {len(train_ids)} training scans "
            "(speech named no lexicon label there; check `summary.csv` of the labels folder)",
        )
    fitted = fit_samples(
        train,
        ds.label_names,
        cfg,
        seed,
        out_dir / "training",
        devices=devices,
        accelerator=accelerator,
        strategy=strategy,
        progress=progress,
    )
    refs = reference_samples(ds, test_ids, cfg, cache_dir)
    metrics = evaluate_fitted(fitted, refs, ds.label_names, cfg)
    metrics["trained_on"] = "speech" if labels_from == "labels" else "truth"
    meta = {
        "task": TASK,
        "classes": list(ds.label_names),
        "multilabel": bool(cfg["multilabel"]),
        "config": cfg,
        "init": fitted.init_meta,
        "lexicon": ds.lexicon,
        "lexicon_fingerprint": ds.lexicon_fingerprint,
        "dataset": str(ds.path),
        "labels_from": labels_from,
        "train_scans": train_ids,
        "test_scans": test_ids,
        "train_subjects": sorted({ds.scan(s).subject_id for s in train_ids}),
        "test_subjects": sorted({ds.scan(s).subject_id for s in test_ids}),
        "train_frames": int(len(train.y)),
        "thresholds": fitted.thresholds_by_label(ds.label_names),
        "not_trainable": fitted.not_trainable(ds.label_names),
        "metrics": metrics,
        "seed": seed,
    }
    return save_classifier(out_dir / "model.pt", fitted.model, meta)


def _check_config(ds: Dataset, cfg: dict) -> str:
    labels_from = str(cfg["labels_from"])
    if labels_from not in ("labels", "truth"):
        raise ConfigError(f"labels_from must be 'labels' or 'truth', not {labels_from!r}")
    if str(cfg["unknown"]) not in (*UNKNOWN_POLICIES, "ignore"):
        raise ConfigError(f"unknown must be one of {', '.join(UNKNOWN_POLICIES)}, not {cfg['unknown']!r}")
    if str(cfg.get("threshold_on", "known")) not in ("known", "trained"):
        raise ConfigError(f"threshold_on must be 'known' or 'trained', not {cfg['threshold_on']!r}")
    if labels_from == "labels" and ds.labels_dir is None:
        raise InputError(ds.path, "no labels folder: give --labels (from `sonotell label` or `sonotell review export`)")
    if labels_from == "truth" and not ds.has_truth:
        raise InputError(ds.path, "labels_from=truth needs a benchmark (a dataset with ground truth)")
    if not ds.label_names:
        raise InputError(ds.path, "no label set: give --lexicon")
    return labels_from


@dataclass
class Fitted:
    """A trained classifier with what was learnt from its training split: thresholds and priors."""

    model: FrameClassifier
    init_meta: dict | None
    thresholds: dict  # {"frame": [K], "clip": [K]}: None where not trainable
    train_prior: dict  # {"frame": [K], "clip": [K]}: rate of present among known training entries
    trainable: list[bool]
    multilabel: bool

    def thresholds_by_label(self, classes: list[str]) -> dict:
        return {lv: dict(zip(classes, v)) for lv, v in self.thresholds.items()}

    def not_trainable(self, classes: list[str]) -> list[str]:
        return [c for c, ok in zip(classes, self.trainable) if not ok]


def training_states(s: FrameSamples, multilabel: bool, k: int, unknown: str) -> np.ndarray:
    """(N, K) 1 / 0 / -1 targets the thresholds and priors are chosen on: what the loss was told."""
    if not multilabel:
        out = np.zeros((len(s.y), k), np.int8)
        out[np.arange(len(s.y)), np.asarray(s.y, int)] = PRESENT
        return out
    y = np.asarray(s.y).astype(np.int8)
    if unknown == "weak_negative":
        y = np.where(y == UNKNOWN, ABSENT, y).astype(np.int8)
    return y


def fit_samples(
    train: FrameSamples,
    classes: list[str],
    cfg: dict,
    seed: int,
    out_dir: Path,
    *,
    devices: int = 1,
    accelerator: str = "cpu",
    strategy: str = "auto",
    progress: Progress = silent,
) -> Fitted:
    """Train a fresh classifier on in-memory samples; choose per-label thresholds on the same split."""
    from sonotell.eval.label_metrics import choose_thresholds, train_priors
    from sonotell.losses.masked_multilabel_bce import MaskedMultilabelBCE, positive_weights
    from sonotell.seeding import seed_everything
    from sonotell.train import ClassificationTask, fit

    k, multilabel = len(classes), bool(cfg["multilabel"])
    tcfg = cfg["train"]
    states = training_states(train, multilabel, k, str(cfg["unknown"]))
    positives = (states == PRESENT).sum(0)
    trainable = [bool(n > 0) for n in positives]
    _warn_untrainable(classes, trainable, multilabel)
    seed_everything(seed)
    model, init_meta = _new_model(cfg, k)
    weights, loss = None, None
    if multilabel:
        pw = positive_weights(np.asarray(train.y), float(cfg.get("pos_weight_max", 10.0)))
        weak = float(cfg.get("unknown_weight", 0.1)) if str(cfg["unknown"]) == "weak_negative" else 0.0
        loss = MaskedMultilabelBCE(pw if cfg.get("pos_weight", True) else None, unknown_weight=weak)
    elif tcfg.get("class_weighted", True):
        counts = np.bincount(train.y, minlength=k).astype(np.float64)
        weights = torch.tensor(
            np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / max((counts > 0).sum(), 1), 0.0),
            dtype=torch.float32,
        )
    task = ClassificationTask(
        model,
        loss,
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
        out_dir=out_dir,
        max_epochs=int(tcfg["epochs"]),
        seed=seed,
        resume=False,
        devices=devices,
        accelerator=accelerator,
        strategy=strategy,
        progress=progress,
    )
    model.eval()
    probs = predict_samples(model, train, multilabel)
    # thresholds: on what was said (known entries) or on the targets as trained (weak negatives included)
    said = str(cfg.get("threshold_on", "known")) == "known" and multilabel
    thresholds = choose_thresholds(probs, np.asarray(train.y).astype(np.int8) if said else states, train.scan_ids)
    for level in thresholds:
        thresholds[level] = [t if ok else None for t, ok in zip(thresholds[level], trainable)]
    return Fitted(model, init_meta, thresholds, train_priors(states, train.scan_ids), trainable, multilabel)


def _warn_untrainable(classes: list[str], trainable: list[bool], multilabel: bool) -> None:
    missing = [c for c, ok in zip(classes, trainable) if not ok]
    if not any(trainable):
        log.warning(
            "no label is present in any training frame: the model cannot learn to find anything "
            "(every label is reported as not trainable)"
        )
    elif sum(trainable) == 1 and not multilabel:
        log.warning(
            "every training frame has the same label (%s): a single-class training set; "
            "the model will predict it everywhere",
            next(c for c, ok in zip(classes, trainable) if ok),
        )
    elif missing:
        log.warning("not trainable (no present frame in the training split): %s", ", ".join(missing))


def reference_samples(ds: Dataset, test_ids: list[str], cfg: dict, cache_dir: Path) -> dict[str, FrameSamples]:
    """The held-out frames to score against, by reference: truth (a benchmark), reviewed and/or speech labels.

    Against labels, unknown entries are left out of the figures (the masked policy), whatever the
    training policy was: a finding nobody mentioned is not counted as a miss or a false alarm.
    """
    refs = {}
    if ds.has_truth:
        refs["truth"] = gather(ds, test_ids, {**cfg, "multilabel": True, "unknown": "mask"}, cache_dir, "truth")
    if ds.labels_dir is not None:
        s = gather(ds, test_ids, {**cfg, "multilabel": True, "unknown": "mask"}, cache_dir, "labels")
        reviewed = s.source == "reviewed"
        if reviewed.any():
            refs["reviewed"] = s.subset(reviewed)
        if (~reviewed).any():
            refs["speech"] = s.subset(~reviewed)
    return refs


def evaluate_fitted(fitted: Fitted, refs: dict[str, FrameSamples], classes: list[str], cfg: dict) -> dict:
    """metrics.json: the figures against the best reference (truth, else reviewed, else speech) at the top,
    every reference under ``references``; thresholds used for F1 are those chosen on the training split."""
    from sonotell.eval.label_metrics import score_labels

    by_ref = {}
    for name, s in refs.items():
        if not len(s.states):
            continue
        probs = predict_samples(fitted.model, s, fitted.multilabel)
        by_ref[name] = score_labels(
            probs, s.states, s.scan_ids, classes, fitted.thresholds, fitted.train_prior, fitted.trainable, name
        )
    primary = next((by_ref[n] for n in ("truth", "reviewed", "speech") if n in by_ref), None)
    out = dict(primary) if primary is not None else {"truth": None, "frames": 0}
    out["threshold"] = fitted.thresholds_by_label(classes)
    out["not_trainable"] = fitted.not_trainable(classes)
    out["labels"] = list(classes)
    out["references"] = by_ref
    return out


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


# --------------------------------------------------------------------------- repeated splits


def cross_validate(
    ds: Dataset,
    out_dir: str | Path,
    *,
    folds: int = 5,
    seeds: list[int] | tuple[int, ...] = (0, 1),
    sources: tuple[str, ...] = ("labels", "truth"),
    config: str | dict = "small",
    overrides: list[str] | None = None,
    cache_dir: str | Path | None = None,
    progress: Progress = silent,
) -> dict:
    """Repeated subject-grouped K-fold: per seed, K folds of whole subjects; each source trained per fold.

    Frames are gathered once per source and reused across folds (the cost is the training). Every
    model of one (seed, fold) is scored on the same held-out frames, against truth when the dataset
    has it (else its labels), so runs pair up for ``sonotell.eval.paired``. Returns
    ``{"runs": [...], "summary": ...}`` (see ``sonotell.eval.repeated.summarise_runs``).
    """
    from sonotell.eval.cv import assert_disjoint_groups, grouped_kfold
    from sonotell.eval.repeated import summarise_runs

    cfg = method_config(config, overrides)
    out_dir = Path(out_dir)
    _refuse_inputs_as_output(ds, out_dir)
    cache_dir = Path(cache_dir) if cache_dir is not None else out_dir / "cache"
    ids = [s.scan_id for s in ds.scans]
    groups = [s.subject_id for s in ds.scans]
    pools = {}
    for source in sources:
        scfg = {**cfg, "labels_from": source}
        _check_config(ds, scfg)
        pools[source] = gather(ds, ids, scfg, cache_dir, source, progress)
    refs = reference_samples(ds, ids, cfg, cache_dir)
    ref_name = next(n for n in ("truth", "reviewed", "speech") if n in refs)
    ref = refs[ref_name]
    runs = []
    for seed in seeds:
        for fold, (tr, te) in enumerate(grouped_kfold(groups, int(folds), seed)):
            assert_disjoint_groups(groups, tr, te)
            train_ids, test_ids = {ids[i] for i in tr}, {ids[i] for i in te}
            test = ref.subset(np.isin(ref.scan_ids, list(test_ids)))
            for source in sources:
                pool = pools[source]
                train = pool.subset(np.isin(pool.scan_ids, list(train_ids)))
                if not len(train.y):
                    log.warning("seed %d fold %d: no %s frames in the training subjects; skipped", seed, fold, source)
                    continue
                fitted = fit_samples(
                    train, ds.label_names, {**cfg, "labels_from": source}, seed, out_dir / f"s{seed}f{fold}{source}"
                )
                m = evaluate_fitted(fitted, {ref_name: test}, ds.label_names, cfg)
                m.pop("references", None)
                runs.append(
                    {
                        "seed": seed,
                        "fold": fold,
                        "trained_on": "speech" if source == "labels" else "truth",
                        "train_frames": int(len(train.y)),
                        "test_subjects": sorted({groups[i] for i in te}),
                        "metrics": m,
                    }
                )
    return {
        "folds": int(folds),
        "seeds": list(seeds),
        "truth": ref_name,
        "labels": list(ds.label_names),
        "runs": runs,
        "summary": summarise_runs(runs, ds.label_names),
    }


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
    # Saved through a buffer: torch.save names the zip's inner folder after the file it writes, and the
    # atomic write's temporary name is random, so two identical runs gave different bytes (issue #21).
    buf = io.BytesIO()
    torch.save(payload, buf)
    write_bytes(path, buf.getvalue())
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

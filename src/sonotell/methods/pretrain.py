"""Shared self-supervised pretraining runner for the recipes ``show_from_tell``, ``dual`` and ``av_contrastive``.

``pretrain(recipe, benchmark, out_dir)`` reads the recipe's config
(``configs/methods/<recipe>/<config>.yaml``), builds paired clips from the benchmark with
``sonotell.data.datasets.ClipDataset`` (no labels are read), trains the recipe's model with
``sonotell.train.fit`` and writes the **encoder checkpoint**:

``out_dir/encoder.pt`` -- ``sonotell.train.save_model_checkpoint`` format ``sonotell/1``:
``{"format", "recipe", "config", "state_dict"}``; ``config`` is the full resolved recipe
config whose ``model`` section (``{name: <recipe>, ...kwargs}``) rebuilds the network with
``create_model(name, **kwargs)`` (the text vocabulary is stored there too). The config is
also written beside it as ``encoder.yaml``. Load it with
``sonotell.train.load_model_checkpoint(path, expected="show_from_tell", model=net)`` or
``load_pretrained(path, expected=...)`` here, which rebuilds the model; a checkpoint of
another recipe or shape is refused with a message naming both.

The models expose ``encode_video(frames (B, T, H, W))``, ``encode_image(frames (B, H, W))``
(dual), ``encode_audio(wav (B, S))``, ``encode_text(list[str])`` (show_from_tell) and
``localisation_map(frames, audio) -> (B, h, w)`` (show_from_tell with spatial fusion).

Example:
    >>> ckpt = pretrain("show_from_tell", "bench_out/synthetic", "runs/sft", config="small")  # doctest: +SKIP
    >>> model = load_pretrained(ckpt, expected="show_from_tell")  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from sonotell.config import Section, load_config
from sonotell.data.format import resolve_benchmark
from sonotell.errors import ConfigError, InputError
from sonotell.files import write_json
from sonotell.losses.pairs import NO_SPEECH_POLICIES, PairPlan, speech_mask  # noqa: F401  (re-exported)
from sonotell.models.encoders import build_encoder  # noqa: F401  (re-exported)
from sonotell.progress import Progress, silent
from sonotell.train import Task

log = logging.getLogger(__name__)

# A transcript word or term that carries no confidence was heard for certain (a data rule, not a setting).
CERTAIN = 1.0

RECIPES = ("show_from_tell", "dual", "av_contrastive")


# --------------------------------------------------------------------------- the training task


class PretrainTask(Task):
    """Pairs a recipe model with its own objective: ``step`` returns ``model.losses(batch)``."""

    def step(self, batch) -> dict:
        out = self.model.losses(batch)
        # A term with nothing to learn from in this batch (no speech, no lexicon term) leaves its
        # head without a gradient; under DDP the other ranks would then wait for it forever.
        # Touching every parameter with a zero weight keeps every rank's gradients complete.
        out["loss"] = out["loss"] + sum(p.sum() for p in self.model.parameters() if p.requires_grad) * 0.0
        return out

    def on_train_epoch_start(self) -> None:
        if hasattr(self.model, "set_epoch"):
            self.model.set_epoch(self.current_epoch)


def collate_clips(items: list[dict]) -> dict:
    """Stack tensors / arrays, keep strings as lists; keys missing from any item are dropped."""
    keys = set(items[0]).intersection(*map(set, items[1:]))
    out: dict = {}
    for k in sorted(keys):
        vals = [it[k] for it in items]
        if isinstance(vals[0], (torch.Tensor, np.ndarray)):
            out[k] = torch.stack([torch.as_tensor(v) for v in vals])
        elif isinstance(vals[0], (int, float, np.integer, np.floating)) and not isinstance(vals[0], bool):
            out[k] = torch.as_tensor(vals)
        else:
            out[k] = vals
    return out


# --------------------------------------------------------------------------- checkpoints


def model_from_config(recipe: str, config: dict) -> nn.Module:
    """Rebuild a recipe's (untrained) model from its resolved config's ``model`` section."""
    from sonotell.models import create_model

    _import_recipe(recipe)
    section = dict(config.get("model") or {})
    name = section.pop("name", recipe)
    section.pop("config", None)
    return create_model(name, None, **section)


def load_pretrained(path: str | Path, expected: str | None = None) -> nn.Module:
    """A pretrained recipe model from ``encoder.pt``; refuses another recipe or shape, naming both."""
    from sonotell.train import load_model_checkpoint

    ckpt = load_model_checkpoint(path, expected=expected)
    if ckpt["recipe"] not in RECIPES:
        raise ConfigError(
            f"{path}: checkpoint of recipe {ckpt['recipe']!r} is not a pretraining recipe ({', '.join(RECIPES)})"
        )
    model = model_from_config(ckpt["recipe"], ckpt["config"])
    load_model_checkpoint(path, expected=ckpt["recipe"], model=model)
    return model.eval()


def _import_recipe(recipe: str):
    if recipe not in RECIPES:
        raise ConfigError(f"unknown pretraining recipe {recipe!r}; known: {', '.join(RECIPES)}")
    return importlib.import_module(f"sonotell.models.{recipe}")  # the recipe network (registers itself)


# --------------------------------------------------------------------------- the runner


def resolve_config(recipe: str, config: str | Path | dict = "small", overrides: Sequence[str] = ()) -> dict:
    """The recipe's config (packaged name or YAML path) with ``key=value`` overrides applied."""
    from sonotell.config import apply_overrides

    _import_recipe(recipe)
    if isinstance(config, dict):
        return apply_overrides(config, list(overrides))
    return load_config(f"methods/{recipe}", config, list(overrides))


def split_subjects(subject_of_scan: dict[str, str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Scan ids split by subject into (train, val) with ``eval.cv.holdout_groups``; no subject is in both."""
    from sonotell.eval.cv import holdout_groups

    scans = sorted(subject_of_scan)
    train, val = holdout_groups([subject_of_scan[s] for s in scans], val_fraction, seed)
    return [scans[i] for i in train], [scans[i] for i in val]


def transcripts(benchmark, scan_ids: Sequence[str], words: dict | None = None) -> list[str]:
    """The spoken text of each scan, for the text vocabulary: ASR ``words`` when given, else the
    benchmark's narration segments; no labels are read."""
    if words is not None:
        return [" ".join(w.text for w in words.get(sid, [])) for sid in scan_ids]
    out = []
    for sid in scan_ids:
        truth = benchmark.truth(sid)
        out += [seg.get("text", "") for seg in truth.get("segments", [])]
    return out


def load_transcript_words(
    folder: str | Path, scan_ids: Sequence[str], units: str = "words", missing_ok: bool = False
) -> dict:
    """``scan_id -> list[Word]`` from a speech-pipeline output folder (``sonotell label``: ``<scan_id>.json``).

    ``units="words"``: the ASR words. ``units="terms"``: the pipeline's spotted, non-negated
    lexicon events, each as one "word" whose text is its label name (the keyword speech input
    of ``model.audio_source: keywords``). ``missing_ok``: a scan without a file (the pipeline
    found no speech in it) gets no words instead of an error.
    """
    if units not in ("words", "terms"):
        raise ConfigError(f"transcript units must be 'words' or 'terms', got {units!r}")
    out = {}
    from sonotell import labels as labels_io

    for sid in scan_ids:
        path = labels_io.doc_path(folder, sid)
        if not path.exists():
            if missing_ok:
                out[sid] = []
                continue
            raise InputError(path, "no transcript for this scan (run the speech pipeline first)")
        try:
            doc = labels_io.read_json(path)
            if units == "terms":  # spotted terms, said (not negated)
                out[sid] = [_transcript_word(e, "label") for e in doc.get("events", []) if not e.get("negated")]
            else:
                out[sid] = [_transcript_word(w, "text") for w in doc.get("words", [])]
        except (ValueError, KeyError, TypeError) as e:
            raise InputError(path, f"unreadable transcript ({e.__class__.__name__}: {e})") from None
    return out


def _transcript_word(item: dict, text_key: str):
    """A word (or spotted term) of a ``sonotell label`` JSON; one without a confidence was heard for certain."""
    from sonotell.types import Word

    return Word(
        str(item[text_key]),
        float(item["start_s"]),
        float(item["end_s"]),
        float(item.get("confidence", CERTAIN)),
        item.get("speaker"),
    )


def make_dataset(
    benchmark,
    scan_ids: Sequence[str],
    data_cfg: dict,
    cache_dir: Path,
    progress: Progress = silent,
    words: dict | None = None,
):
    """``ClipDataset`` over ``scan_ids`` with the recipe's clip settings (transcripts from ``words`` when given)."""
    from sonotell.data.datasets import ClipDataset

    kwargs = dict(data_cfg)
    kwargs.pop("transcripts", None)
    kwargs.pop("transcript_units", None)
    if words is not None:
        kwargs["words"] = words
    before, after = kwargs.pop("audio_before_s", None), kwargs.pop("audio_after_s", None)
    if before is not None:
        kwargs["audio_window_s"] = (float(before), float(after if after is not None else before))
    kwargs.pop("batch_size", None)
    kwargs.pop("num_workers", None)
    kwargs["size"] = tuple(kwargs.get("size", (64, 64)))
    return ClipDataset(benchmark, list(scan_ids), cache_dir=cache_dir, progress=progress, **kwargs)


class WithScanText(torch.utils.data.Dataset):
    """A ``ClipDataset`` whose items also carry ``scan_text``: every word (spotted term) of the
    clip's whole scan, for keyword negatives drawn among terms said nowhere in the scan."""

    def __init__(self, dataset):
        self.dataset, self.items = dataset, dataset.items
        self.scan_text = {sid: " ".join(w.text for w in sampler.words) for sid, sampler in dataset.samplers.items()}

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        item = self.dataset[index]
        item["scan_text"] = self.scan_text[item["scan_id"]]
        return item


class ScanGroupBatchSampler(torch.utils.data.Sampler):
    """Batches made of groups of ``per_scan`` clips from one scan (shuffled every epoch), so a
    batch holds same-scan clips at other times -- the hard negatives of correspondence.

    Example:
        >>> batches = list(ScanGroupBatchSampler(["a"] * 4 + ["b"] * 4, 4, 2, torch.Generator().manual_seed(0)))
        >>> sorted(len(b) for b in batches), sorted(i for b in batches for i in b)
        ([4, 4], [0, 1, 2, 3, 4, 5, 6, 7])
    """

    def __init__(self, scan_ids: Sequence[str], batch_size: int, per_scan: int, generator: torch.Generator):
        self.scan_ids, self.batch_size, self.per_scan, self.generator = (
            list(scan_ids),
            int(batch_size),
            int(per_scan),
            generator,
        )

    def _groups(self) -> list[list[int]]:
        by_scan: dict[str, list[int]] = {}
        for i in torch.randperm(len(self.scan_ids), generator=self.generator).tolist():
            by_scan.setdefault(self.scan_ids[i], []).append(i)
        groups = [idx[k : k + self.per_scan] for idx in by_scan.values() for k in range(0, len(idx), self.per_scan)]
        return [groups[k] for k in torch.randperm(len(groups), generator=self.generator).tolist()]

    def __iter__(self):
        flat = [i for grp in self._groups() for i in grp]
        for k in range(0, len(flat) - self.batch_size + 1, self.batch_size):
            yield flat[k : k + self.batch_size]

    def __len__(self) -> int:
        return len(self.scan_ids) // self.batch_size


@dataclass(frozen=True)
class PretrainTrainConfig(Section):
    """A recipe's ``train`` section. Every recipe's YAML (``configs/methods/<recipe>/paper.yaml``)
    states every field, so none has a default here: a config file that drops one is refused by name."""

    SECTION = "train"
    epochs: int
    batch_size: int
    val_fraction: float
    early_stop_patience: int | None
    optimizer: dict
    num_workers: int
    clips_per_scan: int
    speech_clips_only: bool
    gradient_clip_val: float | None

    @classmethod
    def of(cls, cfg: dict) -> PretrainTrainConfig:
        section = dict(cfg.get("train") or {})
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in section]
        if missing:
            raise ConfigError(
                f"missing setting(s) {', '.join('train.' + m for m in missing)} (see the recipe's paper.yaml)"
            )
        return cls.from_dict(section)


def pretrain(
    recipe: str,
    benchmark,
    out_dir: str | Path,
    config: str | Path | dict = "small",
    overrides: Sequence[str] = (),
    seed: int = 0,
    progress: Progress = silent,
    *,
    scan_ids: Sequence[str] | None = None,
    devices: int | str = 1,
    accelerator: str = "cpu",
    strategy: str = "auto",
    cache_dir: str | Path | None = None,
    num_nodes: int = 1,
) -> Path:
    """Pretrain ``recipe`` on ``benchmark`` (folder, name or ``Benchmark``) and write ``out_dir/encoder.pt``.

    ``scan_ids`` restricts pretraining to some scans (e.g. to keep a downstream test fold
    out). The text branch reads the benchmark's narration, or with ``data.transcripts=DIR``
    the words the speech pipeline recognised (``sonotell label`` output, ``<scan_id>.json``);
    validation clips come from held-out subjects. An ``encoder.pt`` already written
    with the same config is returned as it is (a finished run is not repeated); an
    interrupted run resumes from ``out_dir/checkpoints/last.ckpt``.
    """
    from sonotell.seeding import seed_everything
    from sonotell.train import fit, load_model_checkpoint

    out_dir = Path(out_dir)
    cfg = resolve_config(recipe, config, overrides)
    bench = _pretraining_benchmark(benchmark, cfg)
    train_cfg = PretrainTrainConfig.of(cfg)
    train_ids, val_ids = _split_scans(bench, scan_ids, train_cfg.val_fraction, seed)
    target = out_dir / "encoder.pt"
    if target.exists():
        old = load_model_checkpoint(target)
        if old["recipe"] == recipe and _same_run(
            old["config"], cfg, bench.name, seed, {"train": train_ids, "val": val_ids}
        ):
            log.info("%s: already pretrained with this config", target)
            return target
    seed_everything(seed)
    torch.manual_seed(seed)

    words = _prepare_model_config(recipe, cfg, bench, train_ids, val_ids)
    cfg["benchmark"], cfg["seed"] = bench.name, seed
    cfg["scan_ids"] = {"train": train_ids, "val": val_ids}

    _check_resumable(out_dir, cfg)
    cache = Path(cache_dir) if cache_dir else out_dir / "frame_cache"
    train_ds, val_ds = _clip_datasets(bench, cfg, train_cfg, train_ids, val_ids, cache, progress, words)
    train_dl, val_dl = _loaders(train_ds, val_ds, train_cfg, seed)

    model = model_from_config(recipe, cfg)
    task = PretrainTask(model, optimizer=train_cfg.optimizer, recipe=recipe, config=cfg)
    t0 = time.perf_counter()
    result = fit(
        task,
        train_dl,
        val_dl,
        out_dir=out_dir,
        max_epochs=train_cfg.epochs,
        seed=seed,
        devices=devices,
        accelerator=accelerator,
        strategy=strategy,
        num_nodes=num_nodes,
        early_stop_patience=train_cfg.early_stop_patience,
        progress=progress,
        gradient_clip_val=train_cfg.gradient_clip_val,
    )
    seconds = time.perf_counter() - t0
    dist = torch.distributed
    ddp = dist.is_available() and dist.is_initialized()
    if not ddp or dist.get_rank() == 0:  # DDP: every rank holds the same weights; rank 0 writes them
        _write_encoder(
            target,
            model,
            recipe,
            cfg,
            result,
            seconds,
            bench.name,
            seed,
            len(train_ds),
            len(val_ds) if val_ds is not None else 0,
        )
    if ddp:
        dist.barrier()
    return target


def _pretraining_benchmark(benchmark, cfg: dict):
    """The benchmark to pretrain on; a user's own scans (a ``Dataset``) lend their labels folder as transcripts."""
    from sonotell.data.dataset import Dataset

    if not isinstance(benchmark, Dataset):
        return resolve_benchmark(benchmark)
    if benchmark.benchmark is None and benchmark.labels_dir is not None:
        # a user's own scans: the text branch reads what the speech pipeline heard
        data = cfg.setdefault("data", {})
        data["transcripts"] = data.get("transcripts") or str(benchmark.labels_dir)
    return benchmark.as_benchmark()


def _split_scans(bench, scan_ids: Sequence[str] | None, val_fraction: float, seed: int) -> tuple[list, list]:
    """(train, validation) scan ids of the chosen scans, split by subject."""
    ids = list(scan_ids) if scan_ids is not None else [s.scan_id for s in bench.scans]
    unknown = sorted(set(ids) - {s.scan_id for s in bench.scans})
    if unknown:
        raise InputError(bench.root, f"unknown scan ids {unknown[:3]}")
    subject_of = {s.scan_id: s.subject_id for s in bench.scans if s.scan_id in set(ids)}
    train_ids, val_ids = split_subjects(subject_of, val_fraction, seed)
    if not train_ids:
        raise InputError(bench.root, "no scans to pretrain on")
    return train_ids, val_ids


def _prepare_model_config(recipe: str, cfg: dict, bench, train_ids: list, val_ids: list) -> dict | None:
    """Name the model in ``cfg`` and give its text branch a vocabulary; returns the transcript words (or None)."""
    model_cfg = cfg.setdefault("model", {})
    model_cfg["name"] = recipe
    data = cfg.get("data") or {}
    transcript_dir = data.get("transcripts")
    units = data.get("transcript_units", "words")
    words = (
        load_transcript_words(transcript_dir, train_ids + val_ids, units, missing_ok=units == "terms")
        if transcript_dir
        else None
    )
    if model_cfg.get("audio_source", "waveform") == "keywords" and not transcript_dir:
        # the benchmark's narration is the script the speech was made from: not what a pipeline hears
        raise ConfigError(
            "model.audio_source=keywords reads what the speech pipeline spotted: "
            "set data.transcripts=<sonotell label folder> (and data.transcript_units=terms)"
        )
    if model_cfg.get("text") is not None and model_cfg.get("use_text", True):
        from sonotell.models.text import build_vocabulary

        vocab = build_vocabulary(transcripts(bench, train_ids, words), min_count=int(cfg["text_min_count"]))
        model_cfg["text"]["vocabulary"] = vocab
    return words


def _clip_datasets(bench, cfg: dict, train_cfg: PretrainTrainConfig, train_ids, val_ids, cache: Path, progress, words):
    """The training and validation clips (validation None without held-out subjects)."""
    data_cfg = dict(cfg.get("data", {}))
    train_ds = make_dataset(bench, train_ids, data_cfg, cache, progress, words)
    val_ds = make_dataset(bench, val_ids, data_cfg, cache, progress, words) if val_ids else None
    if train_cfg.speech_clips_only:
        # Keyword training learns only from windows with a spotted term; the others cost a forward
        # pass and teach nothing.
        train_ds.items = [(sid, t) for sid, t in train_ds.items if train_ds.samplers[sid].text(t).strip()]
        log.info("%d training clips hold speech (train.speech_clips_only)", len(train_ds.items))
    if (cfg["model"].get("keywords") or {}).get("negatives_from") == "scan":
        train_ds = WithScanText(train_ds)
        val_ds = WithScanText(val_ds) if val_ds is not None else None
    if len(train_ds) < 2:
        raise InputError(bench.root, f"only {len(train_ds)} training clip(s); contrastive pretraining needs at least 2")
    return train_ds, val_ds


def _loaders(train_ds, val_ds, train_cfg: PretrainTrainConfig, seed: int):
    bs = min(train_cfg.batch_size, len(train_ds))
    g = torch.Generator().manual_seed(seed)
    common = {"collate_fn": collate_clips, "num_workers": train_cfg.num_workers}
    if train_cfg.clips_per_scan > 1:
        # batches of same-scan groups: shifted same-scan negatives (the spoken organ differs, the anatomy look-alike)
        sampler = ScanGroupBatchSampler([sid for sid, _ in train_ds.items], bs, train_cfg.clips_per_scan, g)
        train_dl = torch.utils.data.DataLoader(train_ds, batch_sampler=sampler, **common)
    else:
        train_dl = torch.utils.data.DataLoader(
            train_ds, batch_size=bs, shuffle=True, drop_last=True, generator=g, **common
        )
    val_dl = None
    if val_ds is not None and len(val_ds) >= 2:
        val_dl = torch.utils.data.DataLoader(
            val_ds, batch_size=min(bs, len(val_ds)), shuffle=False, drop_last=True, **common
        )
    return train_dl, val_dl


def _write_encoder(
    target: Path,
    model: nn.Module,
    recipe: str,
    cfg: dict,
    result,
    seconds: float,
    bench_name: str,
    seed: int,
    n_train: int,
    n_val: int,
) -> None:
    from sonotell.train import load_model_checkpoint, save_model_checkpoint

    best = result.best_checkpoint or result.last_checkpoint
    if best is not None:
        load_model_checkpoint(best, expected=recipe, model=model)
    save_model_checkpoint(target, model, recipe, cfg)
    write_json(
        target.parent / "pretrain.json",
        {
            "recipe": recipe,
            "benchmark": bench_name,
            "seed": seed,
            "train_clips": n_train,
            "val_clips": n_val,
            "epochs_run": result.epochs_run,
            "seconds": round(seconds, 2),
            "metrics": result.metrics,
            "checkpoint": str(target),
            "source_checkpoint": str(best) if best else None,
        },
    )


def _same_run(old: dict, new: dict, bench_name: str, seed: int, scan_ids: dict) -> bool:
    """Whether a written checkpoint came from this very run (same config, data, split and seed)."""

    def model_section(cfg: dict) -> dict:
        out = {k: v for k, v in (cfg.get("model") or {}).items() if k != "name"}
        return {
            k: ({kk: vv for kk, vv in v.items() if kk != "vocabulary"} if isinstance(v, dict) else v)
            for k, v in out.items()
        }

    same = model_section(old) == model_section(new) and all(
        old.get(k) == new.get(k) for k in ("data", "train", "text_min_count")
    )
    return same and old.get("benchmark") == bench_name and old.get("seed") == seed and old.get("scan_ids") == scan_ids


def _check_resumable(out_dir: Path, cfg: dict) -> None:
    """Refuse to resume Lightning checkpoints of a different run (other model, data, split or seed) in ``out_dir``."""
    stamp_keys = ("model", "data", "text_min_count", "benchmark", "seed", "scan_ids")
    stamp = json.loads(json.dumps({k: cfg.get(k) for k in stamp_keys}, default=str))
    path = out_dir / "run_stamp.json"
    if (out_dir / "checkpoints" / "last.ckpt").exists() and path.exists():
        old = json.loads(path.read_text())
        if old != stamp:
            changed = sorted(k for k in stamp_keys if old.get(k) != stamp.get(k))
            raise ConfigError(
                f"{out_dir}: holds checkpoints of another pretraining run (differs in {', '.join(changed)}); "
                "use another --out or delete it"
            )
    write_json(path, stamp)

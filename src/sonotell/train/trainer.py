"""``fit``: the one training loop of sonotell (Lightning), with the habits every run needs.

Checkpoints (best + last, written atomically) with the config beside them, resume from
``last.ckpt``, early stopping, CSV + TensorBoard logs, seeds, a NaN guard that keeps the last
good checkpoint, and multi-device DDP by arguments (``devices=4, accelerator="gpu",
strategy="ddp"``; on CPU ``strategy="ddp"`` uses the gloo backend).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import yaml
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from sonotell.files import write_text
from sonotell.progress import Progress, silent
from sonotell.train.task import NonFiniteLossError, Task

log = logging.getLogger(__name__)
# Lightning announces devices and tips at INFO on every Trainer, and its import sets that level;
# sonotell reports training progress through its own callback instead.
for _name in ("lightning.pytorch", "lightning.fabric"):
    logging.getLogger(_name).setLevel(logging.WARNING)


@dataclass
class FitResult:
    best_checkpoint: Path | None
    last_checkpoint: Path | None
    metrics: dict = field(default_factory=dict)
    epochs_run: int = 0


class AtomicModelCheckpoint(ModelCheckpoint):
    """ModelCheckpoint that writes to a temporary name and renames, so a crash never leaves half a file."""

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        tmp = f"{filepath}.tmp"
        trainer.save_checkpoint(tmp, self.save_weights_only)
        if trainer.is_global_zero:
            os.replace(tmp, filepath)
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            from weakref import proxy

            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))


class _ProgressCallback(Callback):
    def __init__(self, progress: Progress, max_epochs: int):
        self.progress, self.max_epochs = progress, max_epochs

    def on_train_epoch_end(self, trainer, pl_module):
        loss = trainer.callback_metrics.get("train/loss")
        msg = f"loss {float(loss):.4f}" if loss is not None else ""
        self.progress(trainer.current_epoch + 1, self.max_epochs, msg)


def fit(
    task: Task,
    train_loader,
    val_loader=None,
    *,
    out_dir: str | Path,
    max_epochs: int,
    seed: int = 0,
    devices: int | str = 1,
    accelerator: str = "cpu",
    strategy: str = "auto",
    num_nodes: int = 1,
    precision: str | None = None,
    early_stop_patience: int | None = None,
    monitor: str = "val/loss",
    mode: str = "min",
    resume: bool = True,
    progress: Progress = silent,
    log_every_n_steps: int = 10,
    gradient_clip_val: float | None = None,
) -> FitResult:
    """Train ``task`` and return its checkpoints and final metrics.

    Resumes from ``out_dir/checkpoints/last.ckpt`` when ``resume`` and it exists. On a NaN loss
    raises ``NonFiniteLossError`` whose message names the last good checkpoint.

    Example:
        >>> res = fit(task, train_dl, val_dl, out_dir="runs/x", max_epochs=5, early_stop_patience=2)  # doctest: +SKIP
        >>> res.best_checkpoint  # doctest: +SKIP
    """
    out_dir = Path(out_dir)
    ckpt_dir = out_dir / "checkpoints"
    L.seed_everything(seed, workers=True, verbose=False)
    has_val = val_loader is not None
    checkpoint = AtomicModelCheckpoint(
        dirpath=ckpt_dir,
        filename="best",
        monitor=monitor if has_val else None,
        mode=mode,
        save_top_k=1,
        save_last=True,
        enable_version_counter=False,
    )
    callbacks: list[Callback] = [checkpoint, _ProgressCallback(progress, max_epochs)]
    if early_stop_patience is not None and has_val:
        callbacks.append(EarlyStopping(monitor=monitor, mode=mode, patience=early_stop_patience, check_finite=True))
    # a new version folder per (resumed) run: CSVLogger would otherwise overwrite earlier logs
    loggers = [CSVLogger(out_dir, name="logs")]
    try:
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(out_dir, name="tensorboard", default_hp_metric=False))
    except (ImportError, ModuleNotFoundError):  # tensorboard is optional for logging
        pass
    if strategy == "ddp" and accelerator == "cpu":
        from lightning.pytorch.strategies import DDPStrategy

        strategy = DDPStrategy(process_group_backend="gloo")
    trainer = L.Trainer(
        max_epochs=max_epochs,
        accelerator=accelerator,
        devices=devices,
        num_nodes=num_nodes,
        strategy=strategy,
        precision=precision,
        callbacks=callbacks,
        logger=loggers,
        default_root_dir=out_dir,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=log_every_n_steps,
        deterministic=accelerator == "cpu",
        gradient_clip_val=gradient_clip_val,
        num_sanity_val_steps=0,
    )
    write_text(
        out_dir / "config.yaml",
        yaml.safe_dump(
            {"recipe": task.recipe, "config": task.config, "optimizer": task.optimizer_config}, sort_keys=False
        ),
    )
    last = ckpt_dir / "last.ckpt"
    ckpt_path = str(last) if resume and last.exists() else None
    if ckpt_path:
        log.info("resuming from %s", ckpt_path)
    try:
        trainer.fit(task, train_loader, val_loader, ckpt_path=ckpt_path)
    except NonFiniteLossError as e:
        kept = last if last.exists() else None
        raise NonFiniteLossError(
            f"{e}; training stopped, last good checkpoint: {kept or 'none (failed in the first epoch)'}"
        ) from None
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    best = Path(checkpoint.best_model_path) if checkpoint.best_model_path else (last if last.exists() else None)
    return FitResult(best, last if last.exists() else None, metrics, trainer.current_epoch)

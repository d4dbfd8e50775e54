"""``Task``: a LightningModule that pairs a model with its loss (timm's task object).

Subclasses implement ``step(batch) -> dict`` whose ``"loss"`` is optimised; every other
scalar in the dict is logged as ``train/<key>`` or ``val/<key>``.
"""

from __future__ import annotations

import math

import lightning as L
import torch
from torch import nn

from sonotell.errors import SonotellError


class NonFiniteLossError(SonotellError):
    """The loss became NaN or infinite; training stops and the last good checkpoint is kept."""


class Task(L.LightningModule):
    """Base class of every trainable recipe.

    Args:
        model: the network; saved under the ``model.`` prefix of the checkpoint.
        optimizer: ``{"name": "adam"|"adamw"|"sgd", "lr": 1e-3, "weight_decay": 0, "momentum": 0.9}``.
        recipe: the recipe's name, stored in checkpoints so a wrong one is refused on load.
        config: the full config, stored beside checkpoints.
    """

    def __init__(
        self, model: nn.Module, optimizer: dict | None = None, recipe: str = "task", config: dict | None = None
    ):
        super().__init__()
        self.model = model
        self.optimizer_config = dict(optimizer or {"name": "adam", "lr": 1e-3})
        self.recipe = recipe
        self.config = dict(config or {})
        # stored in Lightning checkpoints, so load_model_checkpoint can refuse a wrong recipe
        self.save_hyperparameters({"recipe": recipe, "config": self.config, "optimizer": self.optimizer_config})

    def step(self, batch) -> dict:
        raise NotImplementedError

    def forward(self, *args, **kwargs):
        return self.model(*args, **kwargs)

    def training_step(self, batch, batch_idx):
        out = self.step(batch)
        loss = out["loss"]
        if not torch.isfinite(loss).all():
            raise NonFiniteLossError(
                f"{self.recipe}: loss is {loss.item()} at epoch {self.current_epoch}, step {self.global_step}"
            )
        self._log_dict("train", out, batch)
        return loss

    def validation_step(self, batch, batch_idx):
        out = self.step(batch)
        self._log_dict("val", out, batch)
        return out["loss"]

    def configure_optimizers(self):
        cfg = dict(self.optimizer_config)
        name = cfg.pop("name", "adam").lower()
        lr = float(cfg.pop("lr", 1e-3))
        wd = float(cfg.pop("weight_decay", 0.0))
        params = [p for p in self.parameters() if p.requires_grad]
        if name == "adam":
            return torch.optim.Adam(params, lr=lr, weight_decay=wd)
        if name == "adamw":
            return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
        if name == "sgd":
            return torch.optim.SGD(params, lr=lr, weight_decay=wd, momentum=float(cfg.pop("momentum", 0.9)))
        raise SonotellError(f"unknown optimizer {name!r} (adam, adamw, sgd)")

    def _log_dict(self, stage: str, out: dict, batch) -> None:
        size = _batch_size(batch)
        for k, v in out.items():
            if torch.is_tensor(v) and v.numel() == 1:
                v = v.detach().float()
            elif isinstance(v, (int, float)) and math.isfinite(float(v)):
                v = float(v)
            else:
                continue
            self.log(
                f"{stage}/{k}",
                v,
                prog_bar=False,
                on_step=False,
                on_epoch=True,
                batch_size=size,
                sync_dist=stage == "val",
            )


def _batch_size(batch) -> int | None:
    if isinstance(batch, dict):
        batch = next((v for v in batch.values() if torch.is_tensor(v)), None)
    elif isinstance(batch, (list, tuple)) and batch:
        batch = batch[0]
    return int(batch.shape[0]) if torch.is_tensor(batch) and batch.ndim else None

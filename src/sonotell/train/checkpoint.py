"""Model checkpoints that know what they are: recipe name, config and weights.

Format ``sonotell/1``: ``torch.save({"format", "recipe", "config", "state_dict"})`` (tensors and
plain data only: every checkpoint is read with ``weights_only=True``, see docs/security.md) with the
config also written beside it as ``<name>.yaml`` so a person can read it. Lightning
``.ckpt`` files written by ``fit`` are read too (their ``model.`` weights).
"""

from __future__ import annotations

from pathlib import Path

import torch
import yaml
from torch import nn

from sonotell.errors import InputError, SonotellError
from sonotell.files import atomic_path, write_text
from sonotell.safeload import load_weights_only, plain

FORMAT = "sonotell/1"


class CheckpointError(SonotellError):
    """A checkpoint that cannot be used: wrong recipe, wrong shapes, unreadable."""


def save_model_checkpoint(path: str | Path, model: nn.Module, recipe: str, config: dict | None = None) -> Path:
    """Save ``model`` weights with their recipe and config (atomically), plus a YAML beside.

    Example:
        >>> save_model_checkpoint("runs/enc.pt", encoder, "show_from_tell", cfg)  # doctest: +SKIP
    """
    path = Path(path)
    config = plain(config or {})  # only tensors and JSON-like data, so the file loads with weights_only=True
    payload = {"format": FORMAT, "recipe": recipe, "config": config, "state_dict": model.state_dict()}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    write_text(path.with_suffix(".yaml"), yaml.safe_dump({"recipe": recipe, "config": config}, sort_keys=False))
    return path


def load_model_checkpoint(
    path: str | Path, expected: str | None = None, model: nn.Module | None = None, strict: bool = True
) -> dict:
    """Read a checkpoint; check its recipe against ``expected`` and load it into ``model``.

    Returns ``{"recipe", "config", "state_dict"}``. Raises ``CheckpointError`` naming the file,
    the checkpoint's recipe and the expected one, or the first mismatching tensor shapes.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        raw = load_weights_only(path)  # never unpickles code: a crafted .pt is refused, not run
    except InputError as e:
        raise CheckpointError(str(e)) from None
    ckpt = _normalise(path, raw)
    if expected is not None and ckpt["recipe"] != expected:
        raise CheckpointError(f"{path}: checkpoint is of recipe {ckpt['recipe']!r}, expected {expected!r}")
    if model is not None:
        load_state_checked(model, ckpt["state_dict"], path, ckpt["recipe"], strict=strict)
    return ckpt


def load_state_checked(model: nn.Module, state: dict, path: Path | str, recipe: str, strict: bool = True) -> None:
    """``model.load_state_dict`` with an error that names the file and the mismatching shapes."""
    own = model.state_dict()
    theirs, ours = _encoder_family(state), _encoder_family(own)
    if theirs != ours:
        raise CheckpointError(
            f"{path}: checkpoint of recipe {recipe!r} holds a {theirs} encoder, this model a {ours} one; "
            "build the model with the checkpoint's own config, or use a checkpoint of this encoder"
        )
    bad = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and own[k].shape != v.shape
    ]
    if bad:
        raise CheckpointError(
            f"{path}: checkpoint of recipe {recipe!r} does not fit this model ({bad[0]}; {len(bad)} tensors differ)"
        )
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if strict and (missing or unexpected):
        raise CheckpointError(
            f"{path}: checkpoint of recipe {recipe!r} does not fit this model "
            f"({len(missing)} missing keys e.g. {missing[:2]}, {len(unexpected)} unexpected e.g. {unexpected[:2]})"
        )
    model.load_state_dict(state, strict=strict)


def _encoder_family(state: dict) -> str:
    """``efficientnet_lite0`` (ImageNet backbone) or ``from-scratch``, told apart by the backbone's stem key."""
    return "efficientnet_lite0" if any(str(k).endswith("_conv_stem.weight") for k in state) else "from-scratch"


def _normalise(path: Path, raw) -> dict:
    if isinstance(raw, dict) and raw.get("format") == FORMAT:
        return {"recipe": raw["recipe"], "config": raw.get("config", {}), "state_dict": raw["state_dict"]}
    if isinstance(raw, dict) and "state_dict" in raw and "pytorch-lightning_version" in raw:
        hp = raw.get("hyper_parameters", {}) or {}
        state = {k[len("model.") :]: v for k, v in raw["state_dict"].items() if k.startswith("model.")}
        return {"recipe": hp.get("recipe", "unknown"), "config": hp.get("config", {}), "state_dict": state}
    if isinstance(raw, dict) and raw and all(torch.is_tensor(v) for v in raw.values()):
        return {"recipe": "unknown", "config": {}, "state_dict": raw}  # a bare state dict from elsewhere
    raise CheckpointError(
        f"{path}: not a model checkpoint (expected format {FORMAT!r}, a Lightning .ckpt or a state dict)"
    )

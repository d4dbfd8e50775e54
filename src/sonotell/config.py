"""Configs are data: YAML files with the paper's values as defaults, overridable by key.

Packaged configs live in ``sonotell/configs/<group>/<name>.yaml``; a user may pass a path.
Overrides use dotted keys: ``["train.epochs=3", "model.width=16"]``.
"""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from sonotell.errors import ConfigError


def packaged_config_path(group: str, name: str) -> Path:
    return Path(str(resources.files("sonotell") / "configs" / group / f"{name}.yaml"))


def load_config(group: str, name_or_path: str | Path, overrides: list[str] | None = None) -> dict:
    """Load a packaged config by name (or a YAML file by path) and apply ``key=value`` overrides.

    A config may name a base with ``_base_: other_name`` (same group); keys merge over it.

    Example:
        >>> cfg = load_config("pipelines", "speech", ["vad.threshold=0.6"])  # doctest: +SKIP
    """
    path = Path(name_or_path)
    if not path.suffix:
        path = packaged_config_path(group, str(name_or_path))
    if not path.exists():
        raise ConfigError(f"{path}: no such config (group {group!r})")
    with open(path) as f:
        cfg = yaml.safe_load(f) or {}
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: a config must be a mapping")
    base = cfg.pop("_base_", None)
    if base:
        cfg = merge(load_config(group, base), cfg)
    return apply_overrides(cfg, overrides or [])


def merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def apply_overrides(cfg: dict, overrides: list[str]) -> dict:
    cfg = copy.deepcopy(cfg)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        node: Any = cfg
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {p!r} is not a section")
        node[parts[-1]] = yaml.safe_load(raw)
    return cfg

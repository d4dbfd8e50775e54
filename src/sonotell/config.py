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


def load_config(group: str, name_or_path: str | Path, overrides: list[str] | None = None, *, _seen: tuple = ()) -> dict:
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
    if not path.is_file():
        raise ConfigError(f"{path}: not a config file")
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({_yaml_problem(e)})") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: a config must be a mapping")
    base = cfg.pop("_base_", None)
    if base:
        if not isinstance(base, str) or base in _seen:
            raise ConfigError(f"{path}: _base_ must name another config of group {group!r} (no cycles), not {base!r}")
        cfg = merge(load_config(group, base, _seen=(*_seen, str(name_or_path))), cfg)
    return apply_overrides(cfg, overrides or [])


def _yaml_problem(e: Exception) -> str:
    """``line L, column C: problem`` from a PyYAML error, on one line."""
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or e.__class__.__name__
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}" if mark is not None else str(problem)


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
        try:
            node[parts[-1]] = yaml.safe_load(raw)
        except yaml.YAMLError as e:
            raise ConfigError(f"override {item!r}: value is not valid YAML ({_yaml_problem(e)})") from None
    return cfg

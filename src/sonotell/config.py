"""Configs are data: YAML files with the paper's values as defaults, overridable by key.

Packaged configs live in ``sonotell/configs/<group>/<name>.yaml``; a user may pass a path.
Overrides use dotted keys: ``["train.epochs=3", "model.width=16"]``. An override must name a
setting the config has (a typo is refused with the nearest existing key) and its value must
have the type of the value it replaces; a mapping listed under ``_open_`` (e.g. an ASR
backend's options) accepts new keys, which its consumer checks.

Typed sections (:class:`Section`) take their defaults from the packaged YAML, so the YAML is
the one place a default lives and the library behaves as the CLI does.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import typing
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from sonotell.errors import ConfigError

OPEN_KEY = "_open_"
REPLACE_KEY = "_replace_"  # in a child config: this mapping replaces its base's instead of merging into it


def packaged_config_path(group: str, name: str) -> Path:
    return Path(str(resources.files("sonotell") / "configs" / group / f"{name}.yaml"))


def packaged_config_names(group: str) -> list[str]:
    """The packaged config names of a group (e.g. ``models/image_resnet`` -> ``['paper', 'small']``)."""
    folder = resources.files("sonotell") / "configs" / group
    if not folder.is_dir():
        return []
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_config(group: str, name_or_path: str | Path, overrides: list[str] | None = None) -> dict:
    """Load a packaged config by name (or a YAML file by path) and apply ``key=value`` overrides.

    A config may name a base with ``_base_: other_name`` (same group); keys merge over it, and a
    mapping marked ``_replace_: true`` replaces the base's mapping whole (e.g. another ASR backend
    whose options are not the base backend's).

    Example:
        >>> cfg = load_config("pipelines", "speech", ["vad.threshold=0.6"])
        >>> cfg["vad"]["threshold"]
        0.6
    """
    cfg = _load_raw(group, name_or_path)
    open_paths = cfg.pop(OPEN_KEY, [])
    return apply_overrides(cfg, overrides or [], open_paths=open_paths)


def _load_raw(group: str, name_or_path: str | Path, _seen: tuple = ()) -> dict:
    path = Path(name_or_path)
    if not path.suffix:
        path = packaged_config_path(group, str(name_or_path))
    if not path.exists():
        names = packaged_config_names(group)
        known = f"; packaged: {', '.join(names)}" if names else ""
        raise ConfigError(f"{path}: no such config (group {group!r}){known}")
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
        parent = _load_raw(group, base, _seen=(*_seen, str(name_or_path)))
        opened = sorted(set(parent.pop(OPEN_KEY, [])) | set(cfg.pop(OPEN_KEY, [])))
        cfg = merge(parent, cfg)
        if opened:
            cfg[OPEN_KEY] = opened
    return cfg


def _yaml_problem(e: Exception) -> str:
    """``line L, column C: problem`` from a PyYAML error, on one line."""
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or e.__class__.__name__
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}" if mark is not None else str(problem)


def merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and v.get(REPLACE_KEY) is True:
            out[k] = merge({}, {kk: vv for kk, vv in v.items() if kk != REPLACE_KEY})
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = _without_replace_marks(copy.deepcopy(v))
    return out


def _without_replace_marks(value: Any) -> Any:
    """``value`` with every ``_replace_`` marker dropped (a marked mapping with no base mapping under it)."""
    if isinstance(value, dict):
        return {k: _without_replace_marks(v) for k, v in value.items() if k != REPLACE_KEY}
    return value


def dotted_keys(cfg: dict, prefix: str = "") -> list[str]:
    """Every dotted key of a nested mapping (sections and leaves)."""
    out = []
    for k, v in cfg.items():
        key = f"{prefix}{k}"
        out.append(key)
        if isinstance(v, dict):
            out += dotted_keys(v, key + ".")
    return out


def did_you_mean(name: str, choices: list[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def apply_overrides(cfg: dict, overrides: list[str], open_paths: list[str] | tuple[str, ...] = ()) -> dict:
    """Apply ``key=value`` overrides to a copy of ``cfg``: only existing keys, converted to the existing type.

    Keys inside a mapping listed in ``open_paths`` (or inside a null value) may be new.

    Example:
        >>> apply_overrides({"vad": {"threshold": 0.35}}, ["vad.threshold=1"])
        {'vad': {'threshold': 1.0}}
        >>> apply_overrides({"vad": {"threshold": 0.35}}, ["vad.treshold=1"])
        Traceback (most recent call last):
        ...
        sonotell.errors.ConfigError: unknown setting 'vad.treshold'; did you mean 'vad.threshold'?
    """
    cfg = copy.deepcopy(cfg)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as e:
            raise ConfigError(f"override {item!r}: value is not valid YAML ({_yaml_problem(e)})") from None
        parts = key.split(".")
        # free: the key lies inside an open mapping (or a null one), so it may be new
        free = any(".".join(parts[:i]) in open_paths for i in range(1, len(parts)))
        node: Any = cfg
        for depth, p in enumerate(parts[:-1]):
            if node.get(p) is None:
                if p not in node and not free:
                    raise ConfigError(f"unknown setting {key!r}" + did_you_mean(key, dotted_keys(cfg)))
                node[p] = {}
                free = True
            elif not isinstance(node[p], dict):
                raise ConfigError(f"override {item!r}: {'.'.join(parts[: depth + 1])!r} is not a section")
            node = node[p]
        leaf = parts[-1]
        if leaf in node:
            node[leaf] = convert(key, node[leaf], value)
        elif free:
            node[leaf] = value
        else:
            raise ConfigError(f"unknown setting {key!r}" + did_you_mean(key, dotted_keys(cfg)))
    return cfg


def convert(key: str, old: Any, new: Any) -> Any:
    """``new`` as the type of ``old`` (the value it replaces), or a ConfigError naming the key."""
    if old is None or new is None:
        return new
    if isinstance(old, bool):
        if isinstance(new, bool):
            return new
        raise ConfigError(f"{key}: {new!r} is not true/false")
    if isinstance(old, int):
        if isinstance(new, int) and not isinstance(new, bool):
            return new
        raise ConfigError(f"{key}: {new!r} is not an integer")
    if isinstance(old, float):
        if isinstance(new, (int, float)) and not isinstance(new, bool):
            return float(new)
        raise ConfigError(f"{key}: {new!r} is not a number")
    if isinstance(old, list):
        if isinstance(new, list):
            return new
        raise ConfigError(f"{key}: {new!r} is not a list (write [a, b])")
    if isinstance(old, dict):
        if isinstance(new, dict):
            return new
        raise ConfigError(f"{key}: {new!r} is not a mapping (write {{k: v}} or set {key}.<name>=...)")
    if isinstance(old, str) and isinstance(new, (int, float)) and not isinstance(new, bool):
        return str(new)  # a name that looks like a number ("--set split=1")
    return new


# -- typed sections -----------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _packaged(group: str, name: str) -> dict:
    cfg = _load_raw(group, name)
    cfg.pop(OPEN_KEY, None)
    return cfg


def packaged_default(group: str, name: str, *path: str) -> Any:
    """A value from a packaged config (a fresh copy):
    ``packaged_default("pipelines", "speech", "vad", "threshold")``."""
    node: Any = _packaged(group, name)
    for p in path:
        node = node[p]
    return copy.deepcopy(node)


def setting(
    group: str,
    name: str,
    *path: str,
    ge: float | None = None,
    le: float | None = None,
    gt: float | None = None,
    choices: tuple | None = None,
) -> Any:
    """A dataclass field whose default is read from a packaged YAML (the one place it lives), with its checks."""
    return dataclasses.field(
        default_factory=functools.partial(packaged_default, group, name, *path),
        metadata={"ge": ge, "le": le, "gt": gt, "choices": choices},
    )


def defaults_from(group: str, name: str):
    """:func:`setting` bound to one packaged YAML: ``default = defaults_from("methods/downstream", "paper")``,
    then ``epochs: int = default("finetune", "epochs", ge=0)``."""
    return functools.partial(setting, group, name)


class Section:
    """Mixin for a typed config section: ``cls.from_dict(section)`` checks names, types, ranges and choices.

    Subclasses are dataclasses whose fields come from :func:`setting`; ``SECTION`` names the
    section in messages (``vad.threshold: 2.0 is above 1``).
    """

    SECTION: typing.ClassVar[str] = ""

    @classmethod
    def from_dict(cls, cfg: dict | None = None, **extra):
        cfg = {**(cfg or {}), **extra}
        names = [f.name for f in dataclasses.fields(cls) if f.init]
        for k in cfg:
            if k not in names:
                qualified = [f"{cls.SECTION}.{n}" for n in names]
                raise ConfigError(
                    f"unknown setting '{cls.SECTION}.{k}'" + did_you_mean(f"{cls.SECTION}.{k}", qualified)
                )
        return cls(**cfg)

    @classmethod
    def pick(cls, cfg: dict | None = None):
        """The fields this section declares, read from a mapping that also holds other consumers' keys
        (e.g. a fine-tuning config that carries augmentations); fields it lacks take the YAML's value."""
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        return cls(**{k: v for k, v in (cfg or {}).items() if k in names})

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            key = f"{self.SECTION}.{f.name}"
            value = _check_type(key, value, hints.get(f.name))
            object.__setattr__(self, f.name, value)
            meta = f.metadata
            if meta.get("choices") and value not in meta["choices"]:
                options = ", ".join(str(c) for c in meta["choices"])
                raise ConfigError(f"{key}: {value!r} is not one of {options}")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if meta.get("ge") is not None and value < meta["ge"]:
                    raise ConfigError(f"{key}: {value!r} is below {meta['ge']}")
                if meta.get("gt") is not None and value <= meta["gt"]:
                    raise ConfigError(f"{key}: {value!r} must be above {meta['gt']}")
                if meta.get("le") is not None and value > meta["le"]:
                    raise ConfigError(f"{key}: {value!r} is above {meta['le']}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _check_type(key: str, value: Any, hint: Any) -> Any:
    if hint is None or hint is Any:
        return value
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return value
        simple = [a for a in args if a is not type(None)]
        if len(simple) == 1:
            return _check_type(key, value, simple[0])
        return value  # a genuine union (e.g. bool | str): the consumer decides
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{key}: {value!r} is not a number")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: {value!r} is not an integer")
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: {value!r} is not true/false")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: {value!r} is not a string")
    origin = typing.get_origin(hint)
    if origin in (list, tuple) and not isinstance(value, (list, tuple)):
        raise ConfigError(f"{key}: {value!r} is not a list")
    if origin is dict and not isinstance(value, dict):
        raise ConfigError(f"{key}: {value!r} is not a mapping")
    return value

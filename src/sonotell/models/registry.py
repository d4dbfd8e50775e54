"""One factory for every model (open_clip style): ``create_model(name, config=..., **overrides)``.

A model module registers a builder with ``@register_model("name")``; its configs are small
YAML files ``sonotell/configs/models/<name>/<config>.yaml`` (``paper`` and ``small`` at least)
whose keys are the builder's keyword arguments.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Callable

from sonotell.config import load_config, packaged_config_names, packaged_config_path
from sonotell.errors import ConfigError

_BUILDERS: dict[str, Callable] = {}


def register_model(name: str) -> Callable[[Callable], Callable]:
    """Decorator: register ``builder(**kwargs) -> nn.Module`` under ``name``."""

    def deco(builder: Callable) -> Callable:
        if name in _BUILDERS and _BUILDERS[name] is not builder:
            raise ConfigError(f"model {name!r} registered twice")
        _BUILDERS[name] = builder
        return builder

    return deco


def _import_all() -> None:
    import sonotell.models as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name != "registry":
            importlib.import_module(f"sonotell.models.{mod.name}")


def list_models() -> list[str]:
    _import_all()
    return sorted(_BUILDERS)


def model_configs(name: str) -> list[str]:
    """The packaged config names (sizes) of a registered model, e.g. ``['paper', 'small']``."""
    return packaged_config_names(f"models/{name}")


def create_model(name: str, config: str | None = "small", **overrides):
    """Build model ``name`` from its packaged ``config`` (or a YAML path), then ``overrides``."""
    _import_all()
    if name not in _BUILDERS:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(sorted(_BUILDERS))}")
    kwargs: dict = {}
    if config is not None:
        if not (packaged_config_path(f"models/{name}", config).exists() or str(config).endswith(".yaml")):
            sizes = ", ".join(model_configs(name)) or "none"
            raise ConfigError(f"model {name!r} has no config {config!r}; packaged: {sizes}")
        kwargs = load_config(f"models/{name}", config)
    kwargs.update(overrides)
    return _BUILDERS[name](**kwargs)

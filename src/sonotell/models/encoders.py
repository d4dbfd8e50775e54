"""Build an encoder from a config section ``{name, config, **overrides}`` (recipes nest these).

Example:
    >>> net = build_encoder({"name": "video_r2plus1d", "config": "small"})  # doctest: +SKIP
"""

from __future__ import annotations

from torch import nn

from sonotell.errors import ConfigError


def build_encoder(spec: dict | None) -> nn.Module:
    """An encoder from a config section ``{name, config, **overrides}`` via ``create_model``."""
    from sonotell.models.registry import create_model

    if not spec or "name" not in spec:
        raise ConfigError(f"encoder section needs a 'name' (a registered model), got {spec!r}")
    spec = dict(spec)
    return create_model(spec.pop("name"), spec.pop("config", "small"), **spec)

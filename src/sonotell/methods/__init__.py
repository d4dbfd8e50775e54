"""One recipe per paper. ``EXPERIMENTS`` maps an experiment name to ``module:function``.

Each function has the signature
``run(benchmark, out_dir, config, overrides, seed, progress) -> Path`` (the written table).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from sonotell.errors import ConfigError

EXPERIMENTS = {
    "voice_label": "sonotell.methods.voice_label:run_experiment",
    "deep_cluster": "sonotell.methods.deep_cluster:run_experiment",
    "pretrain_downstream": "sonotell.methods.downstream:run_experiment",
}


def run_experiment(name: str, **kwargs) -> Path:
    if name not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {name!r}; known: {', '.join(sorted(EXPERIMENTS))}")
    module, func = EXPERIMENTS[name].split(":")
    return getattr(importlib.import_module(module), func)(**kwargs)

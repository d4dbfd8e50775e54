"""Determinism: one call seeds Python, NumPy and PyTorch."""

from __future__ import annotations

import os
import random

import numpy as np


def seed_everything(seed: int) -> None:
    """Seed every RNG sonotell uses; torch is seeded only when already imported (keeps start-up fast)."""
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    import sys

    if "torch" in sys.modules:
        import torch

        torch.manual_seed(seed)

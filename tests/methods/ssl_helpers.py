"""Shared inputs of the self-supervised recipe tests: synthetic batches and a tiny benchmark."""

from __future__ import annotations

import torch

TINY_BENCH = [
    "subjects=2",
    "scans_per_subject=1",
    "duration_s=4.0",
    "size=[64,64]",
    "organs_per_scan=[2,2]",
    "mask_stride=5",
]
TEXTS = ["here is the liver", "", "and we can see the kidney", "okay the spleen", "hold it there", "now the liver"]


def synthetic_batch(n: int = 4, seed: int = 0, texts=None) -> dict:
    """A collated batch of ``n`` aligned clips from three scans (one pair shifted in time)."""
    g = torch.Generator().manual_seed(seed)
    scans = ["a", "a", "b", "c", "c", "d"][:n]
    return {
        "frames": torch.rand(n, 8, 64, 64, generator=g),
        "audio": torch.randn(n, 9600, generator=g) * 0.1,
        "text": list(texts or TEXTS[:n]),
        "scan_id": scans,
        "subject_id": [s.upper() for s in scans],
        "time_s": torch.tensor([0.5, 5.5, 1.0, 1.0, 1.5, 2.0][:n]),
    }

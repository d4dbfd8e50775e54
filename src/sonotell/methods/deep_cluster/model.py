"""The deep-clustering network and its training task (PICA with a cluster-size prior)."""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)


PRIORS = ("dirichlet", "negative_entropy")
DEGENERATE_FRACTION = 0.9


class ClusterNet(nn.Module):
    """Encoder + linear cluster head; ``forward`` returns the (N, K) cluster probabilities."""

    def __init__(self, encoder: nn.Module, k: int):
        super().__init__()
        if k < 2:
            raise ValueError(f"clustering needs K >= 2 clusters, got {k}")
        self.encoder = encoder
        self.cluster_head = nn.Linear(encoder.out_features, k)
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.cluster_head(self.encoder(x)), dim=1)


@torch.no_grad()
def assign_clusters(model: ClusterNet, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Hard cluster id of each (H, W) image; warns when one cluster takes nearly everything."""
    model.eval()
    ids = torch.cat(
        [
            model(torch.from_numpy(images[i : i + batch_size])[:, None]).argmax(1)
            for i in range(0, len(images), batch_size)
        ]
    ).numpy()
    counts = np.bincount(ids, minlength=model.k)
    if counts.max() >= DEGENERATE_FRACTION * len(ids) and len(ids) > 1:
        log.warning(
            "degenerate clustering: cluster %d holds %d of %d images", int(counts.argmax()), int(counts.max()), len(ids)
        )
    return ids

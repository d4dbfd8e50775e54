"""Who spoke when: speaker embeddings (resemblyzer, weights in the wheel) of speech spans, clustered.

The clinician is the speaker with the most speech (as in Show from Tell), or the cluster
closest to an enrolled voice sample when one is given.

Example:
    >>> import numpy as np
    >>> emb = np.array([[1, 0], [0.9, 0.1], [0, 1]], np.float32)
    >>> cluster_embeddings(emb, distance_threshold=0.3).tolist()
    [0, 0, 1]
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)
CLINICIAN = "clinician"
_ENCODER = threading.local()


@dataclass(frozen=True)
class DiarizeConfig:
    enabled: bool = True
    distance_threshold: float = 0.35  # cosine distance at which two clusters stop merging
    min_span_s: float = 0.4  # shorter spans get the speaker of their nearest neighbour in time
    enrol_min_similarity: float = 0.6
    turn_pause_s: float = 0.08  # a pause this long inside a speech span may be a change of speaker (0: never split)

    @classmethod
    def from_dict(cls, cfg: dict | None) -> "DiarizeConfig":
        return cls(**(cfg or {}))


def voice_encoder():
    """resemblyzer's VoiceEncoder on CPU, loaded once per thread from its packaged weights."""
    if not hasattr(_ENCODER, "model"):
        from resemblyzer import VoiceEncoder

        _ENCODER.model = VoiceEncoder(device="cpu", verbose=False)
    return _ENCODER.model


def embed(wav16k: np.ndarray) -> np.ndarray:
    """A unit-norm 256-d speaker embedding of a 16 kHz span."""
    return np.asarray(voice_encoder().embed_utterance(wav16k.astype(np.float32)), np.float32)


def cluster_embeddings(embeddings: np.ndarray, distance_threshold: float) -> np.ndarray:
    """Average-linkage agglomerative clustering on cosine distance; cluster ids ordered by first appearance."""
    n = len(embeddings)
    if n == 0:
        return np.zeros(0, int)
    if n == 1:
        return np.zeros(1, int)
    from sklearn.cluster import AgglomerativeClustering

    raw = AgglomerativeClustering(n_clusters=None, distance_threshold=distance_threshold, metric="cosine", linkage="average").fit_predict(embeddings)
    order = {c: i for i, c in enumerate(dict.fromkeys(raw.tolist()))}
    return np.array([order[c] for c in raw], int)


def assign_speakers(
    spans: list[tuple[float, float]],
    embeddings: np.ndarray,
    config: DiarizeConfig = DiarizeConfig(),
    enrolment: np.ndarray | None = None,
) -> list[str]:
    """A speaker name per span: ``clinician`` for the chosen cluster, ``speaker_<k>`` for the others."""
    if not spans:
        return []
    long_idx = [i for i, (s, e) in enumerate(spans) if e - s >= config.min_span_s] or list(range(len(spans)))
    ids = np.full(len(spans), -1)
    ids[long_idx] = cluster_embeddings(embeddings[long_idx], config.distance_threshold)
    for i in range(len(spans)):  # too short to embed reliably: borrow the nearest long span's speaker
        if ids[i] < 0:
            mid = sum(spans[i]) / 2
            j = min(long_idx, key=lambda k: abs(sum(spans[k]) / 2 - mid))
            ids[i] = ids[j]
    clusters = sorted(set(ids.tolist()))
    if enrolment is not None:
        sims = {c: float(np.dot(embeddings[ids == c].mean(0), enrolment) / (np.linalg.norm(embeddings[ids == c].mean(0)) * np.linalg.norm(enrolment) + 1e-9)) for c in clusters}
        clinician = max(sims, key=sims.get)
        if sims[clinician] < config.enrol_min_similarity:
            log.warning("no speaker resembles the enrolled clinician (best cosine %.2f); nobody kept", sims[clinician])
            clinician = None
    else:
        speech = {c: sum(e - s for (s, e), k in zip(spans, ids) if k == c) for c in clusters}
        clinician = max(speech, key=lambda c: (speech[c], -c))
    names, k = {}, 0
    for c in clusters:
        if c == clinician:
            names[c] = CLINICIAN
        else:
            names[c] = f"speaker_{k}"
            k += 1
    return [names[c] for c in ids]

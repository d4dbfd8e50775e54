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

from sonotell.config import Section, setting

log = logging.getLogger(__name__)
CLINICIAN = "clinician"
_ENCODER = threading.local()


def _d(key: str, **checks):
    return setting("pipelines", "speech", "diarize", key, **checks)


@dataclass(frozen=True)
class DiarizeConfig(Section):
    """Diarization settings; defaults (and what each means) in ``configs/pipelines/speech.yaml``."""

    SECTION = "diarize"
    enabled: bool = _d("enabled")
    keep: str = _d("keep", choices=("clinician", "all"))
    enrol_wav: str | None = _d("enrol_wav")
    distance_threshold: float = _d("distance_threshold", ge=0.0, le=2.0)
    min_span_s: float = _d("min_span_s", ge=0.0)
    enrol_min_similarity: float = _d("enrol_min_similarity", ge=-1.0, le=1.0)
    turn_pause_s: float = _d("turn_pause_s", ge=0.0)
    mode: str = _d("mode", choices=("windows", "turns"))
    window_s: float = _d("window_s", gt=0.0)
    hop_s: float = _d("hop_s", gt=0.0)
    min_turn_s: float = _d("min_turn_s", ge=0.0)
    max_cluster_windows: int = _d("max_cluster_windows", ge=2)
    window_method: str = _d("window_method", choices=("dominant", "cluster"))
    other_below: float = _d("other_below", ge=0.0)


def voice_encoder():
    """resemblyzer's VoiceEncoder on CPU, loaded once per thread from its packaged weights."""
    if not hasattr(_ENCODER, "model"):
        from resemblyzer import VoiceEncoder

        _ENCODER.model = VoiceEncoder(device="cpu", verbose=False)
    return _ENCODER.model


def embed(wav16k: np.ndarray) -> np.ndarray:
    """A unit-norm 256-d speaker embedding of a 16 kHz span."""
    return np.asarray(voice_encoder().embed_utterance(wav16k.astype(np.float32)), np.float32)


def window_embeddings(wav16k: np.ndarray, window_s: float = 0.8, hop_s: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Speaker embeddings of sliding windows over a 16 kHz span.

    Returns ``(times (n, 2) in s from the span start, unit vectors (n, 256))``.

    A span shorter than one window is one window; the last window ends at the span's end, so
    every sample is covered.
    """
    import torch
    from resemblyzer import audio as rz_audio

    frame_s = 0.01  # resemblyzer's mel hop (10 ms)
    mel = rz_audio.wav_to_mel_spectrogram(wav16k.astype(np.float32))
    n, win, hop = len(mel), max(1, round(window_s / frame_s)), max(1, round(hop_s / frame_s))
    starts = list(range(0, max(1, n - win + 1), hop))
    if starts[-1] + win < n:
        starts.append(n - win)
    batch = np.stack([mel[a : a + win] for a in starts]) if n >= win else mel[None]
    with torch.no_grad():
        emb = voice_encoder()(torch.from_numpy(np.ascontiguousarray(batch))).numpy()
    times = np.array([(a * frame_s, min(n, a + win) * frame_s) for a in starts], np.float64)
    times[-1, 1] = max(times[-1, 1], len(wav16k) / 16000)
    return times, emb.astype(np.float32)


def windows_to_turns(
    window_times: np.ndarray, labels: list[int], span: tuple[float, float], min_turn_s: float = 0.3
) -> list[tuple[float, float, int]]:
    """Re-segment a span at speaker changes: each window owns the time nearest its centre; runs of one label are turns.

    A turn shorter than ``min_turn_s`` joins the longer of its neighbours (a lone window
    is more likely a noisy embedding than a speaker change).

    Example:
        >>> t = np.array([[0.0, 0.8], [0.2, 1.0], [0.4, 1.2], [0.6, 1.4]])
        >>> windows_to_turns(t, [0, 0, 1, 1], (0.0, 1.4))
        [(0.0, 0.7, 0), (0.7, 1.4, 1)]
    """
    centres = window_times.mean(1)
    bounds = [span[0], *((centres[:-1] + centres[1:]) / 2).tolist(), span[1]]
    turns: list[list] = []
    for k, lab in enumerate(labels):
        if turns and turns[-1][2] == lab:
            turns[-1][1] = bounds[k + 1]
        else:
            turns.append([bounds[k], bounds[k + 1], lab])
    while len(turns) > 1:
        short = [i for i, (a, b, _) in enumerate(turns) if b - a < min_turn_s]
        if not short:
            break
        i = min(short, key=lambda i: (turns[i][1] - turns[i][0], i))
        neighbours = [j for j in (i - 1, i + 1) if 0 <= j < len(turns)]
        j = max(neighbours, key=lambda j: (turns[j][1] - turns[j][0], -j))
        a, b = min(turns[i][0], turns[j][0]), max(turns[i][1], turns[j][1])
        turns[min(i, j)] = [a, b, turns[j][2]]
        del turns[max(i, j)]
        merged = [turns[0]]  # neighbours that now share a label become one turn
        for t in turns[1:]:
            if t[2] == merged[-1][2]:
                merged[-1][1] = t[1]
            else:
                merged.append(t)
        turns = merged
    return [(round(a, 6), round(b, 6), int(lab)) for a, b, lab in turns]


def cluster_windows(embeddings: np.ndarray, distance_threshold: float, max_windows: int = 2000) -> np.ndarray:
    """``cluster_embeddings`` for many windows.

    Beyond ``max_windows``, an even subsample is clustered and every window goes to the nearest
    centroid (bounded memory on long files).
    """
    n = len(embeddings)
    if n <= max_windows:
        return cluster_embeddings(embeddings, distance_threshold)
    pick = np.linspace(0, n - 1, max_windows).round().astype(int)
    ids = cluster_embeddings(embeddings[pick], distance_threshold)
    centroids = np.stack([embeddings[pick][ids == c].mean(0) for c in range(ids.max() + 1)])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True) + 1e-9
    return np.argmax(embeddings @ centroids.T, axis=1)


def dominant_speaker(
    embeddings: np.ndarray, other_below: float = 0.07, initial: np.ndarray | None = None, iterations: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Which windows belong to the main voice: ``(mask, centroid)``.

    The centroid starts at the mean of all windows (or an enrolled voice), then is refitted
    on the windows whose cosine similarity to it is at least the median similarity minus
    ``other_below``. A second speaker with a small share of the speech (a patient's "is that
    cold?") falls below; a clustering threshold on short noisy windows splits the clinician
    instead (measured in docs/speech.md).

    Example:
        >>> e = np.array([[1, 0], [0.99, 0.14], [0.98, 0.2], [0.6, 0.8]], np.float32)
        >>> dominant_speaker(e / np.linalg.norm(e, axis=1, keepdims=True), 0.1)[0].tolist()
        [True, True, True, False]
    """

    def unit(v):
        return v / (np.linalg.norm(v) + 1e-9)

    centroid = unit(embeddings.mean(0) if initial is None else np.asarray(initial, np.float32))
    keep = np.ones(len(embeddings), bool)
    for _ in range(iterations):
        sims = embeddings @ centroid
        keep = sims >= np.median(sims) - other_below
        centroid = unit(embeddings[keep].mean(0))
    sims = embeddings @ centroid
    return sims >= np.median(sims) - other_below, centroid


def name_clusters(
    ids: np.ndarray,
    durations: np.ndarray,
    embeddings: np.ndarray,
    config: DiarizeConfig | None = None,
    enrolment: np.ndarray | None = None,
) -> dict[int, str]:
    """``clinician`` for the cluster with most speech (or nearest the enrolled voice).

    The others are ``speaker_<k>``.
    """
    config = config or DiarizeConfig()
    clusters = sorted(set(np.asarray(ids).tolist()))
    if enrolment is not None:
        sims = {}
        for c in clusters:
            m = embeddings[ids == c].mean(0)
            sims[c] = float(np.dot(m, enrolment) / (np.linalg.norm(m) * np.linalg.norm(enrolment) + 1e-9))
        clinician = max(sims, key=sims.get)
        if sims[clinician] < config.enrol_min_similarity:
            log.warning("no speaker resembles the enrolled clinician (best cosine %.2f); nobody kept", sims[clinician])
            clinician = None
    else:
        speech = {c: float(np.sum(durations[ids == c])) for c in clusters}
        clinician = max(speech, key=lambda c: (speech[c], -c))
    names, k = {}, 0
    for c in clusters:
        if c == clinician:
            names[c] = CLINICIAN
        else:
            names[c] = f"speaker_{k}"
            k += 1
    return names


def cluster_embeddings(embeddings: np.ndarray, distance_threshold: float) -> np.ndarray:
    """Average-linkage agglomerative clustering on cosine distance; cluster ids ordered by first appearance."""
    n = len(embeddings)
    if n == 0:
        return np.zeros(0, int)
    if n == 1:
        return np.zeros(1, int)
    from sklearn.cluster import AgglomerativeClustering

    raw = AgglomerativeClustering(
        n_clusters=None, distance_threshold=distance_threshold, metric="cosine", linkage="average"
    ).fit_predict(embeddings)
    order = {c: i for i, c in enumerate(dict.fromkeys(raw.tolist()))}
    return np.array([order[c] for c in raw], int)


def assign_speakers(
    spans: list[tuple[float, float]],
    embeddings: np.ndarray,
    config: DiarizeConfig | None = None,
    enrolment: np.ndarray | None = None,
) -> list[str]:
    """A speaker name per span: ``clinician`` for the chosen cluster, ``speaker_<k>`` for the others."""
    if not spans:
        return []
    config = config or DiarizeConfig()
    long_idx = [i for i, (s, e) in enumerate(spans) if e - s >= config.min_span_s] or list(range(len(spans)))
    ids = np.full(len(spans), -1)
    ids[long_idx] = cluster_embeddings(embeddings[long_idx], config.distance_threshold)
    for i in range(len(spans)):  # too short to embed reliably: borrow the nearest long span's speaker
        if ids[i] < 0:
            mid = sum(spans[i]) / 2
            j = min(long_idx, key=lambda k: abs(sum(spans[k]) / 2 - mid))
            ids[i] = ids[j]
    names = name_clusters(ids, np.array([e - s for s, e in spans]), embeddings, config, enrolment)
    return [names[c] for c in ids]


def pause_splits(
    audio: np.ndarray,
    sample_rate_hz: int,
    min_pause_s: float = 0.08,
    *,
    threshold_db: float = -30.0,
    min_part_s: float = 0.4,
    frame_s: float = 0.01,
) -> list[int]:
    """Sample indices at the middle of pauses (>= ``min_pause_s`` quieter than ``threshold_db`` below the peak).

    Turns between two speakers are often closer than a VAD's minimum silence; these pauses
    are where a speaker may change. Parts shorter than ``min_part_s`` are not split off.

    Example:
        >>> x = np.ones(16000, np.float32); x[7000:9000] = 0
        >>> pause_splits(x, 16000, min_part_s=0.2)
        [8000]
    """
    hop = int(frame_s * sample_rate_hz)
    n = len(audio) // hop
    if n < 3 or min_pause_s <= 0:
        return []
    level = 10 * np.log10(np.mean(audio[: n * hop].astype(np.float64).reshape(n, hop) ** 2, axis=1) + 1e-12)
    quiet = level < level.max() + threshold_db
    cuts, run = [], 0
    for i, q in enumerate(list(quiet) + [False]):
        if q:
            run += 1
            continue
        if run * frame_s >= min_pause_s:
            cuts.append((i - run // 2) * hop if run % 2 == 0 else (i - run // 2 - 1) * hop + hop // 2)
        run = 0
    min_part = int(min_part_s * sample_rate_hz)
    kept, last = [], 0
    for c in cuts:
        if c - last >= min_part and len(audio) - c >= min_part:
            kept.append(c)
            last = c
    return kept

"""Who spoke when: speaker embeddings (resemblyzer's encoder, weights from its wheel, run in numpy) of speech
spans, clustered.

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
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sonotell.config import Section, setting
from sonotell.errors import ConfigError

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


# resemblyzer's mel front end and network sizes (resemblyzer/hparams.py)
MEL_N_FFT, MEL_HOP, MEL_CHANNELS, PARTIAL_FRAMES, HIDDEN = 400, 160, 40, 160, 256


def _resemblyzer_weights_path() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("resemblyzer")  # found, not imported: importing it imports torch
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("diarization needs resemblyzer (its voice encoder weights): run `bash scripts/install.sh`")
    return Path(list(spec.submodule_search_locations)[0]) / "pretrained.pt"


def voice_encoder_weights(cache_dir: str | Path | None = None) -> dict[str, np.ndarray]:
    """resemblyzer's voice encoder weights as float32 arrays, converted once into ``$SONOTELL_CACHE``.

    The first use reads ``resemblyzer/pretrained.pt`` with ``torch.load(weights_only=True)`` and keeps the
    network's tensors as ``voice-encoder.npz`` (stamped with the source's size and mtime); later processes load
    the npz (no pickle, no torch: ~220 MB less resident memory in a labelling process, issue 20).
    """
    src = _resemblyzer_weights_path()
    folder = Path(cache_dir or os.environ.get("SONOTELL_CACHE", "~/.cache/sonotell")).expanduser()
    path = folder / "voice-encoder.npz"
    stat = src.stat()
    stamp = f"{stat.st_size} {stat.st_mtime_ns}"
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            if str(z["stamp"]) == stamp:
                return {k: z[k] for k in z.files if k != "stamp"}
    import torch

    state = torch.load(src, map_location="cpu", weights_only=True)["model_state"]
    weights = {
        k.replace(".", "_"): v.numpy().astype(np.float32) for k, v in state.items() if k.startswith(("lstm", "linear"))
    }
    from sonotell.files import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, stamp=np.array(stamp), **weights)
    return weights


def mel_filters(sample_rate_hz: int = 16000, n_fft: int = MEL_N_FFT, n_mels: int = MEL_CHANNELS) -> np.ndarray:
    """Slaney-style mel filter bank ``(n_mels, n_fft // 2 + 1)``, as ``librosa.filters.mel`` makes it by default."""

    def hz_to_mel(f):
        f = np.asarray(f, np.float64)
        return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-9) / 1000.0) / (np.log(6.4) / 27.0), f * 3 / 200)

    def mel_to_hz(m):
        return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), m * 200 / 3)

    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate_hz)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate_hz / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper)) * (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]
    return weights.astype(np.float32)


_MEL = mel_filters()
_HANN = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(MEL_N_FFT) / MEL_N_FFT)).astype(np.float32)  # periodic


def mel_spectrogram(wav16k: np.ndarray) -> np.ndarray:
    """resemblyzer's (non-log) mel spectrogram ``(frames, 40)`` of 16 kHz audio: 25 ms Hann windows every 10 ms,
    centred (zero padding), power, Slaney mel; in numpy (resemblyzer calls librosa)."""
    x = np.pad(np.asarray(wav16k, np.float32), MEL_N_FFT // 2)
    n = 1 + (len(x) - MEL_N_FFT) // MEL_HOP
    frames = np.lib.stride_tricks.as_strided(x, (n, MEL_N_FFT), (x.strides[0] * MEL_HOP, x.strides[0]))
    power = np.abs(np.fft.rfft(frames * _HANN, axis=1)) ** 2
    return (power.astype(np.float32) @ _MEL.T).astype(np.float32)


class VoiceEncoder:
    """resemblyzer's speaker encoder (3-layer LSTM, 256 units, linear + ReLU, unit norm) in numpy."""

    def __init__(self, weights: dict[str, np.ndarray]):
        self.layers = [
            (
                weights[f"lstm_weight_ih_l{k}"].T.copy(),
                weights[f"lstm_weight_hh_l{k}"].T.copy(),
                weights[f"lstm_bias_ih_l{k}"] + weights[f"lstm_bias_hh_l{k}"],
            )
            for k in range(3)
        ]
        self.linear_w, self.linear_b = weights["linear_weight"].T.copy(), weights["linear_bias"]

    def __call__(self, mels: np.ndarray) -> np.ndarray:
        """Unit embeddings ``(batch, 256)`` of mel batches ``(batch, frames, 40)``."""
        from threadpoolctl import threadpool_limits

        # one BLAS thread: these small products gain nothing from more, and on a busy machine OpenBLAS's
        # waiting threads took 10x the CPU time (measured: 3.8 s vs 0.4 s CPU for 80 windows, issue 20)
        with threadpool_limits(limits=1, user_api="blas"):
            return self._forward(mels)

    def _forward(self, mels: np.ndarray) -> np.ndarray:
        x = np.asarray(mels, np.float32)
        batch, steps = x.shape[:2]
        h = np.zeros((batch, HIDDEN), np.float32)
        for k, (w_ih, w_hh, bias) in enumerate(self.layers):
            gates_in = x @ w_ih + bias  # (batch, steps, 4 * hidden): gate order i, f, g, o (torch.nn.LSTM)
            h = np.zeros((batch, HIDDEN), np.float32)
            c = np.zeros((batch, HIDDEN), np.float32)
            out = np.empty((batch, steps, HIDDEN), np.float32) if k < len(self.layers) - 1 else None
            for t in range(steps):
                g = gates_in[:, t] + h @ w_hh
                i, f, o = (0.5 * (1.0 + np.tanh(0.5 * g[:, j * HIDDEN : (j + 1) * HIDDEN])) for j in (0, 1, 3))
                c = f * c + i * np.tanh(g[:, 2 * HIDDEN : 3 * HIDDEN])
                h = o * np.tanh(c)
                if out is not None:
                    out[:, t] = h
            x = out
        emb = np.maximum(h @ self.linear_w + self.linear_b, 0.0)
        return (emb / (np.linalg.norm(emb, axis=1, keepdims=True) + 1e-12)).astype(np.float32)

    def embed_utterance(self, wav16k: np.ndarray, rate: float = 1.3, min_coverage: float = 0.75) -> np.ndarray:
        """resemblyzer's ``embed_utterance``: the unit mean of 1.6 s partial embeddings at ``rate`` per second."""
        n_samples = len(wav16k)
        n_frames = int(np.ceil((n_samples + 1) / MEL_HOP))
        step = int(np.round((16000 / rate) / MEL_HOP))
        starts = list(range(0, max(1, n_frames - PARTIAL_FRAMES + step + 1), step))
        last = starts[-1] * MEL_HOP
        if (n_samples - last) / (PARTIAL_FRAMES * MEL_HOP) < min_coverage and len(starts) > 1:
            starts = starts[:-1]
        end = (starts[-1] + PARTIAL_FRAMES) * MEL_HOP
        wav = np.pad(wav16k, (0, max(0, end - n_samples))) if end >= n_samples else wav16k
        mel = mel_spectrogram(wav)
        partial = self(np.stack([mel[a : a + PARTIAL_FRAMES] for a in starts]))
        raw = partial.mean(0)
        return raw / np.linalg.norm(raw)


def voice_encoder() -> VoiceEncoder:
    """The speaker encoder, loaded once per thread from the converted resemblyzer weights."""
    if not hasattr(_ENCODER, "model"):
        _ENCODER.model = VoiceEncoder(voice_encoder_weights())
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
    frame_s = 0.01  # the mel hop (10 ms)
    mel = mel_spectrogram(wav16k)
    n, win, hop = len(mel), max(1, round(window_s / frame_s)), max(1, round(hop_s / frame_s))
    starts = list(range(0, max(1, n - win + 1), hop))
    if starts[-1] + win < n:
        starts.append(n - win)
    batch = np.stack([mel[a : a + win] for a in starts]) if n >= win else mel[None]
    emb = voice_encoder()(batch)
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

"""Exact word times: re-align recognised words to the audio with pocketsphinx's alignment mode.

Whisper's word times come from its attention and drift (a median 0.6 s early after silence on real
voices, issue 11). The whisperX idea with an acoustic model that ships in a wheel: within each speech
span, the recogniser's words are force-aligned by pocketsphinx's US English HMMs, and each word takes
the aligned start and end. Where alignment fails (a word that cannot be pronounced, a decoder that
does not reach the end, an aligned time too far from the recogniser's) the span keeps the
recogniser's times and its words are flagged ``aligned=False``.

Example:
    >>> aligner = ForcedAligner()  # doctest: +SKIP
    >>> aligner.align(span_audio, 16000, words)[0]  # doctest: +SKIP
    Word(text='effusion', start_s=0.41, end_s=0.93, confidence=0.9, speaker=None, aligned=True)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np

from sonotell.speech.keywords import split_into_known
from sonotell.speech.lexicon import Lexicon, normalise
from sonotell.types import Word

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WordAlignConfig:
    """``enabled``: re-align words; ``max_shift_s``: an aligned start further than this from the
    recogniser's is not trusted (that word keeps the recogniser's time); ``pad_s``: silence added
    around the span so the first and last word can start and end at its edges; a span the decoder
    cannot get through is cut at its longest pause between words (at least ``min_cut_pause_s``) and
    each half aligned in its own audio (``cut_margin_s`` kept before the first and after the last word)."""

    enabled: bool = True
    max_shift_s: float = 1.0
    pad_s: float = 0.1
    dither: float = 1e-3
    cut_margin_s: float = 0.5
    min_cut_pause_s: float = 0.15

    @classmethod
    def from_dict(cls, cfg: dict | None) -> "WordAlignConfig":
        return cls(**(cfg or {}))


class ForcedAligner:
    """pocketsphinx in alignment mode over the bundled CMU dictionary (plus the lexicon's pronunciations)."""

    FRAME_S = 0.01
    sample_rate_hz = 16000

    def __init__(
        self,
        lexicon: Lexicon | None = None,
        config: WordAlignConfig | None = None,
        seed: int = 0,
        pronunciations: dict[str, str] | None = None,
    ):
        import pocketsphinx

        from sonotell.speech.transcribe import cmudict

        self.config = config or WordAlignConfig()
        self.seed = seed
        self.decoder = pocketsphinx.Decoder(lm=None, loglevel="FATAL")
        self._wide = None  # built on the first failure: much wider beams (a hoarse voice, a long span)
        self.cmu = cmudict()
        self.extra = {**(pronunciations or {}), **(lexicon.pronunciations if lexicon is not None else {})}
        self._added: set[str] = set()
        self.stats = {"words": 0, "aligned": 0}

    def _pronounceable(self, token: str) -> bool:
        if token in self.cmu or token in self._added:
            return True
        phones = self.extra.get(token)
        if phones is None:
            parts = split_into_known(token, lambda w: w in self.cmu or w in self.extra)
            if not parts:
                return False
            phones = " ".join(self.extra.get(p) or self.cmu[p][0] for p in parts)
        for d in filter(None, (self.decoder, self._wide)):
            d.add_word(token, phones, True)
        self._added.add(token)
        return True

    def align(self, audio: np.ndarray, sample_rate_hz: int, words: list[Word]) -> list[Word]:
        """``words`` (times relative to ``audio``) with aligned times and ``aligned`` set; same order and count.

        A word that cannot be pronounced (not in the dictionary, not made of known words) is left out of
        the alignment text and keeps the recogniser's time; so does a word whose aligned start is more
        than ``max_shift_s`` from the recogniser's. Where the decoder fails, every word keeps its time.
        """
        if not words:
            return words
        self.stats["words"] += len(words)
        tokens = [normalise(w.text).split() for w in words]
        usable = [k for k, ts in enumerate(tokens) if ts and all(self._pronounceable(t) for t in ts)]
        out = [replace(w, aligned=False) for w in words]
        for k, (a, b) in self._align_split(audio, sample_rate_hz, words, tokens, usable, depth=2).items():
            if abs(a - words[k].start_s) <= self.config.max_shift_s:
                out[k] = replace(words[k], start_s=round(a, 3), end_s=round(b, 3), aligned=True)
        self.stats["aligned"] += sum(bool(w.aligned) for w in out)
        return out

    def _align_split(
        self, audio, sr: int, words: list[Word], tokens: list[list[str]], usable: list[int], depth: int
    ) -> dict[int, tuple[float, float]]:
        """Aligned (start, end) by word index; where the decoder fails on the whole, the words are cut in two
        at the longest pause between the recogniser's words (the cut in the middle of the pause) and each
        half is aligned inside its own stretch of audio, ``depth`` times at most."""
        if not usable:
            return {}
        got = self._align(audio, sr, [tokens[k] for k in usable])
        if got is not None:
            return dict(zip(usable, got))
        if depth <= 0 or len(usable) < 4:
            return {}
        gaps = [words[usable[i + 1]].start_s - words[usable[i]].end_s for i in range(len(usable) - 1)]
        i = 1 + int(np.argmax(gaps[1:-1]))  # never cut off a lone first or last word
        if gaps[i] < self.config.min_cut_pause_s:  # no pause: a cut would split a word from its sound
            return {}
        middle = (words[usable[i]].end_s + words[usable[i + 1]].start_s) / 2
        out: dict[int, tuple[float, float]] = {}
        margin = self.config.cut_margin_s
        for part, a, b in (
            (usable[: i + 1], words[usable[0]].start_s - margin, middle),
            (usable[i + 1 :], middle, words[usable[-1]].end_s + margin),
        ):
            a, b = max(0.0, a), min(len(audio) / sr, b)
            if b - a < 0.2:
                continue
            piece = audio[int(a * sr) : int(b * sr)]
            shifted = [replace(w, start_s=w.start_s - a, end_s=w.end_s - a) for w in words]
            for k, (s, e) in self._align_split(piece, sr, shifted, tokens, part, depth - 1).items():
                out[k] = (s + a, e + a)
        return out

    @staticmethod
    def _decode(d, pcm: bytes, flat: list[str]):
        """The word segments of ``flat`` aligned to ``pcm``, or None when the decoder does not get through.

        The decoder's features are set up anew first: pocketsphinx carries its cepstral-mean estimate
        from one utterance to the next, so an aligned time moved by a frame (10 ms) with whatever the same
        worker had aligned before (the order engines hand scans to workers, issue 25).
        """
        d.reinit_feat()
        try:
            d.set_align_text(" ".join(flat))
            d.start_utt()
            d.process_raw(pcm, full_utt=True)
            d.end_utt()
            segs = [s for s in d.seg() or [] if not s.word.startswith(("<", "[", "+"))]
        except RuntimeError as e:
            log.debug("alignment failed: %s", e)
            return None
        if len(segs) != len(flat) or any(s.word.split("(")[0] != t for s, t in zip(segs, flat)):
            return None
        return segs

    def _align(
        self, audio: np.ndarray, sample_rate_hz: int, tokens: list[list[str]]
    ) -> list[tuple[float, float]] | None:
        from sonotell.io.audio import resample

        cfg = self.config
        flat = [t for ts in tokens for t in ts]
        x = resample(np.asarray(audio, np.float32), sample_rate_hz, self.sample_rate_hz)
        pad = np.zeros(int(cfg.pad_s * self.sample_rate_hz), np.float32)
        x = np.concatenate([pad, x, pad])
        if cfg.dither > 0:  # fixed seed: the same audio always aligns the same way
            x = x + np.random.default_rng(self.seed).normal(0.0, cfg.dither, len(x)).astype(np.float32)
        pcm = (np.clip(x, -1.0, 1.0) * 32767).astype(np.int16).tobytes()
        segs = self._decode(self.decoder, pcm, flat)
        if segs is None:
            if self._wide is None:
                import pocketsphinx

                self._wide = pocketsphinx.Decoder(lm=None, loglevel="FATAL", beam=1e-120, wbeam=1e-100, pbeam=1e-120)
                for word in self._added:
                    self._wide.add_word(word, self.decoder.lookup_word(word), True)
            segs = self._decode(self._wide, pcm, flat)
        if segs is None:
            return None
        times, k = [], 0
        for ts in tokens:
            first, last = segs[k], segs[k + len(ts) - 1]
            k += len(ts)
            a = first.start_frame * self.FRAME_S - cfg.pad_s
            b = (last.end_frame + 1) * self.FRAME_S - cfg.pad_s
            times.append((max(0.0, a), max(0.0, b)))
        return times

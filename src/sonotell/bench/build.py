"""``build_benchmark``: one driver for every benchmark — config, resume, atomic writes, progress.

A benchmark module (``synthetic``, ``pocus``, ``abdominal``) provides::

    plan(cfg, seed) -> list[spec]                  # one dict per scan, with "scan_id"
    classes_of(cfg) -> {"classes", "label_names", "mask_classes", "task_classes"?}
    build_scan(spec, root, cfg, seed, voices, tts) -> (manifest_row, truth)

Each finished scan leaves ``.build/rows/<scan_id>.json``; a rerun with the same config and
seed skips those scans, so an interrupted build resumes where it stopped. Every scan draws
its randomness from (seed, scan id), so a resumed build gives the same bytes as an
uninterrupted one. ``manifest.csv`` and ``bench.json`` are written last.

Example:
    >>> root = build_benchmark("synthetic", "bench_out/synthetic", seed=0)  # doctest: +SKIP
    >>> load_benchmark(root).name  # doctest: +SKIP
    'synthetic'
"""

from __future__ import annotations

import importlib
import json
import logging
import time
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np

from sonotell.config import load_config
from sonotell.data.format import load_benchmark, validate_truth, write_bench_json, write_manifest
from sonotell.data.tts import EspeakTTS, Voice, split_voices, voice_bank
from sonotell.engine import EngineSpec, open_engine
from sonotell.errors import ConfigError
from sonotell.files import atomic_path, write_json
from sonotell.progress import Progress, silent

log = logging.getLogger(__name__)

BENCHMARKS = {
    "synthetic": "sonotell.bench.synthetic",
    "pocus": "sonotell.bench.pocus",
    "abdominal": "sonotell.bench.abdominal",
    "covid_blues": "sonotell.bench.covid_blues",
}


def list_benchmarks() -> list[str]:
    return sorted(BENCHMARKS)


def benchmark_config(name: str, config: str | Path | dict | None = None, overrides: list[str] | None = None) -> dict:
    """The packaged ``configs/bench/<name>.yaml`` (or a YAML path / dict) with ``key=value`` overrides."""
    from sonotell.config import apply_overrides

    if name not in BENCHMARKS:
        raise ConfigError(f"unknown benchmark {name!r}; known: {', '.join(list_benchmarks())}")
    if isinstance(config, dict):
        return apply_overrides(config, overrides or [])
    return load_config("bench", config if config is not None else name, overrides)


def build_benchmark(
    name: str,
    out_dir: str | Path,
    config: str | Path | dict | None = None,
    overrides: list[str] | None = None,
    seed: int | None = None,
    progress: Progress | None = None,
    engine: EngineSpec | None = None,
) -> Path:
    """Build (or resume) benchmark ``name`` into ``out_dir``; returns the folder.

    Args:
        name: ``synthetic``, ``pocus`` or ``abdominal``.
        out_dir: the benchmark folder to write.
        config: a packaged config name, a YAML path, or a dict (default: the benchmark's own).
        overrides: dotted ``key=value`` strings, e.g. ``["subjects=2", "audio.snr_db=[5,5]"]``.
        seed: overrides the config's ``seed``.
        progress: callback ``(done, total, message)``.
        engine: where the per-scan tasks run (default: in this process); each task writes its
            scan's media, truth and row itself, so a build resumes on either engine.
    """
    progress = progress or silent
    cfg = benchmark_config(name, config, overrides)
    if seed is not None:
        cfg["seed"] = int(seed)
    seed = int(cfg.get("seed", 0))
    module = importlib.import_module(BENCHMARKS[name])
    root = Path(out_dir)
    state = root / ".build"
    stamp = {"name": name, "config": cfg, "seed": seed}
    stamp_path = state / "config.json"
    if stamp_path.exists():
        old = json.loads(stamp_path.read_text())
        if old != json.loads(json.dumps(stamp)):
            raise ConfigError(
                f"{root}: holds a build of {old.get('name')!r} with another config or seed; "
                "use a new --out folder or delete it"
            )
    else:
        write_json(stamp_path, stamp)

    specs = module.plan(cfg, seed)
    ids = [s["scan_id"] for s in specs]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"benchmark {name}: the plan has duplicate scan ids")
    by_id: dict[str, dict] = {}
    todo = []
    for spec in specs:
        row_path = state / "rows" / f"{spec['scan_id']}.json"
        if row_path.exists():
            by_id[spec["scan_id"]] = json.loads(row_path.read_text())
        else:
            todo.append(spec)
    progress(len(by_id), len(specs), f"{len(by_id)} done before" if by_id else "")
    t0 = time.perf_counter()
    failures = []
    with open_engine(engine or EngineSpec("local", workers=1)) as runner:
        setup_args = (name, str(root.absolute()), cfg, seed)
        for spec, row, error in runner.map(_build_one, todo, setup=_make_builder, setup_args=setup_args):
            if error is None:
                by_id[spec["scan_id"]] = row
            else:
                failures.append(f"{spec['scan_id']}: {error}")
            progress(len(by_id) + len(failures), len(specs), spec["scan_id"])
    if failures:
        raise ConfigError(
            f"benchmark {name}: {len(failures)} scan(s) failed (a rerun resumes the rest); first: {failures[0]}"
        )
    rows = [by_id[i] for i in ids]
    n_built = len(todo)
    names = module.classes_of(cfg)
    write_manifest(root / "manifest.csv", rows)
    write_bench_json(root, name=name, config=cfg, seed=seed, **names)
    log.info(
        "benchmark %s: %d scans (%d built now) in %.1f s -> %s",
        name,
        len(rows),
        n_built,
        time.perf_counter() - t0,
        root,
    )
    load_benchmark(root)  # validate what we wrote
    return root


def _make_builder(name: str, root: str, cfg: dict, seed: int) -> dict:
    """Per worker process, once: the benchmark module, its voices and the TTS engine."""
    return {
        "module": importlib.import_module(BENCHMARKS[name]),
        "root": Path(root),
        "cfg": cfg,
        "seed": seed,
        "voices": make_voices(cfg, seed),
        "tts": EspeakTTS(),
    }


def _build_one(spec: dict, st: dict) -> dict:
    """One engine task: build a scan, write its truth then its row (the row marks it finished)."""
    root = st["root"]
    row, truth = st["module"].build_scan(spec, root, st["cfg"], st["seed"], st["voices"], st["tts"])
    truth_path = root / "truth" / f"{spec['scan_id']}.json"
    validate_truth(truth, truth_path)
    write_json(truth_path, truth)
    write_json(root / ".build" / "rows" / f"{spec['scan_id']}.json", row)
    return row


def make_voices(cfg: dict, seed: int) -> dict[str, list[Voice]]:
    """The voice bank split into disjoint train / test voices (no timbre in both)."""
    vcfg = cfg["voices"]
    train, test = split_voices(voice_bank(int(vcfg["bank_size"]), seed=seed), float(vcfg["test_fraction"]))
    if not train or not test:
        raise ConfigError(f"voices.bank_size={vcfg['bank_size']} is too small to split into train and test voices")
    return {"train": train, "test": test}


def rng_for(seed: int, key: str) -> np.random.Generator:
    """A generator that depends only on (seed, key): scans are reproducible in any order."""
    return np.random.default_rng([int(seed), zlib.crc32(key.encode())])


def write_video(path: Path, frames: np.ndarray, fps: float | Fraction, *, qscale: int = 2) -> Path:
    """Encode (T, H, W) uint8 greyscale frames as MPEG-4 Part 2 in mp4 (FFmpeg's own encoder).

    Not H.264: libx264's bytes varied between runs once eSpeak had run in the same process
    (even single-threaded), which broke "same seed, same bytes"; FFmpeg's encoder is bit-exact.
    """
    import av

    with atomic_path(path) as tmp:
        with av.open(str(tmp), "w", format="mp4", container_options={"fflags": "+bitexact"}) as c:
            rate = fps if isinstance(fps, Fraction) else Fraction(fps).limit_denominator(1001)
            vs = c.add_stream("mpeg4", rate=rate)
            vs.codec_context.thread_count = 1
            vs.codec_context.flags |= av.codec.context.Flags.qscale  # constant quantiser, like ffmpeg -q:v
            vs.codec_context.global_quality = qscale * 118  # FF_QP2LAMBDA
            # PyAV frames carry no per-frame quality, so the encoder would sit at qmin: pin both
            vs.codec_context.qmin = vs.codec_context.qmax = int(qscale)
            vs.width, vs.height, vs.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
            vs.codec_context.flags |= getattr(av.codec.context.Flags, "bitexact", 0)
            for f in frames:
                frame = av.VideoFrame.from_ndarray(f, format="gray")
                for pkt in vs.encode(frame):
                    c.mux(pkt)
            for pkt in vs.encode():
                c.mux(pkt)
    return path


def save_masks(root: Path, scan_id: str, masks: np.ndarray, stride: int = 1) -> dict[str, str]:
    """Write every ``stride``-th mask as ``masks/<scan_id>_<frame>.png``; return {frame: relative path}."""
    from PIL import Image

    out = {}
    for i in range(0, len(masks), max(1, stride)):
        rel = f"masks/{scan_id}_{i:05d}.png"
        with atomic_path(root / rel) as tmp:
            Image.fromarray(masks[i]).save(tmp, format="PNG")
        out[str(i)] = rel
    return out


def ensure_benchmark(path: str | Path, *, build: bool = False, seed: int = 0):
    """Load the benchmark at ``path``; with ``build``, first build it (named after the folder) if absent.

    Example:
        >>> bench = ensure_benchmark("bench_out/pocus", build=True)  # doctest: +SKIP
    """
    path = Path(path)
    if not (path / "bench.json").exists():
        if not build:
            raise ConfigError(
                f"{path}: no benchmark there; build it (sonotell bench build {path.name} --out {path}) or pass --build"
            )
        build_benchmark(path.name, path, seed=seed)
    return load_benchmark(path)

"""Speech pipeline benchmark: narration -> term events, per backend, at clean / 10 dB / 0 dB (ESC-10 noise).

Evaluation narration is synthesised here with the *test* voices only (``split_voices``):
each recording has clinician lines naming lexicon terms (some negated: "no effusion"),
off-topic clinician talk and a second speaker, mixed with ESC-10 noise at each SNR.
With ``--bench DIR`` it scores a built benchmark's test-voice scans instead (their own noise).

Every system runs on the same recordings; the plain baseline (general LM, exact match,
no cleaning, no VAD, no diarization) is always included.

    python benchmarks/bench_speech.py --quick                  # ~5 min on one core
    python benchmarks/bench_speech.py --lexicon abdominal --recordings 8 --systems baseline,default,jsgf
    # the best backend:
    python benchmarks/bench_speech.py --recordings 12 --seed 1 --systems whisper-region --whisper-model DIR

Systems: baseline, default (Whisper base + forced word alignment), default-noalign, light (pocketsphinx),
jsgf, light+kws, light-nodenoise, light+denoise, default-nodiarize, whisper / whisper-region / whisper+default
(another local Whisper folder: --whisper-model DIR).

Scores: a hit needs the same label and the same negation, start within 0.5 s (and 1 s); positive and
negated mentions also apart; every figure also per voice (--piper adds the neural Piper voice).
Shared data (ESC-10, physician comments): ``$SONOTELL_DATA``, else ``../shared/data`` beside the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path

import numpy as np

SYSTEMS = {
    "baseline": ("baseline", []),
    "default": ("speech", []),  # Whisper base + forced word alignment
    "default-noalign": ("speech", ["word_times.enabled=false"]),  # Whisper's own word times
    "light": ("speech_light", []),  # pocketsphinx
    "jsgf": ("speech_light", ["transcribe.backend.mode=jsgf"]),
    "light+kws": ("speech_light", ["transcribe.combine=[{name: pocketsphinx, mode: keyphrase}]"]),
    "light-nodenoise": ("speech_light", ["clean.denoise=false"]),
    "light+denoise": ("speech_light", ["clean.denoise=true"]),
    "default-nodiarize": ("speech", ["diarize.enabled=false", "diarize.keep=all"]),
    "whisper": ("speech", ["transcribe.backend={name: faster_whisper, model_path: MODEL, beam_size: 1}"]),
    # whole regions (up to 30 s of speech spans, silence between) in one call, beam search
    "whisper-region": (
        "speech",
        [
            "transcribe.backend={name: faster_whisper, model_path: MODEL, beam_size: 5, prompt_style: labels}",
            "transcribe.scope=region",
        ],
    ),
    # Whisper's events, plus the default recogniser's where Whisper has none of that label
    "whisper+default": (
        "speech",
        [
            "transcribe.backend={name: faster_whisper, model_path: MODEL, beam_size: 5, prompt_style: labels}",
            "transcribe.scope=region",
            "transcribe.combine=[{name: pocketsphinx, mode: domain_lm, accent_variants: true, "
            "decoder_options: {lw: 10.0, beam: 1.0e-60, wbeam: 1.0e-40}}]",
        ],
    ),
}
TEMPLATES = [
    "here is the {t}",
    "now the {t}",
    "this is the {t}",
    "and we can see the {t}",
    "okay, {t}",
    "i can see {t}",
    "there are {t}",
]
NEG_TEMPLATES = ["no {t}", "there is no {t}", "no {t} here"]
OFF_TOPIC = [
    "take a deep breath for me",
    "hold it there",
    "you can breathe normally",
    "just relax",
    "let me move the probe a little",
]
SECOND = ["okay", "is that cold", "does it look alright", "how long will this take", "sure"]
FPS = 25.0


def physician_lines(lexicon, data_root: Path) -> list[str]:
    """Real physician phrasing: the free-text comments of the pocus metadata and the COVID-BLUES severity
    table, each turned into narration markup. A comment's mentions and their negation are found by
    exact matching (no fuzzy or phonetic matches) with the spotter's negation rules on the written text;
    comments without a lexicon term or longer than 30 words are left out."""
    import pandas as pd

    from sonotell.speech.spot import Spotter
    from sonotell.types import Word

    texts = []
    meta = data_root / "pocus" / "dataset_metadata.csv"
    if meta.exists():
        table = pd.read_csv(meta, dtype=str, keep_default_na=False)
        cols = [c for c in table.columns if c.startswith(("Comments", "MD2", "MD3"))]
        texts += [t for c in cols for t in table[c]]
    blues = data_root / "covid_blues" / "severity.csv"
    if blues.exists():
        texts += list(pd.read_csv(blues, dtype=str, keep_default_na=False)["comments"])
    exact = Spotter(lexicon, fuzzy_threshold=1.0, phonetic=False)
    out = []
    for text in dict.fromkeys(t.strip() for t in texts):
        words = re.sub(r"[\[\]()\n]+", " ", text).split()
        if not words or len(words) > 30:
            continue
        events = exact.spot([Word(w, float(i), i + 1.0) for i, w in enumerate(words)])
        if not events:
            continue
        parts, i = [], 0
        for e in events:
            a, b = int(e.start_s), int(e.end_s)
            parts += words[i:a] + [f"[{' '.join(words[a:b])}]({'!' if e.negated else ''}{e.label})"]
            i = b
        out.append(" ".join(parts + words[i:]))
    return sorted(out)


def shared_data() -> Path:
    """The shared data folder: ``$SONOTELL_DATA``, else ``../shared/data`` beside the repository."""
    return Path(os.environ.get("SONOTELL_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def make_recordings(
    lexicon,
    n: int,
    seed: int,
    snrs: list,
    sample_rate_hz: int = 16000,
    voices: str = "test",
    piper: bool = False,
    phrasing: str = "templates",
) -> dict:
    """{condition: [(wav, truth)]}: the same narration under every noise condition.

    ``voices="train"`` narrates with the training voices: the set to tune hyper-parameters on.
    Every recording draws its script and its noise file from streams of their own (seeded by
    ``seed``, the recording and the part), so a recording's script does not depend on which
    conditions are asked for. ``piper`` adds the neural Piper voice to the test voices;
    ``phrasing="physician"`` narrates the physicians' own comments (``physician_lines``).
    """
    from sonotell.bench.narration import Line, render
    from sonotell.bench.noise import esc10_files, load_noise, mix_at_snr
    from sonotell.bench.tts import PIPER_JOE, EspeakTTS, PiperTTS, split_voices, voice_bank
    from sonotell.speech.keywords import asr_forms

    data_root = shared_data()
    train_voices, test_voices = split_voices(voice_bank(24, seed=seed))
    if voices == "train":
        test_voices = train_voices
    elif piper:
        test_voices = [*test_voices, PIPER_JOE]
    tts = PiperTTS() if piper and voices == "test" else EspeakTTS()
    forms = {}
    for f in asr_forms(lexicon):
        if f.kind == "label" or (f.kind == "terms" and len(f.tokens) <= 3):
            forms.setdefault(f.label, []).append(f.text)
    labels = sorted(forms)
    comments = physician_lines(lexicon, data_root) if phrasing == "physician" else []
    if phrasing == "physician" and not comments:
        raise SystemExit(f"no physician comments with {lexicon.name} terms under {data_root}")
    noise_files = esc10_files(data_root / "esc10") if any(s is not None for s in snrs) else []
    clean = []
    for r in range(n):
        rng = np.random.default_rng([seed, r, 0])  # the script
        voice = test_voices[r % len(test_voices)]
        others = [v for v in test_voices if v != voice and v != PIPER_JOE] or test_voices
        other = others[r % len(others)]
        lines, t = [], 0.5
        for k in range(4):
            negated = k == r % 4  # one negated mention per recording ("no effusion")
            if comments:
                text = comments[int(rng.integers(len(comments)))]
            else:
                label = labels[int(rng.integers(len(labels)))]
                said = forms[label][int(rng.integers(len(forms[label])))]
                tmpl = (NEG_TEMPLATES if negated else TEMPLATES)[int(rng.integers(3 if negated else len(TEMPLATES)))]
                text = tmpl.replace("{t}", f"[{said}]({'!' if negated else ''}{label})")
            lines.append(Line(text, "clinician", voice, at_s=t))
            t += 3.0 if not comments else 2.0 + 0.4 * len(text.split())
            if rng.random() < 0.5:
                lines.append(
                    Line(OFF_TOPIC[int(rng.integers(len(OFF_TOPIC)))], "clinician", voice, at_s=t - 1.4, filler=True)
                )
        lines.append(
            Line(
                SECOND[int(rng.integers(len(SECOND)))],
                "patient",
                other,
                at_s=float(rng.uniform(1, 10)),
                gain_db=-6.0,
                filler=True,
            )
        )
        narration = render(lines, duration_s=t + 1.0, sample_rate_hz=sample_rate_hz, tts=tts)
        truth = {"scan_id": f"rec{r}", "events": narration.events, "segments": narration.segments, "voice": voice.name}
        noise_rng = np.random.default_rng([seed, r, 1])  # the noise file: its own stream
        clean.append(
            (narration.audio, truth, noise_files[int(noise_rng.integers(len(noise_files)))] if noise_files else None)
        )
    out = {}
    for snr in snrs:
        recs = []
        for wav, truth, noise_path in clean:
            if snr is None:
                recs.append((wav, truth))
            else:
                noise = load_noise(noise_path, len(wav), sample_rate_hz)
                recs.append(
                    (
                        mix_at_snr(wav, noise, snr, sample_rate_hz)[0].astype(np.float32),
                        {**truth, "noise": noise_path.parent.name},
                    )
                )
        out["clean" if snr is None else f"{snr:g} dB"] = recs
    return out


def bench_recordings(args, lexicon) -> dict:
    snrs = [None if s == "clean" else float(s) for s in args.snr.split(",")]
    return make_recordings(
        lexicon, args.recordings, args.seed, snrs, voices=args.voices, piper=args.piper, phrasing=args.phrasing
    )


def bench_folder(args, lexicon) -> dict:
    from sonotell.bench import load_benchmark
    from sonotell.io.audio import load_audio

    bench = load_benchmark(args.bench)
    table = bench.table
    ids = list(table.loc[table["voice_split"] == "test", "scan_id"])[: args.recordings]
    recs = []
    for scan in bench.scans:
        if scan.scan_id in ids:
            wav, _ = load_audio(scan.audio_source, 16000)
            truth = bench.truth(scan.scan_id)
            recs.append((wav, {**truth, "audio_offset_s": scan.audio_offset_s}))
    return {f"{bench.name} (test voices)": recs}


def run_system(name: str, config: str, overrides: list[str], lexicon, recs: list, align_cfg: dict) -> dict:
    import torch

    from sonotell.eval.labels import evaluate_scan, summarise
    from sonotell.speech.align import align_states
    from sonotell.speech.pipeline import SpeechPipeline

    torch.set_num_threads(1)
    pipe = SpeechPipeline.from_config(config, lexicon, overrides)
    pipe.process_audio(recs[0][0][:16000], 16000)  # load models once, outside the timing
    per_scan = []
    for wav, truth in recs:
        result = pipe.process_audio(wav, 16000, truth.get("audio_offset_s", 0.0))
        n_frames = int((len(wav) / 16000 + truth.get("audio_offset_s", 0.0)) * FPS)
        frames = align_states(
            result.events, lexicon.labels, fps=FPS, n_frames=n_frames, config=pipe.align_cfg, scopes=lexicon.scopes
        ).single_labels()
        pred = {**result.to_dict(), "frame_labels": frames}
        per_scan.append(
            evaluate_scan(
                pred, truth, resolve=lexicon.resolve_label, fps=FPS, n_frames=n_frames, align_config=align_cfg
            )
        )
    out = summarise(per_scan)
    for tol in ("0.5", "1"):
        for kind in ("all", "positive", "negated"):
            out[f"f1_{kind}@{tol}"] = out["by_polarity"][tol][kind]["f1"]
    out["f1_by_voice@0.5"] = {v: pol["0.5"]["all"]["f1"] for v, pol in out.get("by_voice", {}).items()}
    return out


def bench_long(minutes: float, lexicon, seed: int, out_dir: Path) -> dict:
    """Stream a long file (narration tiled to ``minutes``) through the default pipeline; peak memory and RTF."""
    import resource

    import soundfile as sf
    import torch

    from sonotell.speech.pipeline import SpeechPipeline

    torch.set_num_threads(1)
    ((wav, truth),) = make_recordings(lexicon, 1, seed, [None])["clean"]
    path = out_dir / f"long_{minutes:g}min.wav"
    n_tiles = int(np.ceil(minutes * 60 * 16000 / len(wav)))
    with sf.SoundFile(str(path), "w", 16000, 1, subtype="PCM_16") as f:  # written tile by tile: never whole in memory
        for _ in range(n_tiles):
            f.write(wav)
    pipe = SpeechPipeline.from_config("speech", lexicon)
    pipe.process_audio(wav[:16000], 16000)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = pipe.process_file(path)
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    path.unlink()
    expected = n_tiles * sum(1 for e in truth["events"] if not e["negated"])
    found = sum(1 for e in result.events if not e.negated)
    return {
        "audio_min": round(result.info["duration_s"] / 60, 2),
        "peak_rss_mb_before": round(rss0),
        "peak_rss_mb_after": round(rss1),
        "cpu_real_time_factor": result.info["cpu_real_time_factor"],
        "real_time_factor": result.info["real_time_factor"],
        "positive_mentions_said": expected,
        "positive_events_found": found,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lexicon", default="lung")
    ap.add_argument("--recordings", type=int, default=8, help="recordings per condition (4 terms each)")
    ap.add_argument("--snr", default="clean,10,0", help="conditions: clean and/or SNRs in dB (ESC-10 noise)")
    ap.add_argument("--systems", default="baseline,default,jsgf")
    ap.add_argument("--whisper-model", default=None, help="local CTranslate2 Whisper folder for the 'whisper' system")
    ap.add_argument("--bench", default=None, help="score a built benchmark's test-voice scans instead of synthesising")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--voices",
        choices=["test", "train"],
        default="test",
        help="narrate with the test voices (report) or the train voices (tune)",
    )
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        dest="overrides",
        help="extra config override for every non-baseline system, e.g. transcribe.backend.decoder_options.lw=8",
    )
    ap.add_argument("--quick", action="store_true", help="3 recordings, baseline + default")
    ap.add_argument("--piper", action="store_true", help="add the neural Piper voice (joe) to the test voices")
    ap.add_argument(
        "--phrasing",
        choices=["templates", "physician"],
        default="templates",
        help="narrate templates or the physicians' own comments",
    )
    ap.add_argument("--out", default="bench_out/speech.json")
    ap.add_argument(
        "--long",
        type=float,
        default=None,
        help="only the long-file check: stream this many minutes, report memory and RTF",
    )
    args = ap.parse_args()
    if args.long:
        from sonotell.speech.lexicon import load_lexicon

        row = bench_long(args.long, load_lexicon(args.lexicon), args.seed, Path(args.out).parent)
        print(json.dumps(row))
        from sonotell.files import write_json

        write_json(args.out, {"args": vars(args), "long": row})
        return
    if args.quick:
        args.recordings, args.systems = 3, "baseline,default"

    from sonotell.speech.lexicon import load_lexicon

    lexicon = load_lexicon(args.lexicon)
    data = bench_folder(args, lexicon) if args.bench else bench_recordings(args, lexicon)
    align_cfg = {"before_s": 0.3, "after_s": 0.3}
    rows = []
    for system in args.systems.split(","):
        config, overrides = SYSTEMS[system]
        overrides = [o.replace("MODEL", str(args.whisper_model)) for o in overrides] + (
            args.overrides if config != "baseline" else []
        )
        for condition, recs in data.items():
            t0 = time.perf_counter()
            s = run_system(system, config, overrides, lexicon, recs, align_cfg)
            row = {
                "system": system,
                "condition": condition,
                **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in s.items()},
                "wall_s": round(time.perf_counter() - t0, 1),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    cols = [
        "system",
        "condition",
        "f1_all@0.5",
        "f1_all@1",
        "f1_positive@0.5",
        "f1_negated@0.5",
        "negation_flag_accuracy",
        "median_start_error_s",
        "p90_start_error_s",
        "frame_accuracy",
        "clinician_recall",
        "other_rejection",
        "negation_errors",
        "negated_truths",
        "term_wer",
        "real_time_factor",
        "cpu_real_time_factor",
    ]
    print("\n| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print(
            "| "
            + " | ".join(
                "" if r.get(c) is None else f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c]) for c in cols
            )
            + " |"
        )
    voices = sorted({v for r in rows for v in r.get("f1_by_voice@0.5", {})})
    print(
        "\nF1 (label and negation match, +-0.5 s) per voice\n\n| system | condition | "
        + " | ".join(voices)
        + " |\n|"
        + "---|" * (len(voices) + 2)
    )
    for r in rows:
        print(
            f"| {r['system']} | {r['condition']} | "
            + " | ".join(f"{r['f1_by_voice@0.5'].get(v, float('nan')):.3f}" for v in voices)
            + " |"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from sonotell.files import write_json

    write_json(out, {"args": vars(args), "rows": rows})
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()

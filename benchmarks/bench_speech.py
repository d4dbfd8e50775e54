"""Speech pipeline benchmark: narration -> term events, per backend, at clean / 10 dB / 0 dB (ESC-10 noise).

Evaluation narration is synthesised here with the *test* voices only (``split_voices``):
each recording has clinician lines naming lexicon terms (some negated: "no effusion"),
off-topic clinician talk and a second speaker, mixed with ESC-10 noise at each SNR.
With ``--bench DIR`` it scores a built benchmark's test-voice scans instead (their own noise).

Every system runs on the same recordings; the plain baseline (general LM, exact match,
no cleaning, no VAD, no diarization) is always included.

    python benchmarks/bench_speech.py --quick                  # ~5 min on one core
    python benchmarks/bench_speech.py --lexicon abdominal --recordings 8 --systems baseline,default,jsgf
    python benchmarks/bench_speech.py --recordings 12 --seed 1 --systems whisper-region --whisper-model DIR   # the best backend

Systems: baseline, default, jsgf, default+kws, default-nodenoise, default+denoise, default-nodiarize,
default-region (= default now), whisper (per span, greedy: before follow-up 2), whisper-region (whole
regions, beam 5, label prompt), whisper+default (their events' union).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

SYSTEMS = {
    "baseline": ("baseline", []),
    "default": ("speech", []),
    "jsgf": ("speech", ["transcribe.backend.mode=jsgf"]),
    "default+kws": ("speech", ["transcribe.combine=[{name: pocketsphinx, mode: keyphrase}]"]),
    "default-nodenoise": ("speech", ["clean.denoise=false"]),
    "default+denoise": ("speech", ["clean.denoise=true"]),
    "default-nodiarize": ("speech", ["diarize.enabled=false", "diarize.keep=all"]),
    "whisper": ("speech", ["transcribe.backend={name: faster_whisper, model_path: MODEL, beam_size: 1}"]),
    # whole regions (up to 30 s of speech spans, silence between) in one call, beam search
    "whisper-region": ("speech", ["transcribe.backend={name: faster_whisper, model_path: MODEL, beam_size: 5, prompt_style: labels}", "transcribe.scope=region"]),
    # Whisper's events, plus the default recogniser's where Whisper has none of that label
    "whisper+default": ("speech", ["transcribe.backend={name: faster_whisper, model_path: MODEL, beam_size: 5, prompt_style: labels}", "transcribe.scope=region",
                                   "transcribe.combine=[{name: pocketsphinx, mode: domain_lm, accent_variants: true, decoder_options: {lw: 10.0, beam: 1.0e-60, wbeam: 1.0e-40}}]"]),
    "default-region": ("speech", ["transcribe.scope=region"]),
}
TEMPLATES = ["here is the {t}", "now the {t}", "this is the {t}", "and we can see the {t}", "okay, {t}", "i can see {t}", "there are {t}"]
NEG_TEMPLATES = ["no {t}", "there is no {t}", "no {t} here"]
OFF_TOPIC = ["take a deep breath for me", "hold it there", "you can breathe normally", "just relax", "let me move the probe a little"]
SECOND = ["okay", "is that cold", "does it look alright", "how long will this take", "sure"]
FPS = 25.0


def make_recordings(lexicon, n: int, seed: int, snrs: list, sample_rate_hz: int = 16000, voices: str = "test") -> dict:
    """{condition: [(wav, truth)]}: the same narration under every noise condition.

    ``voices="train"`` narrates with the training voices: the set to tune hyper-parameters on.
    """
    from sonotell.bench.narration import Line, render
    from sonotell.bench.noise import (
        esc10_class,  # noqa: F401
        esc10_files,
        load_noise,
        mix_at_snr,
    )
    from sonotell.bench.tts import EspeakTTS, split_voices, voice_bank
    from sonotell.speech.keywords import asr_forms

    rng = np.random.default_rng(seed)
    train_voices, test_voices = split_voices(voice_bank(24, seed=seed))
    if voices == "train":
        test_voices = train_voices
    tts = EspeakTTS()
    forms = {}
    for f in asr_forms(lexicon):
        if f.kind == "label" or (f.kind == "terms" and len(f.tokens) <= 3):
            forms.setdefault(f.label, []).append(f.text)
    labels = sorted(forms)
    noise_files = esc10_files(Path(__file__).resolve().parents[2] / "shared" / "data" / "esc10") if any(s is not None for s in snrs) else []
    clean = []
    for r in range(n):
        voice = test_voices[r % len(test_voices)]
        other = test_voices[(r + 1) % len(test_voices)]
        lines, t = [], 0.5
        for k in range(4):
            label = labels[int(rng.integers(len(labels)))]
            said = forms[label][int(rng.integers(len(forms[label])))]
            negated = k == r % 4  # one negated mention per recording ("no effusion")
            tmpl = (NEG_TEMPLATES if negated else TEMPLATES)[int(rng.integers(3 if negated else len(TEMPLATES)))]
            text = tmpl.replace("{t}", f"[{said}]({'!' if negated else ''}{label})")
            lines.append(Line(text, "clinician", voice, at_s=t))
            t += 3.0
            if rng.random() < 0.5:
                lines.append(Line(OFF_TOPIC[int(rng.integers(len(OFF_TOPIC)))], "clinician", voice, at_s=t - 1.4, filler=True))
        lines.append(Line(SECOND[int(rng.integers(len(SECOND)))], "patient", other, at_s=float(rng.uniform(1, 10)), gain_db=-6.0, filler=True))
        narration = render(lines, duration_s=t + 1.0, sample_rate_hz=sample_rate_hz, tts=tts)
        truth = {"scan_id": f"rec{r}", "events": narration.events, "segments": narration.segments}
        clean.append((narration.audio, truth, noise_files[int(rng.integers(len(noise_files)))] if noise_files else None))
    out = {}
    for snr in snrs:
        recs = []
        for wav, truth, noise_path in clean:
            if snr is None:
                recs.append((wav, truth))
            else:
                noise = load_noise(noise_path, len(wav), sample_rate_hz)
                recs.append((mix_at_snr(wav, noise, snr, sample_rate_hz)[0].astype(np.float32), {**truth, "noise": noise_path.parent.name}))
        out["clean" if snr is None else f"{snr:g} dB"] = recs
    return out


def bench_recordings(args, lexicon) -> dict:
    snrs = [None if s == "clean" else float(s) for s in args.snr.split(",")]
    return make_recordings(lexicon, args.recordings, args.seed, snrs, voices=args.voices)


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
    from sonotell.speech.align import align_events
    from sonotell.speech.pipeline import SpeechPipeline

    torch.set_num_threads(1)
    pipe = SpeechPipeline.from_config(config, lexicon, overrides)
    pipe.process_audio(recs[0][0][:16000], 16000)  # load models once, outside the timing
    per_scan = []
    for wav, truth in recs:
        result = pipe.process_audio(wav, 16000, truth.get("audio_offset_s", 0.0))
        n_frames = int((len(wav) / 16000 + truth.get("audio_offset_s", 0.0)) * FPS)
        frames = [f.label for f in align_events(result.events, truth["scan_id"], fps=FPS, n_frames=n_frames, config=pipe.align_cfg)]
        pred = {**result.to_dict(), "frame_labels": frames}
        per_scan.append(evaluate_scan(pred, truth, resolve=lexicon.resolve_label, fps=FPS, n_frames=n_frames, align_config=align_cfg))
    return summarise(per_scan)


def bench_long(minutes: float, lexicon, seed: int, out_dir: Path) -> dict:
    """Stream a long file (narration tiled to ``minutes``) through the default pipeline; peak memory and RTF."""
    import resource

    import soundfile as sf
    import torch

    from sonotell.speech.pipeline import SpeechPipeline

    torch.set_num_threads(1)
    (wav, truth), = make_recordings(lexicon, 1, seed, [None])["clean"]
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
    return {"audio_min": round(result.info["duration_s"] / 60, 2), "peak_rss_mb_before": round(rss0), "peak_rss_mb_after": round(rss1),
            "cpu_real_time_factor": result.info["cpu_real_time_factor"], "real_time_factor": result.info["real_time_factor"],
            "positive_mentions_said": expected, "positive_events_found": found}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lexicon", default="lung")
    ap.add_argument("--recordings", type=int, default=8, help="recordings per condition (4 terms each)")
    ap.add_argument("--snr", default="clean,10,0", help="conditions: clean and/or SNRs in dB (ESC-10 noise)")
    ap.add_argument("--systems", default="baseline,default,jsgf")
    ap.add_argument("--whisper-model", default=None, help="local CTranslate2 Whisper folder for the 'whisper' system")
    ap.add_argument("--bench", default=None, help="score a built benchmark's test-voice scans instead of synthesising")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--voices", choices=["test", "train"], default="test", help="narrate with the test voices (report) or the train voices (tune)")
    ap.add_argument("--set", action="append", default=[], dest="overrides", help="extra config override for every non-baseline system, e.g. transcribe.backend.decoder_options.lw=8")
    ap.add_argument("--quick", action="store_true", help="3 recordings, baseline + default")
    ap.add_argument("--out", default="bench_out/speech.json")
    ap.add_argument("--long", type=float, default=None, help="only the long-file check: stream this many minutes, report memory and RTF")
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
        overrides = [o.replace("MODEL", str(args.whisper_model)) for o in overrides] + (args.overrides if config != "baseline" else [])
        for condition, recs in data.items():
            t0 = time.perf_counter()
            s = run_system(system, config, overrides, lexicon, recs, align_cfg)
            row = {"system": system, "condition": condition, **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in s.items()}, "wall_s": round(time.perf_counter() - t0, 1)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    cols = ["system", "condition", "precision", "recall", "f1", "median_start_error_s", "p90_start_error_s", "frame_accuracy", "clinician_recall", "other_rejection", "negation_errors", "negated_truths", "term_wer", "real_time_factor", "cpu_real_time_factor"]
    print("\n| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join("" if r.get(c) is None else f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c]) for c in cols) + " |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from sonotell.files import write_json

    write_json(out, {"args": vars(args), "rows": rows})
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()

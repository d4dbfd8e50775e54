"""Real second speakers (issue 20): one real main speaker, other real speakers interjecting 0.5-3 s phrases.

Mixes are built from ``$SONOTELL_DATA/real_speech`` (default ``../shared/data/real_speech``): the main voice is
the MFA test speaker (``mfa_*.flac``, clips joined with 0.3-0.8 s pauses); the interjections are phrases of the
other recorded speakers (LibriSpeech 61, three Common Voice clips), cut to
0.5-3 s of sound and put between the main speaker's clips. Each mix is scored at 16 kHz and at 8 kHz
(telephone band: resampled down and fed as 8 kHz audio), without and with enrolment of the main voice
(``acoustic_corpus.wav``'s first 8 s, the same person on another day, never in a mix).

Scores come from the pipeline's speaker segments against the mix's truth turns, by time, within the speech the
pipeline found (any speaker's segments): ``main_kept`` = main-speaker time in clinician segments / main-speaker
time in any segment (goal >= 0.95); ``other_rejected`` = other speakers' time outside clinician segments / their
time in any segment (goal >= 0.90).
Nothing is tuned on these mixes.

    python benchmarks/bench_real_speakers.py --mixes 2
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

SR = 16000
OTHERS = [
    "61-70968-0000.flac",
    "common_voice_en_22058264.mp3",
    "common_voice_en_22058266.mp3",
    "common_voice_en_22058267.mp3",
]  # not multilingual_ipa_us*: it sounds like the main speaker (cosine 0.75 to mfa_words, others 0.5-0.66)


def sound(wav: np.ndarray, frame: int = 160) -> np.ndarray:
    """``wav`` from its first to its last frame within 30 dB of its loudest (leading/trailing silence cut)."""
    n = len(wav) // frame
    level = 10 * np.log10(np.mean(wav[: n * frame].astype(np.float64).reshape(n, frame) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(level > level.max() - 30)
    return wav[loud[0] * frame : (loud[-1] + 1) * frame] if len(loud) else wav


def phrases(root: Path, rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    """Interjections: each other-speaker file cut into pieces of 0.5-3 s of sound."""
    from sonotell.io.audio import load_audio

    out = []
    for name in OTHERS:
        wav = sound(load_audio(root / name, SR)[0])
        at = 0
        while len(wav) - at >= int(0.5 * SR):
            n = min(len(wav) - at, int(rng.uniform(1.0, 3.0) * SR))
            out.append((name, sound(wav[at : at + n])))
            at += n
    return out


def make_mixes(root: Path, n_mixes: int, seed: int, interjections: int = 4) -> list[dict]:
    from sonotell.io.audio import load_audio

    rng = np.random.default_rng(seed)
    main = [sound(load_audio(p, SR)[0]) for p in sorted(root.glob("mfa_*.flac"))]
    others = phrases(root, rng)
    per_mix = len(main) // n_mixes
    mixes = []
    for m in range(n_mixes):
        clips = main[m * per_mix : (m + 1) * per_mix]
        slots = set(rng.choice(np.arange(1, len(clips)), size=min(interjections, len(clips) - 1), replace=False))
        parts, turns, t = [np.zeros(int(0.5 * SR), np.float32)], [], 0.5
        for k, clip in enumerate(clips):
            if k in slots:
                name, phrase = others[int(rng.integers(len(others)))]
                parts += [phrase, np.zeros(int(rng.uniform(0.3, 0.8) * SR), np.float32)]
                turns.append(("other", t, t + len(phrase) / SR, name))
                t += len(parts[-2]) / SR + len(parts[-1]) / SR
            parts += [clip, np.zeros(int(rng.uniform(0.3, 0.8) * SR), np.float32)]
            turns.append(("main", t, t + len(clip) / SR, "mfa"))
            t += len(parts[-2]) / SR + len(parts[-1]) / SR
        mixes.append({"audio": np.concatenate(parts).astype(np.float32), "turns": turns, "name": f"mix{m}"})
    return mixes


def overlap(a: float, b: float, segments: list[tuple[float, float]]) -> float:
    return sum(max(0.0, min(b, e) - max(a, s)) for s, e in segments)


def score(result, turns) -> dict:
    """Diarization by time, inside the speech the pipeline found (its segments, any speaker): the pauses inside a
    main-speaker clip are nobody's speech and do not count against it."""
    found = [(s["start_s"], s["end_s"]) for s in result.segments]
    kept = [(s["start_s"], s["end_s"]) for s in result.segments if s["speaker"] == "clinician"]
    main = [(a, b) for who, a, b, _ in turns if who == "main"]
    other = [(a, b) for who, a, b, _ in turns if who == "other"]
    main_found = sum(overlap(a, b, found) for a, b in main)
    other_found = sum(overlap(a, b, found) for a, b in other)
    return {
        "main_kept": round(sum(overlap(a, b, kept) for a, b in main) / max(main_found, 1e-9), 3),
        "other_rejected": round(1 - sum(overlap(a, b, kept) for a, b in other) / max(other_found, 1e-9), 3),
        "other_s": round(other_found, 1),
        "main_s": round(main_found, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mixes", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lexicon", default="lung")
    ap.add_argument("--rates", default="16000,8000")
    ap.add_argument("--systems", default="default,enrol_main")
    ap.add_argument("--out", default="bench_out/real_speakers.json")
    args = ap.parse_args()

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_speech import shared_data
    from sonotell.io.audio import load_audio, resample
    from sonotell.speech.pipeline import SpeechPipeline

    root = shared_data() / "real_speech" / "audio"
    mixes = make_mixes(root, args.mixes, args.seed)
    enrol = load_audio(root / "acoustic_corpus.wav", SR)[0][: 8 * SR]
    rows = []
    for system in args.systems.split(","):
        pipe = SpeechPipeline.from_config("speech", args.lexicon, enrolment=enrol if system == "enrol_main" else None)
        for rate in map(int, args.rates.split(",")):
            for mix in mixes:
                audio = mix["audio"] if rate == SR else resample(mix["audio"], SR, rate)
                result = pipe.process_audio(audio, rate)
                row = {"system": system, "rate_hz": rate, "mix": mix["name"], **score(result, mix["turns"])}
                row["enrolment_score"] = result.info.get("enrolment_score")
                rows.append(row)
                print(json.dumps(row), flush=True)
    summary = {}
    for system in args.systems.split(","):
        for rate in map(int, args.rates.split(",")):
            got = [r for r in rows if r["system"] == system and r["rate_hz"] == rate]
            main_s = sum(r["main_s"] for r in got)
            other_s = sum(r["other_s"] for r in got)
            summary[f"{system} {rate} Hz"] = {
                "main_kept": round(sum(r["main_kept"] * r["main_s"] for r in got) / main_s, 3),
                "other_rejected": round(sum(r["other_rejected"] * r["other_s"] for r in got) / max(other_s, 1e-9), 3),
            }
    print(json.dumps(summary))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"rows": rows, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()

"""No events from nothing: term events per minute on audio that names no finding.

Four sources, ``--minutes`` each: near-silence (a -60 dBFS noise floor), ESC-10 environmental noise
(clips joined), music-like tones (three-note chords changing every 0.5 s) and off-topic clinic talk
(test voices saying small talk and instructions, no lexicon term). Every event is a false event.

    python benchmarks/bench_false_events.py --minutes 1 --systems default,light
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

SR = 16000
SMALL_TALK = [
    "okay, let's save that clip",
    "can you roll onto your left side for me",
    "that's great, thank you",
    "we're nearly done now",
    "let me get a bit more gel",
    "is the pressure okay",
    "just breathe normally",
    "i'll freeze the image here",
    "lovely, and relax",
    "we'll have the report ready this afternoon",
    "can you lift your arm above your head",
    "sorry, the gel is a bit cold",
    "alright, one more view",
]


def sources(minutes: float, seed: int) -> dict[str, np.ndarray]:
    from sonotell.bench.noise import esc10_files, load_noise
    from sonotell.bench.tts import EspeakTTS, split_voices, voice_bank
    from sonotell.io.audio import resample

    n = int(minutes * 60 * SR)
    rng = np.random.default_rng(seed)
    out = {"silence": (10 ** (-60 / 20) * rng.normal(size=n)).astype(np.float32)}
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_speech import shared_data

    files = esc10_files(shared_data() / "esc10")
    parts, have = [], 0
    while have < n:
        clip = load_noise(files[int(rng.integers(len(files)))], 5 * SR, SR)
        parts.append(clip)
        have += len(clip)
    out["esc10 noise"] = (0.3 * np.concatenate(parts)[:n] / (np.abs(np.concatenate(parts)).max() + 1e-9)).astype(
        np.float32
    )
    t = np.arange(SR // 2) / SR
    chords = []
    for _ in range(n // len(t)):
        root = 220 * 2 ** (int(rng.integers(0, 12)) / 12)
        chords.append(sum(0.08 * np.sin(2 * np.pi * root * r * t) for r in (1, 1.26, 1.5)) * np.hanning(len(t)))
    out["tones"] = np.concatenate(chords).astype(np.float32)
    _, voices = split_voices(voice_bank(24, seed=seed))
    tts, talk, k = EspeakTTS(), [], 0
    while sum(map(len, talk)) < n:
        s = tts.synthesize(SMALL_TALK[k % len(SMALL_TALK)], voices[k % len(voices)])
        talk += [resample(s.audio, s.sample_rate_hz, SR), np.zeros(int(0.7 * SR), np.float32)]
        k += 1
    out["off-topic talk"] = np.concatenate(talk)[:n].astype(np.float32)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=1.0)
    ap.add_argument("--systems", default="default,light")
    ap.add_argument("--lexicon", default="lung")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    import torch

    from sonotell.speech.pipeline import SpeechPipeline

    torch.set_num_threads(1)
    configs = {"default": "speech", "light": "speech_light"}
    audio = sources(args.minutes, args.seed)
    for system in args.systems.split(","):
        pipe = SpeechPipeline.from_config(configs[system], args.lexicon)
        for name, wav in audio.items():
            events = pipe.process_audio(wav, SR).events
            row = {
                "system": system,
                "source": name,
                "minutes": args.minutes,
                "events": len(events),
                "per_minute": round(len(events) / args.minutes, 2),
                "said": [f"{e.term} ({e.label})" for e in events][:8],
            }
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()

"""Speed of the default labelling against bare faster-whisper, in one run on the same audio.

The audio is ``--recordings`` benchmark narrations (test voices) joined into one file. Three ways,
alternating, ``--runs`` times each (medians reported):

* ``bare``: what a user would try first: faster-whisper base int8 on CPU, beam 5, word times, its VAD filter;
* ``label``: ``SpeechPipeline`` with the default config (VAD, diarization, Whisper, forced alignment, spotting);
* ``light``: the same with ``speech_light`` (pocketsphinx).

Wall time, CPU time and real-time factor (wall / audio) per way, and label / bare.

    python benchmarks/bench_label_speed.py --recordings 6 --runs 3
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recordings", type=int, default=6)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--lexicon", default="lung")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads of both Whisper runs")
    args = ap.parse_args()

    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from faster_whisper import WhisperModel

    from bench_speech import make_recordings
    from sonotell.speech.lexicon import load_lexicon
    from sonotell.speech.pipeline import SpeechPipeline
    from sonotell.speech.transcribe import whisper_base_dir

    lexicon = load_lexicon(args.lexicon)
    recs = make_recordings(lexicon, args.recordings, args.seed, [None])["clean"]
    audio = np.concatenate([w for w, _ in recs]).astype(np.float32)
    duration = len(audio) / 16000
    bare_model = WhisperModel(
        str(whisper_base_dir()), device="cpu", compute_type="int8", cpu_threads=args.threads, local_files_only=True
    )
    label = SpeechPipeline.from_config("speech", lexicon, [f"transcribe.backend.cpu_threads={args.threads}"])
    light = SpeechPipeline.from_config("speech_light", lexicon)

    def bare():
        segments, _ = bare_model.transcribe(audio, language="en", beam_size=5, word_timestamps=True, vad_filter=True)
        return sum(len(s.words or []) for s in segments)

    ways = {
        "bare": bare,
        "label": lambda: len(label.process_audio(audio, 16000).events),
        "light": lambda: len(light.process_audio(audio, 16000).events),
    }
    for fn in ways.values():  # warm up: models loaded, caches filled, outside the timing
        fn() if fn is not bare else bare_model.transcribe(audio[:16000], language="en")
    times = {k: [] for k in ways}
    for _ in range(args.runs):
        for name, fn in ways.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            times[name].append((time.perf_counter() - t0, time.process_time() - c0))
    out = {"audio_s": round(duration, 1), "runs": args.runs, "threads": args.threads}
    for name, ts in times.items():
        wall, cpu = float(np.median([t[0] for t in ts])), float(np.median([t[1] for t in ts]))
        out[name] = {
            "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2),
            "rtf": round(wall / duration, 3),
            "walls": [round(t[0], 2) for t in ts],
        }
    out["label_over_bare"] = round(out["label"]["wall_s"] / out["bare"]["wall_s"], 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()

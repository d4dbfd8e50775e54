"""Whole processes: `sonotell transcribe` against bare faster-whisper on the same file (issue 20).

Two files are made from ``--recordings`` benchmark narrations (test voices): ``continuous`` (joined back to
back) and ``gappy`` (``--gap-s`` of silence after each). On each, two commands run one after the other,
``--runs`` times each, alternating:

* ``bare``: what a user would try first: faster-whisper, the same Whisper base weights, int8 on CPU, beam 5,
  word times, its VAD filter, ``--threads`` threads;
* ``transcribe``: ``sonotell transcribe FILE --lexicon LEXICON --out OUT.json`` with the default config
  (VAD, diarization, Whisper, forced alignment, spotting) and ``--threads`` Whisper threads.

Each process's wall time, CPU time (user + sys) and peak resident memory (``wait4``'s ``ru_maxrss``) are
measured from outside, so model loading and imports count. Medians, and transcribe / bare ratios
(goal: <= 1.3 for wall and memory). On a shared machine wall time follows the load: CPU time is reported too.

    python benchmarks/bench_label_speed.py --recordings 6 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BARE = """
import sys
from faster_whisper import WhisperModel
from sonotell.speech.transcribe import whisper_base_dir
model = WhisperModel(str(whisper_base_dir()), device="cpu", compute_type="int8", cpu_threads=int(sys.argv[2]),
                     local_files_only=True)
segments, _ = model.transcribe(sys.argv[1], language="en", beam_size=5, word_timestamps=True, vad_filter=True)
print(sum(len(s.words or []) for s in segments), "words")
"""


def run_process(cmd: list[str]) -> dict:
    """Wall, CPU and peak RSS of one child process (its own rusage, from wait4)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} ... failed ({proc.returncode}): {err[-1500:]}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recordings", type=int, default=6)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--lexicon", default="lung")
    ap.add_argument("--gap-s", type=float, default=15.0, help="silence after each narration in the gappy file")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads of both Whisper runs")
    ap.add_argument("--files", default="continuous,gappy")
    ap.add_argument("--out", default="bench_out/label_speed.json")
    args = ap.parse_args()

    sys.path.insert(0, str(Path(__file__).parent))
    import soundfile as sf

    from bench_speech import make_recordings
    from sonotell.speech.lexicon import load_lexicon

    recs = make_recordings(load_lexicon(args.lexicon), args.recordings, args.seed, [None])["clean"]
    gap = np.zeros(int(args.gap_s * 16000), np.float32)
    audio = {
        "continuous": np.concatenate([w for w, _ in recs]),
        "gappy": np.concatenate([x for w, _ in recs for x in (w, gap)]),
    }
    sonotell = str(Path(sys.executable).with_name("sonotell"))
    results = {"recordings": args.recordings, "runs": args.runs, "threads": args.threads, "files": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.files.split(","):
            wav = Path(tmp) / f"{name}.wav"
            sf.write(str(wav), audio[name].astype(np.float32), 16000)
            commands = {
                "bare": [sys.executable, "-c", BARE, str(wav), str(args.threads)],
                "transcribe": [
                    sonotell,
                    "transcribe",
                    str(wav),
                    "--lexicon",
                    args.lexicon,
                    "--out",
                    str(Path(tmp) / f"{name}.json"),
                    "--set",
                    f"transcribe.backend.cpu_threads={args.threads}",
                ],
            }
            runs: dict[str, list[dict]] = {k: [] for k in commands}
            for _ in range(args.runs):
                for way, cmd in commands.items():
                    runs[way].append(run_process(cmd))
                    print(name, way, {k: round(v, 2) for k, v in runs[way][-1].items()}, flush=True)
            row: dict = {"audio_s": round(len(audio[name]) / 16000, 1)}
            for way, got in runs.items():
                row[way] = {k: round(float(np.median([g[k] for g in got])), 2) for k in got[0]}
                row[way]["walls"] = [round(g["wall_s"], 2) for g in got]
            for k in ("wall_s", "cpu_s", "peak_rss_mb"):
                row[f"{k}_ratio"] = round(row["transcribe"][k] / row["bare"][k], 2)
            results["files"][name] = row
            print(json.dumps({name: row}), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(json.dumps(results))


if __name__ == "__main__":
    main()

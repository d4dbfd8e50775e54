"""Word start times against word-level truth (TextGrids of real recordings): recogniser vs forced alignment.

For every TextGrid with a ``words`` tier in ``--data`` (default ``../shared/data/real_speech``) and its
audio, each system transcribes the whole recording (no diarization: every word kept); its words are
paired with the true words by their text (difflib's longest matching blocks over normalised words),
and the start error of every paired word is reported: median and 90th percentile of |error|, the
mean (signed: negative = early) and the share of true words paired.

    python benchmarks/bench_word_times.py --systems whisper,whisper+align,light
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import time
from pathlib import Path

import numpy as np

SYSTEMS = {
    "whisper": ("speech", ["word_times.enabled=false"]),  # Whisper's own word times
    "whisper+align": ("speech", []),  # the default: forced alignment inside each speech span
    "light": ("speech_light", []),  # pocketsphinx, its own (acoustic) word times
}
COMMON = ["diarize.enabled=false", "diarize.keep=all"]


def read_textgrid_words(path: Path) -> list[tuple[str, float, float]]:
    """(word, start_s, end_s) of the tier named ``words`` (short or long TextGrid text format),
    empty intervals dropped."""
    text = re.sub(r"\[\d*\]", " ", path.read_text(encoding="utf-8", errors="replace"))
    tokens = [
        t[1:-1] if t.startswith('"') else float(t)
        for t in re.findall(r'"(?:[^"]|"")*"|-?\d+(?:\.\d+)?(?:e-?\d+)?', text)
    ]
    i = tokens.index("IntervalTier") if "IntervalTier" in tokens else len(tokens)
    out = []
    while i < len(tokens):
        kind, name, n = tokens[i], tokens[i + 1], int(tokens[i + 4])
        body = tokens[i + 5 : i + 5 + 3 * n]
        if kind == "IntervalTier" and name == "words":
            out = [(str(w), float(a), float(b)) for a, b, w in zip(body[::3], body[1::3], body[2::3]) if str(w).strip()]
        i += 5 + 3 * n
    return out


def pair_words(pred: list[tuple[str, float]], truth: list[tuple[str, float]]) -> list[tuple[float, float]]:
    """(predicted start, true start) of words paired by text in order."""
    from sonotell.speech.lexicon import normalise

    a = [normalise(w).replace(" ", "") for w, _ in pred]
    b = [normalise(w).replace(" ", "") for w, _ in truth]
    pairs = []
    for block in difflib.SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks():
        pairs += [(pred[block.a + k][1], truth[block.b + k][1]) for k in range(block.size)]
    return pairs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "real_speech"
    )
    ap.add_argument("--systems", default="whisper,whisper+align,light")
    ap.add_argument("--lexicon", default="abdominal")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    import torch

    from sonotell.io.audio import load_audio
    from sonotell.speech.pipeline import SpeechPipeline

    torch.set_num_threads(1)
    recordings = []
    for tg in sorted((args.data / "textgrids").glob("*.TextGrid")):
        words = read_textgrid_words(tg)
        audio = [p for p in (args.data / "audio").glob(tg.stem + ".*")]
        if words and audio:
            recordings.append((tg.stem, audio[0], words))
    report = {}
    for name in args.systems.split(","):
        config, over = SYSTEMS[name]
        pipe = SpeechPipeline.from_config(config, args.lexicon, COMMON + over)
        errors, per_rec, n_true, t0 = [], {}, 0, time.perf_counter()
        flagged = total = 0
        for stem, path, truth in recordings:
            wav, _ = load_audio(path, 16000)
            result = pipe.process_audio(wav, 16000)
            pairs = pair_words([(w.text, w.start_s) for w in result.words], [(w, a) for w, a, _ in truth])
            e = [p - t for p, t in pairs]
            errors += e
            n_true += len(truth)
            flagged += sum(w.aligned is False for w in result.words)
            total += len(result.words)
            per_rec[stem] = {
                "true_words": len(truth),
                "paired": len(e),
                "median_abs_s": round(float(np.median(np.abs(e))), 3) if e else None,
            }
        ab = np.abs(errors)
        report[name] = {
            "recordings": len(recordings),
            "true_words": n_true,
            "paired": len(errors),
            "median_abs_start_error_s": round(float(np.median(ab)), 3),
            "p90_abs_start_error_s": round(float(np.percentile(ab, 90)), 3),
            "mean_signed_start_error_s": round(float(np.mean(errors)), 3),
            "words_flagged_recogniser_times": flagged,
            "words": total,
            "wall_s": round(time.perf_counter() - t0, 1),
            "per_recording": per_rec,
        }
        print(name, json.dumps({k: v for k, v in report[name].items() if k != "per_recording"}), flush=True)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

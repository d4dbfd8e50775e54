"""Enrolment on real recorded voices (issue 20): enrol speaker B and B's terms are kept, A's rejected.

A: the MFA test speaker (six ``mfa_*`` clips); B: LibriSpeech speaker 61, the first 2.6 s of its recording put
between A's clips (the ``multilingual_ipa_us`` clips are not used: they sound like A, cosine 0.75). Enrolment
samples are other audio of the same people, never in the mix (B: the rest of its recording). The recogniser is a
stand-in that "hears" the term ``liver`` every 0.5 s of whatever it is given, so each kept word says whose speech
was kept.
Needs ``$SONOTELL_DATA/real_speech`` (default ``../shared/data/real_speech``); skipped without it.
"""

import os
from pathlib import Path

import numpy as np
import pytest

from sonotell.config import load_config
from sonotell.speech.pipeline import SpeechPipeline
from sonotell.types import Word

SR = 16000
ROOT = Path(os.environ.get("SONOTELL_DATA") or Path(__file__).resolve().parents[3] / "shared" / "data")
AUDIO = ROOT / "real_speech" / "audio"
A_MIX = ["mfa_affectation", "mfa_breaths", "mfa_creaky", "mfa_exaggerated", "mfa_her", "mfa_long"]
A_ENROL = ["mfa_words", "mfa_uhum"]
B_FILE, B_SPLIT_S = "61-70968-0000", 2.6

pytestmark = pytest.mark.skipif(not AUDIO.is_dir(), reason="no real_speech data")


class HearsLiverEverywhere:
    sample_rate_hz = SR

    def transcribe(self, audio, sample_rate_hz):
        return [Word("liver", t, t + 0.3, 0.9) for t in np.arange(0.0, len(audio) / SR - 0.3, 0.5)]


def load(names):
    from sonotell.io.audio import load_audio

    return [load_audio(AUDIO / f"{n}.flac", SR)[0] for n in names]


def b_parts():
    """B's phrase for the mix and B's enrolment sample: two parts of one recording."""
    (b,) = load([B_FILE])
    return b[: int(B_SPLIT_S * SR)], b[int(B_SPLIT_S * SR) :]


@pytest.fixture(scope="module")
def mix():
    a, b = load(A_MIX), b_parts()[0]
    gap = np.zeros(int(0.6 * SR), np.float32)
    parts, turns, t = [gap], [], len(gap) / SR
    order = [("A", a[0]), ("A", a[1]), ("A", a[2]), ("B", b), ("A", a[3]), ("A", a[4]), ("A", a[5])]
    for who, clip in order:
        parts += [clip, gap]
        turns.append((who, t, t + len(clip) / SR))
        t += (len(clip) + len(gap)) / SR
    return np.concatenate(parts), turns


def kept_share(result, turns, who):
    """Share of the stand-in's words inside ``who``'s turns (0.25 s in from each edge) kept as the clinician's."""
    inside = [
        w
        for w in result.words
        if any(s + 0.25 <= (w.start_s + w.end_s) / 2 <= e - 0.25 for x, s, e in turns if x == who)
    ]
    return sum(w.speaker == "clinician" for w in inside) / len(inside)


def run(wav, enrol=None):
    cfg = load_config("pipelines", "speech", ["word_times.enabled=false"])
    pipe = SpeechPipeline(cfg, "abdominal", backend=HearsLiverEverywhere(), enrolment=enrol)
    return pipe.process_audio(wav, SR)


def test_enrolling_real_speaker_b_keeps_b_and_rejects_a(mix):
    wav, turns = mix
    result = run(wav, b_parts()[1])
    assert result.info["enrolment_used"] and result.info["kept_speaker"] == "clinician"
    assert kept_share(result, turns, "B") >= 0.9
    assert kept_share(result, turns, "A") <= 0.1


def test_enrolling_real_speaker_a_or_nobody_keeps_a_and_rejects_b(mix):
    wav, turns = mix
    for enrol in (None, np.concatenate(load(A_ENROL))):
        result = run(wav, enrol)
        assert kept_share(result, turns, "A") >= 0.9
        assert kept_share(result, turns, "B") <= 0.1

"""benchmarks/bench_speech.py: a recording's script must not depend on which noise conditions are asked for."""

import importlib.util
from pathlib import Path

import pytest

from sonotell.speech.lexicon import load_lexicon

ROOT = Path(__file__).resolve().parents[2]


def bench_speech():
    spec = importlib.util.spec_from_file_location("bench_speech", ROOT / "benchmarks" / "bench_speech.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.shared
def test_clean_only_and_clean_plus_noise_narrate_the_same_scripts(shared_data):
    bench, lung = bench_speech(), load_lexicon("lung")
    clean = bench.make_recordings(lung, 3, 0, [None])["clean"]
    both = bench.make_recordings(lung, 3, 0, [None, 10.0])
    # before the fix, drawing the noise file from the script's stream shifted every later recording's script
    assert [t["events"] for _, t in clean] == [t["events"] for _, t in both["clean"]]
    assert [t["voice"] for _, t in clean] == [t["voice"] for _, t in both["clean"]]
    assert all((a == b).all() for (a, _), (b, _) in zip(clean, both["clean"]))
    assert len({t["noise"] for _, t in both["10 dB"]}) >= 1 and len(both["10 dB"]) == 3


@pytest.mark.shared
def test_physician_comments_become_markup_with_their_negation(shared_data):
    lines = bench_speech().physician_lines(load_lexicon("lung"), shared_data)
    assert len(lines) >= 20
    assert any("(!effusion)" in line for line in lines)  # "no effusion, pleural irregularities, ..."
    assert all("](" in line for line in lines)

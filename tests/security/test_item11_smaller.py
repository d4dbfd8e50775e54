"""Item 11: duplicate term within a label, zero-byte audio, file modes, transcribe's lexicon."""

from __future__ import annotations

import os

import numpy as np
import pytest

from sonotell.errors import InputError
from sonotell.files import write_json, write_text
from sonotell.io.audio import load_audio, save_audio
from sonotell.speech.lexicon import Lexicon
from sonotell.speech.stream import iter_audio_chunks
from tests.security.conftest import run_cli


@pytest.mark.parametrize(
    "terms", [["liver", "liver"], ["hepar", "hepar"], {"terms": ["liver"], "misspellings": ["liver"]}]
)
def test_a_term_listed_twice_within_one_label_is_an_error(terms):
    with pytest.raises(InputError, match="duplicate term 'liver'|duplicate term 'hepar'"):
        Lexicon.from_dict({"labels": {"liver": terms}})
    assert len(Lexicon.from_dict({"labels": {"liver": ["liver", "hepar"]}}).forms) == 2  # own name once: fine


def test_zero_byte_wav_says_audio_is_empty(tmp_path):
    empty = tmp_path / "a.wav"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="a.wav: audio is empty"):
        load_audio(empty)
    with pytest.raises(InputError, match="a.wav: audio is empty"):
        next(iter_audio_chunks(empty))


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_outputs_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        for p in (
            write_text(tmp_path / "a.txt", "x"),
            write_json(tmp_path / "b.json", {}),
            save_audio(tmp_path / "c.wav", np.zeros(800, np.float32), 8000),
        ):
            assert p.stat().st_mode & 0o777 == 0o666 & ~umask, p
    finally:
        os.umask(old)


def test_transcribe_requires_the_lexicon(tmp_path, capsys):
    save_audio(tmp_path / "a.wav", np.zeros(800, np.float32), 8000)
    code, output = run_cli(capsys, ["transcribe", tmp_path / "a.wav"])
    assert code == 2 and "Missing option '--lexicon'" in output, output

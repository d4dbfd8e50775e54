"""Item 9: a malformed --config and a full disk are one-line errors (exit 2), never tracebacks."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from sonotell.errors import ConfigError, OutputError
from sonotell.files import write_json
from tests.security.conftest import one_line_error


@pytest.mark.parametrize("text", ["a: [1, 2\nb: c: d\n", "key: 'unterminated\n", "\t- tab\n", "- a list\n"])
def test_malformed_config_yaml(tmp_path, text, bursts, capsys):
    from sonotell.config import load_config
    from sonotell.io.audio import save_audio

    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match="bad.yaml: "):
        load_config("pipelines", cfg)
    wav, sr, _ = bursts
    audio = save_audio(tmp_path / "a.wav", wav, sr)
    out = one_line_error(capsys, ["transcribe", str(audio), "--lexicon", "lung", "--config", str(cfg)])
    assert "bad.yaml" in out


def test_bad_override_value_is_a_config_error():
    from sonotell.config import apply_overrides

    with pytest.raises(ConfigError, match="not valid YAML"):
        apply_overrides({"a": [0]}, ["a=[1, 2"])


def _disk_full(self, *args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device", str(self))


def test_enospc_names_the_file_and_keeps_the_earlier_output(tmp_path, monkeypatch):
    target = tmp_path / "out.json"
    write_json(target, {"v": 1})
    monkeypatch.setattr(Path, "write_text", _disk_full)
    with pytest.raises(
        OutputError, match=r"out.json: could not be written: no space left on device \(earlier outputs are intact\)"
    ):
        write_json(target, {"v": 2})
    monkeypatch.undo()
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temporary left behind


def test_enospc_in_a_command_is_one_line(tmp_path, bursts, monkeypatch, capsys):
    from tests.speech.test_speech_cmds import FAST, tiny_bench

    bench = tiny_bench(tmp_path / "bench", bursts)
    monkeypatch.setattr(Path, "write_text", _disk_full)
    assert "no space left on device" in one_line_error(
        capsys, ["label", str(bench), "--lexicon", "abdominal", "--out", str(tmp_path / "lab"), *FAST]
    )

"""Item 2: a config names registered backends only; it can never import and call code."""

from __future__ import annotations

import pytest

from sonotell.errors import ConfigError
from sonotell.speech.transcribe import ENTRY_POINT_GROUP, create_backend
from tests.security.conftest import one_line_error


def test_module_attr_backend_in_a_config_runs_nothing(tmp_path, bursts, capsys):
    marker = tmp_path / "X"
    with pytest.raises(ConfigError, match="unknown ASR backend 'subprocess:run'"):
        create_backend({"name": "subprocess:run", "args": f"touch {marker}", "shell": True})
    assert not marker.exists()
    from sonotell.io.audio import save_audio

    wav, sr, _ = bursts
    audio = save_audio(tmp_path / "a.wav", wav, sr)
    cfg = tmp_path / "evil.yaml"
    cfg.write_text(
        f"_base_: speech\ntranscribe:\n  backend: {{name: 'subprocess:run', args: 'touch {marker}', shell: true}}\n"
    )
    out = one_line_error(capsys, ["transcribe", str(audio), "--lexicon", "lung", "--config", str(cfg)])
    assert "unknown ASR backend" in out
    assert not marker.exists()


def test_installed_plugin_backend_is_the_opt_in(monkeypatch):
    import importlib.metadata

    from tests.speech.test_pipeline import KeywordBackend

    class EntryPoint:
        name = "my_asr"

        def load(self):
            return KeywordBackend

    monkeypatch.setattr(
        importlib.metadata, "entry_points", lambda group: [EntryPoint()] if group == ENTRY_POINT_GROUP else []
    )
    assert isinstance(create_backend({"name": "my_asr"}), KeywordBackend)
    with pytest.raises(ConfigError, match="unknown ASR backend 'other'"):
        create_backend({"name": "other"})

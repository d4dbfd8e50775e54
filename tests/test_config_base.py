"""``_base_`` children: a child config accepts every key of its base, and ``_replace_`` swaps a mapping whole."""

import pytest

from sonotell.config import dotted_keys, load_config, packaged_config_names
from sonotell.errors import ConfigError


def _leaves(cfg: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in cfg.items():
        if isinstance(v, dict) and v:
            out.update(_leaves(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


@pytest.mark.parametrize("child", ["speech_light", "speech_small", "baseline", "speech_paper"])
def test_every_key_of_speech_yaml_can_be_set_on_a_child(child):
    base = _leaves(load_config("pipelines", "speech"))
    child_cfg = load_config("pipelines", child)
    # the example: turn_pause_s was refused with speech_light (a partial copy of speech.yaml)
    assert load_config("pipelines", child, ["diarize.turn_pause_s=0.1"])["diarize"]["turn_pause_s"] == 0.1
    for key in base:
        if key.startswith("transcribe.backend."):
            continue  # an ASR backend's own options (open mapping): each backend has its own
        assert key in dotted_keys(child_cfg), f"{child} lacks {key}"
        value = _leaves(child_cfg)[key]
        override = f"{key}={'null' if value is None else str(value).lower() if isinstance(value, bool) else value}"
        assert _leaves(load_config("pipelines", child, [override]))[key] == value


def test_light_backend_replaces_whisper_options_instead_of_merging():
    light = load_config("pipelines", "speech_light")["transcribe"]["backend"]
    assert light["name"] == "pocketsphinx"
    assert "beam_size" not in light and "model_path" not in light and "_replace_" not in light
    assert light["decoder_options"] == {"lw": 10.0, "beam": 1.0e-60, "wbeam": 1.0e-40}
    # the child differs from speech.yaml only where it says so
    speech, light_cfg = _leaves(load_config("pipelines", "speech")), _leaves(load_config("pipelines", "speech_light"))
    differ = {k for k in speech if k in light_cfg and speech[k] != light_cfg[k]}
    assert differ == {"transcribe.backend.name", "word_times.enabled"}


def test_replace_marker_in_a_user_config(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("a: {x: 1, y: 2}\nb: 3\n")
    child = tmp_path / "child.yaml"
    child.write_text(f"_base_: {base}\na: {{_replace_: true, z: 4}}\n")
    assert load_config("pipelines", child) == {"a": {"z": 4}, "b": 3}
    with pytest.raises(ConfigError, match="unknown setting 'a.x'"):
        load_config("pipelines", child, ["a.x=5"])


def test_packaged_speech_configs_are_all_children_of_speech():
    for name in packaged_config_names("pipelines"):
        assert set(_leaves(load_config("pipelines", "speech"))) - set(_leaves(load_config("pipelines", name))) <= {
            k for k in _leaves(load_config("pipelines", "speech")) if k.startswith("transcribe.backend.")
        }, name

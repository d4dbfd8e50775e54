import json
import re

import pytest
import yaml

from sonotell.config import apply_overrides, load_config
from sonotell.errors import ConfigError
from sonotell.files import write_json


def test_overrides_parse_yaml_values_and_nest():
    base = {"train": {"epochs": 200, "lr": 0.1, "sizes": [1]}, "model": {"width": 8}, "name": "a", "extra": None}
    cfg = apply_overrides(
        base, ["train.epochs=3", "model.width=16", "name=x", "train.lr=1", "train.sizes=[2,3]", "extra.k=5"]
    )
    assert cfg == {
        "train": {"epochs": 3, "lr": 1.0, "sizes": [2, 3]},
        "model": {"width": 16},
        "name": "x",
        "extra": {"k": 5},
    }
    assert isinstance(cfg["train"]["lr"], float) and base["train"]["epochs"] == 200


@pytest.mark.parametrize(
    "override, message",
    [
        ("vad.treshold=0.5", "unknown setting 'vad.treshold'; did you mean 'vad.threshold'?"),
        ("vad.threshold=abc", "vad.threshold: 'abc' is not a number"),
        ("diarize.enabled=maybe", "diarize.enabled: 'maybe' is not true/false"),
        ("stream.chunk_s.x=1", "'stream.chunk_s' is not a section"),
        ("vadd.threshold=1", "unknown setting 'vadd.threshold'; did you mean 'vad.threshold'?"),
    ],
)
def test_set_rejects_unknown_keys_and_wrong_types(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config("pipelines", "speech", [override])


def test_open_sections_accept_new_keys_and_bases_keep_them():
    cfg = load_config(
        "pipelines", "speech_small", ["transcribe.backend.decoder_options.pbeam=1.0e-30", "transcribe.backend.model=x"]
    )
    assert cfg["transcribe"]["backend"]["decoder_options"]["pbeam"] == 1.0e-30
    assert cfg["transcribe"]["backend"]["model"] == "x"
    assert "_open_" not in cfg


def test_sections_check_ranges_and_names():
    from sonotell.speech.pipeline import SpeechPipeline
    from sonotell.speech.vad import VadConfig

    with pytest.raises(ConfigError, match=re.escape("vad.threshold: 2.0 is above 1.0")):
        VadConfig.from_dict({"threshold": 2})
    with pytest.raises(ConfigError, match=re.escape("unknown setting 'vad.treshold'; did you mean 'vad.threshold'?")):
        VadConfig.from_dict({"treshold": 0.5})
    with pytest.raises(ConfigError, match=re.escape("unknown setting 'alinge'; did you mean 'align'?")):
        SpeechPipeline({"alinge": {}}, "abdominal")


def test_library_defaults_are_the_yaml_defaults():
    from sonotell.speech.align import AlignConfig
    from sonotell.speech.clean import CleanConfig
    from sonotell.speech.diarize import DiarizeConfig
    from sonotell.speech.stream import StreamConfig
    from sonotell.speech.transcribe import TranscribeConfig
    from sonotell.speech.vad import VadConfig

    yaml_cfg = load_config("pipelines", "speech")
    for cls in (AlignConfig, CleanConfig, DiarizeConfig, StreamConfig, TranscribeConfig, VadConfig):
        assert cls().to_dict() == yaml_cfg[cls.SECTION], cls
    # the values the issue found disagreeing between the code and the YAML
    assert (DiarizeConfig().mode, DiarizeConfig().window_s, DiarizeConfig().hop_s) == ("windows", 1.0, 0.25)
    assert VadConfig().threshold == 0.35


def test_missing_packaged_config_lists_what_exists():
    with pytest.raises(ConfigError, match="packaged: baseline, speech, speech_light, speech_paper, speech_small"):
        load_config("pipelines", "spech")


def test_base_config_merges(tmp_path):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump({"a": 1, "b": {"c": 2, "d": 3}}))
    (tmp_path / "child.yaml").write_text(yaml.safe_dump({"_base_": str(tmp_path / "base.yaml"), "b": {"c": 9}}))
    assert load_config("x", tmp_path / "child.yaml") == {"a": 1, "b": {"c": 9, "d": 3}}


def test_bad_override_and_missing_config(tmp_path):
    with pytest.raises(ConfigError, match="expected key=value"):
        apply_overrides({}, ["oops"])
    with pytest.raises(ConfigError, match="no such config"):
        load_config("x", tmp_path / "nope.yaml")


def test_write_json_atomic(tmp_path):
    p = write_json(tmp_path / "d" / "r.json", {"x": 1})
    assert json.loads(p.read_text()) == {"x": 1}

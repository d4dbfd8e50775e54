import json

import pytest
import yaml

from sonotell.config import apply_overrides, load_config
from sonotell.errors import ConfigError
from sonotell.files import write_json


def test_overrides_parse_yaml_values_and_nest():
    cfg = apply_overrides({"train": {"epochs": 200}}, ["train.epochs=3", "model.width=16", "name=x"])
    assert cfg == {"train": {"epochs": 3}, "model": {"width": 16}, "name": "x"}


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

"""Recipe settings come from their YAML (no fallback in code), and no recipe reaches up into ``bench``."""

import ast
from pathlib import Path

import pytest

from sonotell.config import load_config
from sonotell.errors import ConfigError

METHODS = Path(__file__).resolve().parents[2] / "src" / "sonotell" / "methods"


def test_a_partial_downstream_config_takes_the_yaml_values_the_code_once_contradicted():
    from sonotell.methods.downstream import DownstreamConfig

    typed = DownstreamConfig.of({"finetune": {"epochs": 2}})
    paper = load_config("methods/downstream", "paper")
    assert typed.finetune.epochs == 2  # what the caller gave
    # issue 23: the code said n_frames 8, dropout 0.0, epochs 5; the YAML 16, 0.2, 30
    assert (
        (typed.data.n_frames, typed.finetune.dropout)
        == (16, 0.2)
        == (
            paper["data"]["n_frames"],
            paper["finetune"]["dropout"],
        )
    )
    assert DownstreamConfig.of({}).finetune.epochs == 30
    assert DownstreamConfig.of({"folds": 3}).folds == 3


def test_voice_label_keyword_defaults_are_the_papers_and_small_overrides_them():
    from sonotell.methods.voice_label import KeywordConfig

    assert (KeywordConfig().n_voices, KeywordConfig().test_voices) == (24, 6)  # code said 12 / 3
    small = load_config("methods/voice_label", "small")["keyword_pretrain"]
    assert (KeywordConfig.from_dict(small).n_voices, KeywordConfig.from_dict(small).test_voices) == (12, 3)


def test_typed_sections_refuse_unknown_keys_and_bad_values():
    from sonotell.methods.downstream import FinetuneConfig
    from sonotell.methods.saliency_downstream import SaliencyConfig

    with pytest.raises(ConfigError, match="unknown setting 'finetune.epoch'; did you mean 'finetune.epochs'"):
        FinetuneConfig.from_dict({"epoch": 3})
    with pytest.raises(ConfigError, match="finetune.dropout: 1.5 is above 1"):
        FinetuneConfig.from_dict({"dropout": 1.5})
    assert SaliencyConfig().hidden == load_config("methods/saliency_downstream", "paper")["hidden"]


def test_pretraining_refuses_a_train_section_that_drops_a_setting():
    from sonotell.methods.pretrain import PretrainTrainConfig, resolve_config

    cfg = resolve_config("dual", "small")
    assert PretrainTrainConfig.of(cfg).epochs == cfg["train"]["epochs"]
    del cfg["train"]["batch_size"]
    with pytest.raises(ConfigError, match="missing setting.*train.batch_size"):
        PretrainTrainConfig.of(cfg)


def test_multilabel_section_reads_its_keys_from_a_wider_mapping():
    from sonotell.methods.finetune_multilabel import MultiLabelConfig

    cfg = MultiLabelConfig.pick({"steps": 7, "weak_augment": {"gain": 0.1}})
    assert cfg.steps == 7 and cfg.threshold == load_config("methods/fixmatch", "small")["threshold"]
    assert MultiLabelConfig().steps == 100  # code said 200; fixmatch/small.yaml (the base) says 100


def test_no_recipe_imports_bench():
    offenders = []
    for path in sorted(METHODS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            offenders += [
                f"{path.name}: {n}" for n in names if n == "sonotell.bench" or n.startswith("sonotell.bench.")
            ]
    assert offenders == []

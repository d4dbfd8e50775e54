import numpy as np
import pytest
import torch

from sonotell.errors import ConfigError
from sonotell.methods.pretrain import collate_clips, load_pretrained, model_from_config, resolve_config, split_subjects
from sonotell.train import save_model_checkpoint


def test_split_subjects_is_disjoint_deterministic_and_keeps_training_data():
    scans = {f"s{i}": f"p{i // 2}" for i in range(10)}  # 5 subjects x 2 scans
    train, val = split_subjects(scans, 0.4, seed=0)
    assert (train, val) == split_subjects(scans, 0.4, seed=0)
    assert len(val) == 4 and len(train) == 6
    assert not {scans[s] for s in train} & {scans[s] for s in val}
    train, val = split_subjects(scans, 1.0, seed=0)
    assert train  # never every subject in validation
    assert split_subjects({"a": "p"}, 0.5, seed=0) == (["a"], [])


def test_collate_stacks_tensors_and_keeps_strings():
    items = [
        {"frames": np.zeros((2, 3, 3), np.float32), "text": "a", "time_s": 0.5, "label": 1, "mask": torch.zeros(3, 3)},
        {"frames": np.ones((2, 3, 3), np.float32), "text": "b", "time_s": 1.5, "label": -1},
    ]
    batch = collate_clips(items)
    assert batch["frames"].shape == (2, 2, 3, 3) and batch["text"] == ["a", "b"]
    assert batch["time_s"].tolist() == [0.5, 1.5] and batch["label"].tolist() == [1, -1]
    assert "mask" not in batch  # only one item has it


def test_configs_resolve_and_unknown_recipe():
    for recipe in ("show_from_tell", "dual", "av_contrastive"):
        for size in ("small", "paper"):
            cfg = resolve_config(recipe, size)
            assert {"model", "data", "train"} <= set(cfg)
    assert resolve_config("show_from_tell", "paper")["data"]["audio_before_s"] == 0.3
    assert (
        resolve_config("dual", "paper")["model"]["tau"] == 0.1 and resolve_config("dual", "paper")["model"]["pi"] == 0.5
    )
    with pytest.raises(ConfigError, match="unknown pretraining recipe"):
        resolve_config("simclr")


def test_checkpoint_round_trip_and_refusals(tmp_path):
    cfg = resolve_config("av_contrastive", "small")
    cfg["model"]["name"] = "av_contrastive"
    torch.manual_seed(0)
    model = model_from_config("av_contrastive", cfg)
    path = save_model_checkpoint(tmp_path / "encoder.pt", model, "av_contrastive", cfg)
    loaded = load_pretrained(path, expected="av_contrastive")
    for k, v in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v)
    other = save_model_checkpoint(tmp_path / "other.pt", torch.nn.Linear(2, 2), "voice_label", {})
    with pytest.raises(ConfigError, match="'voice_label' is not a pretraining recipe"):
        load_pretrained(other)


def test_task_step_gives_every_parameter_a_gradient_even_when_terms_are_skipped():
    # Under DDP a parameter without a gradient on one rank stalls every rank.
    from sonotell.methods.pretrain import PretrainTask
    from tests.methods.ssl_helpers import synthetic_batch

    torch.manual_seed(0)
    cfg = resolve_config("dual", "small")
    model = model_from_config("dual", cfg)
    task = PretrainTask(model, recipe="dual", config=cfg)
    batch = synthetic_batch(4, texts=["", "", "", "liver"])  # one speech clip: MMSL has nothing to rank
    out = task.step(batch)
    assert out["mmsl"].item() == 0.0
    out["loss"].backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing[:3]


def test_scan_group_batches_hold_same_scan_groups():
    import torch

    from sonotell.methods.pretrain import ScanGroupBatchSampler

    scan_ids = ["a"] * 5 + ["b"] * 4 + ["c"] * 3
    sampler = ScanGroupBatchSampler(scan_ids, 4, 2, torch.Generator().manual_seed(0))
    batches = list(sampler)
    assert len(batches) == len(sampler) == 3
    flat = [i for b in batches for i in b]
    assert len(set(flat)) == len(flat) == 12  # each clip once per epoch
    # groups a:[2,2,1] b:[2,2] c:[2,1] stay contiguous: the five 2-clip groups give >= 5
    # neighbouring same-scan pairs (a plain shuffle of 12 clips gives ~3.3 on average)
    assert sum(scan_ids[i] == scan_ids[j] for i, j in zip(flat, flat[1:])) >= 5

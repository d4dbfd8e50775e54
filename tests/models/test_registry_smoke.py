"""timm-style smoke test: every registered model builds at every packaged size, and a missing size is an error."""

import pytest
import torch

from sonotell.errors import ConfigError
from sonotell.models.registry import create_model, list_models, model_configs

# what a model cannot be built without (the rest comes from its config)
REQUIRED = {
    "voice_label": {"num_classes": 3},
    "show_from_tell": {
        "text": {"name": "text_embedding", "config": "small", "vocabulary": ["<pad>", "<unk>", "liver", "kidney"]}
    },
}
CASES = [(name, size) for name in list_models() for size in (model_configs(name) or [None])]


def test_every_recipe_network_and_encoder_is_registered():
    assert {"image_resnet", "video_r2plus1d", "audio_cnn14", "show_from_tell", "dual", "av_contrastive"} <= set(
        list_models()
    )
    assert all(size in ("paper", "small", "keywords") or size is None for _, size in CASES)


@pytest.mark.parametrize("name, size", CASES, ids=[f"{n}-{s}" for n, s in CASES])
def test_builds_and_round_trips_its_weights(name, size):
    kwargs = REQUIRED.get(name, {})
    torch.manual_seed(0)
    net = create_model(name, size, **kwargs)
    assert sum(p.numel() for p in net.parameters()) > 0
    if size != "paper":  # paper sizes are large: built once, not twice
        # the same name + size builds the same architecture: its weights load strictly
        create_model(name, size, **kwargs).load_state_dict(net.state_dict(), strict=True)


def test_a_missing_size_lists_the_packaged_ones():
    with pytest.raises(ConfigError, match=r"model 'show_from_tell' has no config 'paper'; packaged: none"):
        create_model("show_from_tell", "paper")
    with pytest.raises(ConfigError, match=r"model 'image_resnet' has no config 'huge'; packaged: paper, small"):
        create_model("image_resnet", "huge")

import pytest
import torch

from sonotell.models import create_model
from sonotell.models.image import ImageEncoder

torch.set_num_threads(1)


@pytest.mark.parametrize("name", ["image_resnet", "image_resnext"])
def test_small_configs(name):
    net = create_model(name, "small").eval()
    x = torch.rand(3, 64, 64)
    emb = net(x)
    assert emb.shape == (3, net.out_dim)
    torch.testing.assert_close(net.feature_map(x).mean(dim=(2, 3)), emb)


def test_resnext_uses_grouped_convolutions():
    net = ImageEncoder(arch="resnext", widths=(8, 16, 32, 64), blocks=(1, 1, 1, 1), cardinality=4)
    groups = [m.groups for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert groups and all(g == 4 for g in groups)
    assert net.out_dim == 64 * 2


def test_paper_resnet18_parameter_count():
    n = sum(p.numel() for p in create_model("image_resnet", "paper").parameters())
    # torchvision resnet18 without fc, 3 input channels: 11.18M; one channel saves 6272
    assert abs(n - (11_176_512 - 6272)) < 20_000


def test_bad_arch_and_shape():
    with pytest.raises(ValueError, match="arch"):
        ImageEncoder(arch="vgg")
    with pytest.raises(ValueError, match="expects"):
        ImageEncoder(widths=(4, 4, 4, 4), blocks=(1, 1, 1, 1))(torch.rand(2, 3, 32, 32))

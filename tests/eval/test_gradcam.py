import numpy as np
import torch
from torch import nn

from sonotell.eval.gradcam import GradCAM, save_overlay


class LinearCAM(nn.Module):
    """features = identity (C, h, w); score_k = sum_c W[k, c] * mean_{h,w} A_c + b_k."""

    def __init__(self, weight):
        super().__init__()
        self.features = nn.Identity()
        self.fc = nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            self.fc.weight.copy_(weight)
            self.fc.bias.zero_()

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))


def test_gradcam_equals_hand_computed_cam_for_linear_model():
    w = torch.tensor([[1.0, -2.0, 0.5], [0.0, 1.0, 1.0]])
    x = torch.rand(2, 3, 4, 5)
    model = LinearCAM(w)
    cam = GradCAM(model, model.features)
    out = cam(x, target=0, normalize=False)
    # dy/dA_c = W[0, c] / (h w) everywhere -> alpha_c = W[0, c] / 20
    expected = torch.relu((w[0].view(1, 3, 1, 1) / 20.0 * x).sum(1))
    torch.testing.assert_close(out, expected)
    normed = cam(x, target=[0, 1], normalize=True)
    for b, k in enumerate([0, 1]):
        ref = torch.relu((w[k].view(3, 1, 1) / 20.0 * x[b]).sum(0))
        torch.testing.assert_close(normed[b], ref / ref.max())


def test_gradcam_on_voice_label_image_branch_mismatched_voice(tmp_path):
    from sonotell.models.voice_label import VoiceLabelNet

    torch.manual_seed(0)
    net = VoiceLabelNet(
        num_classes=3, image_widths=[4, 4, 8, 8, 8], image_pools=4, spec_bins=32, voice_widths=[4] * 6, channels=8
    )
    frames, spec = torch.rand(1, 25, 32, 32), torch.rand(2, 32, 66)
    cam = GradCAM(net, net.image_branch.last_conv)
    a = cam(frames, spec[:1], target=1)
    b = cam(frames, spec[1:], target=1)  # same image, another voice: the explanation may change
    assert a.shape == (1, 2, 2) and float(a.max()) <= 1.0 and float(a.min()) >= 0.0
    assert net.training  # restored
    png = save_overlay(tmp_path / "o.png", frames[0, 12].numpy(), b[0], title="voice 2")
    from PIL import Image

    img = np.asarray(Image.open(png))
    assert img.ndim == 3 and img.shape[2] == 3 and img.shape[1] >= 192

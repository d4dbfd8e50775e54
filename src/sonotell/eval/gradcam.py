"""Grad-CAM (Selvaraju et al. 2017) on any layer of any model, plus PNG overlays.

For a target class score y and the activations A (C, h, w) of a layer,
``CAM = ReLU(sum_c alpha_c A_c)`` with ``alpha_c = mean_{h,w} dy/dA_c``. ``VoiceLabelNet``
uses it on its image branch for any (image, voice) pair, matched or mismatched (the
paper's Fig. 7): the voice only enters through the score being explained.

Example:
    >>> cam = GradCAM(net, net.image_branch.last_conv)  # doctest: +SKIP
    >>> heat = cam(frames, spec, target=2)  # (B, h, w), each map scaled to [0, 1]  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn


class GradCAM:
    """Grad-CAM of ``model``'s output at ``layer``; call it with the model's own arguments."""

    def __init__(self, model: nn.Module, layer: nn.Module):
        self.model, self.layer = model, layer

    def __call__(
        self, *inputs, target: int | Sequence[int] | torch.Tensor | None = None, normalize: bool = True, **kwargs
    ) -> torch.Tensor:
        """(B, h, w) maps for class ``target`` (per sample, or the predicted class when ``None``)."""
        store: dict = {}

        def keep(module, args, output):
            if not output.requires_grad:  # a layer fed straight by the input: make it a leaf we can explain
                output = output.detach().requires_grad_(True)
            else:
                output.retain_grad()
            store["act"] = output
            return output

        handle = self.layer.register_forward_hook(keep)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.enable_grad():
                scores = self.model(*inputs, **kwargs)
                if target is None:
                    target_t = scores.argmax(dim=1)
                else:
                    target_t = torch.as_tensor(target, device=scores.device).reshape(-1).expand(scores.shape[0])
                picked = scores.gather(1, target_t.view(-1, 1)).sum()
                self.model.zero_grad(set_to_none=True)
                picked.backward()
        finally:
            handle.remove()
            self.model.train(was_training)
        act, grad = store["act"], store["act"].grad
        weights = grad.mean(dim=tuple(range(2, grad.dim())), keepdim=True)
        cam = torch.relu((weights * act).sum(dim=1)).detach()
        if normalize:
            flat = cam.flatten(1)
            hi = flat.max(dim=1).values.view(-1, *([1] * (cam.dim() - 1)))
            cam = torch.where(hi > 0, cam / hi.clamp_min(1e-12), torch.zeros_like(cam))
        return cam


def save_overlay(path: str | Path, frame: np.ndarray, heat, title: str | None = None, alpha: float = 0.45) -> Path:
    """Write ``heat`` (h, w) upsampled over the greyscale ``frame`` (H, W) as a PNG (atomically)."""
    from PIL import Image, ImageDraw

    from sonotell.eval.localisation import overlay
    from sonotell.files import atomic_path

    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        frame = (np.clip(frame, 0, 1) * 255).astype(np.uint8)
    heat = heat.detach().cpu().numpy() if hasattr(heat, "detach") else np.asarray(heat)
    rgb = overlay(frame, heat, alpha=alpha)
    img = Image.fromarray(rgb)
    if img.width < 192:  # small working frames: enlarge so a person can read the map
        scale = int(np.ceil(192 / img.width))
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    if title:
        canvas = Image.new("RGB", (img.width, img.height + 14), (0, 0, 0))
        canvas.paste(img, (0, 14))
        ImageDraw.Draw(canvas).text((2, 1), title, fill=(255, 255, 255))
        img = canvas
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
    return Path(path)

"""Dual representation learning (Gridach et al., ISBI 2024) from ultrasound video and sonographer audio.

Method:

* **Encoders**: an R(2+1)D network for the clip, a 2D ResNet for one image sampled from the
  clip (a random frame while training, the middle one otherwise) and a CNN14-style log-mel
  network for the speech of the clip's window.
* **MMCL** (eqs. 3-8, ``losses/mmcl.py``): projected embeddings; the fused embedding
  ``F_va = F_a + V(F_v, F_a)`` is contrasted with the video and with the image, and video with
  image; ``tau = 0.1``, ``pi = 0.5``.
* **MMSL** (``losses/mmsl.py``): video and audio features mapped by FC + BN, cosine
  similarity, hardest-negative triplet ranking.
* ``L = L_MMCL + lambda * L_MMSL`` (``mmsl_weight``, 1 by default).

Negatives are other-scan or shifted pairs of the batch; clips without speech are skipped by
the audio terms (``no_speech: skip``) or kept only as negatives (``negative``).

Example:
    >>> net = Dual()  # small default encoders  # doctest: +SKIP
    >>> net.encode_image(torch.rand(2, 64, 64)).shape  # doctest: +SKIP
"""

from __future__ import annotations

import torch
from torch import nn

from sonotell.losses.mmcl import MMCLoss
from sonotell.losses.mmsl import MMSLoss
from sonotell.losses.pairs import PairPlan, require_pairs, speech_mask, zero_like_graph
from sonotell.models.encoders import build_encoder
from sonotell.models.registry import register_model

SMALL_VIDEO = {"name": "video_r2plus1d", "config": "small"}
SMALL_IMAGE = {"name": "image_resnet", "config": "small"}
SMALL_AUDIO = {"name": "audio_cnn14", "config": "small"}


class Dual(nn.Module):
    """Video, image and audio encoders trained with MMCL + MMSL.

    Args:
        video, image, audio: encoder sections ``{name, config, **overrides}``.
        embed_dim: size of the projected embeddings and of the MMSL joint space.
        tau, pi: MMCL temperature and weighting (paper: 0.1, 0.5).
        margin: MMSL triplet margin.
        mmsl_weight: lambda of the MMSL term.
        no_speech, min_shift_s: as in ``sonotell.losses.pairs.PairPlan``.
    """

    def __init__(
        self,
        video: dict | None = None,
        image: dict | None = None,
        audio: dict | None = None,
        embed_dim: int = 64,
        tau: float = 0.1,
        pi: float = 0.5,
        margin: float = 0.2,
        mmsl_weight: float = 1.0,
        no_speech: str = "skip",
        min_shift_s: float = 2.0,
    ):
        super().__init__()
        self.video = build_encoder(video or SMALL_VIDEO)
        self.image = build_encoder(image or SMALL_IMAGE)
        self.audio = build_encoder(audio or SMALL_AUDIO)
        self.video_proj = nn.Linear(self.video.out_dim, embed_dim)
        self.image_proj = nn.Linear(self.image.out_dim, embed_dim)
        self.audio_proj = nn.Linear(self.audio.out_dim, embed_dim)
        self.mmcl = MMCLoss(embed_dim, tau=tau, pi=pi)
        self.mmsl = MMSLoss(self.video.out_dim, self.audio.out_dim, embed_dim, margin=margin)
        self.mmsl_weight, self.no_speech, self.min_shift_s = mmsl_weight, no_speech, min_shift_s

    def encode_video(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, H, W) -> (B, D_video)."""
        return self.video(frames)

    def encode_image(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, H, W) single frames -> (B, D_image)."""
        return self.image(frames)

    def encode_audio(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, S) -> (B, D_audio)."""
        return self.audio(wav)

    def sample_image(self, frames: torch.Tensor) -> torch.Tensor:
        """One frame per clip: random while training (an augmentation), the middle one otherwise."""
        b, t = frames.shape[:2]
        if self.training:
            idx = torch.randint(0, t, (b,))
        else:
            idx = torch.full((b,), t // 2)
        return frames[torch.arange(b), idx]

    def losses(self, batch: dict) -> dict:
        """``{"loss", "mmcl", "mmsl", "l_v", "l_i", "l_vi"}`` for a batch of aligned clips."""
        frames = batch["frames"]
        require_pairs(frames.shape[0], "dual")
        v = self.video(frames)
        i = self.image(self.sample_image(frames))
        a = self.audio(batch["audio"])
        plan = PairPlan(
            batch["scan_id"],
            batch.get("time_s", torch.zeros(len(v))),
            speech_mask(batch),
            self.no_speech,
            self.min_shift_s,
        )
        mmcl = self.mmcl(
            self.video_proj(v), self.image_proj(i), self.audio_proj(a), valid=plan.anchors, ignore=plan.ignore
        )
        rows = plan.anchors.nonzero().squeeze(1)
        if len(rows) >= 2:  # similarity learning only between clips that carry speech
            mmsl = self.mmsl(v[rows], a[rows], ignore=plan.ignore[rows][:, rows])
        else:
            mmsl = zero_like_graph(v, a)
        out = {k: val for k, val in mmcl.items() if k != "loss"}
        out.update(mmcl=mmcl["loss"], mmsl=mmsl, loss=mmcl["loss"] + self.mmsl_weight * mmsl)
        return out


@register_model("dual")
def dual(**kwargs) -> Dual:
    """The dual-representation model; its config is the ``model`` section of ``configs/methods/dual``."""
    return Dual(**kwargs)

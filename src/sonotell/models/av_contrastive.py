"""Self-supervised contrastive video-speech learning (Jiao et al., MICCAI 2020).

Method:

* **Encoders**: an R(2+1)D network for the ultrasound clip and a 2D CNN on the
  log-spectrogram of the sonographer's speech in the same window.
* **Correspondence**: the two embeddings are concatenated and classified as aligned or not
  (negatives: shifted or other-scan pairs), weight ``correspondence``.
* **Cross-modal contrastive**: InfoNCE between projected video and speech embeddings,
  weight ``contrastive``, with **affinity-aware self-paced learning**: each positive pair's
  term is weighted by its affinity (cosine similarity); the most similar ``start_fraction``
  of pairs count at first, and the admitted fraction grows to all pairs over
  ``epochs_to_all`` epochs (``losses/self_paced.py``).

Example:
    >>> net = AVContrastive()  # small default encoders  # doctest: +SKIP
    >>> net.losses(batch)["loss"]  # doctest: +SKIP
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sonotell.losses.correspondence import CorrespondenceLoss
from sonotell.losses.infonce import InfoNCE
from sonotell.losses.pairs import PairPlan, require_pairs, speech_mask, zero_like_graph
from sonotell.losses.self_paced import SelfPacedWeighting
from sonotell.models.encoders import build_encoder
from sonotell.models.fusion import build_fusion
from sonotell.models.registry import register_model

SMALL_VIDEO = {"name": "video_r2plus1d", "config": "small"}
SMALL_AUDIO = {"name": "audio_spec2d", "config": "small"}


class AVContrastive(nn.Module):
    """Video and speech encoders with correspondence + self-paced cross-modal contrastive learning.

    Args:
        video, audio: encoder sections.
        embed_dim: contrastive space size (and fused feature size).
        temperature: InfoNCE temperature.
        weights: ``{correspondence, contrastive}``.
        self_paced: ``{start_fraction, epochs_to_all, mode}`` (``enabled: false`` turns it off).
        no_speech, min_shift_s: as in ``sonotell.losses.pairs.PairPlan``.
    """

    def __init__(
        self,
        video: dict | None = None,
        audio: dict | None = None,
        embed_dim: int = 64,
        temperature: float = 0.1,
        weights: dict | None = None,
        self_paced: dict | None = None,
        fusion: str = "concat",
        no_speech: str = "skip",
        min_shift_s: float = 2.0,
    ):
        super().__init__()
        self.video = build_encoder(video or SMALL_VIDEO)
        self.audio = build_encoder(audio or SMALL_AUDIO)
        self.fuse = build_fusion(fusion, self.video.out_dim, self.audio.out_dim, embed_dim)
        self.cor_head = nn.Linear(embed_dim, 1)
        self.video_proj = nn.Linear(self.video.out_dim, embed_dim)
        self.audio_proj = nn.Linear(self.audio.out_dim, embed_dim)
        self.correspondence = CorrespondenceLoss()
        self.contrastive = InfoNCE(temperature=temperature, reduction="none")
        spl = dict(self_paced or {})
        self.spl = (
            SelfPacedWeighting(**{k: v for k, v in spl.items() if k != "enabled"}) if spl.get("enabled", True) else None
        )
        self.weights = {"correspondence": 1.0, "contrastive": 1.0, **(weights or {})}
        self.no_speech, self.min_shift_s = no_speech, min_shift_s

    def set_epoch(self, epoch: int) -> None:
        if self.spl is not None:
            self.spl.set_epoch(epoch)

    def encode_video(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, H, W) -> (B, D_video)."""
        return self.video(frames)

    def encode_audio(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, S) -> (B, D_audio)."""
        return self.audio(wav)

    def losses(self, batch: dict) -> dict:
        """``{"loss", "cor", "con", "acc", "spl_fraction"}`` for a batch of aligned clips."""
        frames = batch["frames"]
        require_pairs(frames.shape[0], "av_contrastive")
        vmap = self.video.feature_map(frames)
        v = vmap.mean(dim=(2, 3))
        a = self.audio(batch["audio"])
        plan = PairPlan(
            batch["scan_id"],
            batch.get("time_s", torch.zeros(len(v))),
            speech_mask(batch),
            self.no_speech,
            self.min_shift_s,
        )
        out = {}
        vi, ai, target = plan.correspondence_pairs()
        if len(target) >= 2:
            logits = self.cor_head(self.fuse(vmap[vi], a[ai])).squeeze(1)
            out["cor"] = self.correspondence(logits, target)
            out["acc"] = self.correspondence.accuracy(logits.detach(), target)
        else:
            out["cor"] = zero_like_graph(v, a)
        if plan.enough_anchors():
            pv, pa = self.video_proj(v), self.audio_proj(a)
            per_anchor = self.contrastive(pv, pa, ignore=plan.ignore)[plan.anchors]
            if self.spl is not None:
                affinity = F.cosine_similarity(pv, pa, dim=1)[plan.anchors]
                out["con"] = self.spl(per_anchor, affinity)
                out["spl_fraction"] = torch.tensor(self.spl.fraction)
            else:
                out["con"] = per_anchor.mean()
        else:
            out["con"] = zero_like_graph(v, a)
        out["loss"] = self.weights["correspondence"] * out["cor"] + self.weights["contrastive"] * out["con"]
        return out


@register_model("av_contrastive")
def av_contrastive(**kwargs) -> AVContrastive:
    """The Jiao 2020 model; its config is the ``model`` section of ``configs/methods/av_contrastive``."""
    return AVContrastive(**kwargs)

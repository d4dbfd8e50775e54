"""Show from Tell (Jiao et al.): audio-visual and text-visual self-supervision from narrated scans.

Method, as in the paper's Section 2:

* **Encoders**: an R(2+1)D video network gives a spatial feature map of the clip; a 2D CNN
  on the log-spectrogram encodes the sonographer's speech in a window of +-0.3 s around the
  video time (``data.audio_before_s = audio_after_s = 0.3``); the transcript of the same
  window passes the **selective information gating** (SIG: outlier filtering or keyword
  spotting, ``models/sig.py``) into a word-embedding text encoder with two FC layers.
* **Fusion**: spatial-aware -- the audio (text) vector multiplies every position of the
  visual map, then FC and pooling (Fig. 2d). The correspondence classifier scores every
  position and the clip takes the best one, so its per-position score is the audio-guided
  localisation map (``localisation_map``).
* **Objectives**: for video-audio, binary correspondence on the fused feature (aligned vs.
  shifted / other-scan pairs, weight alpha) and cross-modal contrastive InfoNCE on
  projected embeddings (weight beta); the same two for video-text (gamma, delta).
  ``L = alpha L_cor^va + beta L_con^va + gamma L_cor^vt + delta L_con^vt``, equal weights
  by default.

**Keyword speech input** (``audio_source: keywords``, config ``keywords``): the raw-audio
encoder, trained from scratch on a few dozen sweeps, never learns words; this variant feeds
instead the lexicon terms the speech pipeline spotted in the window (SIG's keyword mode:
only keywords pass; ``models/keyword_terms.py``), one learned embedding per term. Every
term's embedding goes through the same spatial-aware fusion, a smooth maximum over positions
(log-sum-exp or top-k mean, ``models/fusion.smooth_max``) gives its frame-level score, and
``losses/term_mil.py`` trains said terms against terms *not said* in that window
(correspondence + InfoNCE over terms: multiple-instance learning). The localisation map is
the per-position score of the spoken term(s).

Clips without speech are skipped or used as negatives (``no_speech``); a transcript in
which SIG finds nothing (no lexicon term) leaves the text terms of that clip out the same way.

Example:
    >>> from sonotell.models import create_model
    >>> net = create_model("show_from_tell", None)  # small default encoders  # doctest: +SKIP
    >>> net.localisation_map(torch.rand(1, 8, 64, 64), torch.randn(1, 9600)).shape  # doctest: +SKIP
    torch.Size([1, 4, 4])
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from sonotell.config import Section, setting
from sonotell.errors import ConfigError
from sonotell.losses.correspondence import CorrespondenceLoss
from sonotell.losses.infonce import InfoNCE
from sonotell.losses.pairs import PairPlan, require_pairs, speech_mask, zero_like_graph
from sonotell.losses.term_mil import TermMILLoss
from sonotell.models.encoders import build_encoder
from sonotell.models.fusion import SpatialFusion, build_fusion, smooth_max
from sonotell.models.registry import register_model
from sonotell.models.sig import SelectiveInformationGate

SMALL_VIDEO = {"name": "video_r2plus1d", "config": "small"}
SMALL_AUDIO = {"name": "audio_spec2d", "config": "small"}
SMALL_TEXT = {"name": "text_embedding", "config": "small"}


@dataclass(frozen=True)
class SigConfig(Section):
    """Selective information gating of the text (``model.sig``; defaults: ``show_from_tell/paper.yaml``)."""

    SECTION = "model.sig"
    mode: str = setting("methods/show_from_tell", "paper", "model", "sig", "mode")  # SIG checks it
    lexicon: Any = setting("methods/show_from_tell", "paper", "model", "sig", "lexicon")  # a name or {label: terms}
    min_confidence: float = setting("methods/show_from_tell", "paper", "model", "sig", "min_confidence", ge=0.0)


_keyword_default = functools.partial(setting, "methods/show_from_tell", "keywords", "model", "keywords")


@dataclass(frozen=True)
class KeywordInputConfig(Section):
    """The keyword speech input (``model.keywords``; defaults: ``show_from_tell/keywords.yaml``)."""

    SECTION = "model.keywords"
    lexicon: Any = _keyword_default("lexicon")  # a packaged lexicon's name or {label: terms}
    labels: list[str] | None = _keyword_default("labels")
    dim: int = _keyword_default("dim", ge=1)
    pool: str = _keyword_default("pool", choices=("lse", "topk", "max", "mean"))
    r: float = _keyword_default("r", gt=0.0)
    k: float = _keyword_default("k", gt=0.0, le=1.0)
    negatives: int = _keyword_default("negatives", ge=1)
    temperature: float = _keyword_default("temperature", gt=0.0)
    map: str = _keyword_default("map", choices=("score", "contrast"))
    negatives_from: str = _keyword_default("negatives_from", choices=("window", "scan"))
    augment: bool = _keyword_default("augment")


class ShowFromTell(nn.Module):
    """Video + audio (+ text) encoders, spatial-aware fusion, correspondence and contrastive heads.

    Args:
        video, audio, text: encoder sections ``{name, config, **overrides}``; ``text`` carries
            the ``vocabulary`` built from the training transcripts.
        fusion: ``spatial`` (paper), ``concat`` or ``matrix`` (the "without spatial fusion" ablations).
        embed_dim: joint space of the contrastive terms.
        use_audio, use_text: the "without audio" / "without text" ablations.
        sig: ``{mode: outlier|keyword|none, lexicon: [...], min_confidence}``.
        weights: ``{alpha, beta, gamma, delta}`` of the four terms.
        temperature: InfoNCE temperature.
        no_speech: ``skip`` or ``negative``.
        min_shift_s: a same-scan pair at least this far apart is a negative.
        same_scan_negatives: draw the correspondence negative from the clip's own scan when the
            batch has one (pair with ``train.clips_per_scan`` > 1).
        audio_source: ``waveform`` (the paper: spectrogram CNN on the speech) or ``keywords``
            (the lexicon terms spotted in the window; reads the clip's ``text``).
        keywords: for ``audio_source: keywords``: ``{lexicon, labels, dim, pool (lse|topk|max|mean),
            r, k, negatives, negatives_from, augment, temperature, map}``; ``negatives_from``:
            ``window`` (any term not said in the window) or ``scan`` (only terms said nowhere in
            the clip's scan: a term said elsewhere in the sweep may well be on screen; needs the
            batch's ``scan_text``); ``augment``: random crop-and-resize + contrast jitter of each
            training clip; ``map``: ``score`` (the term's per-position score) or
            ``contrast`` (its per-position log-softmax over all terms: where this organ rather than
            another is said to be; changeable after training, ``model.keyword_map``); its two terms
            are weighted by ``alpha`` (correspondence) and ``beta`` (InfoNCE over terms).
    """

    def __init__(
        self,
        video: dict | None = None,
        audio: dict | None = None,
        text: dict | None = None,
        fusion: str = "spatial",
        embed_dim: int = 64,
        use_audio: bool = True,
        use_text: bool = True,
        sig: dict | None = None,
        weights: dict | None = None,
        temperature: float = 0.07,
        no_speech: str = "skip",
        min_shift_s: float = 2.0,
        same_scan_negatives: bool = False,
        audio_source: str = "waveform",
        keywords: dict | None = None,
    ):
        super().__init__()
        if not (use_audio or use_text):
            raise ConfigError("show_from_tell needs audio or text (use_audio and use_text are both false)")
        self.video = build_encoder(video or SMALL_VIDEO)
        dv = self.video.out_dim
        self.use_audio, self.use_text, self.fusion_kind = use_audio, use_text, fusion
        self.weights = {"alpha": 1.0, "beta": 1.0, "gamma": 1.0, "delta": 1.0, **(weights or {})}
        self.no_speech, self.min_shift_s, self.same_scan_negatives = no_speech, min_shift_s, same_scan_negatives
        self.video_proj = nn.Linear(dv, embed_dim)
        if audio_source not in ("waveform", "keywords"):
            raise ConfigError(f"audio_source must be 'waveform' or 'keywords', got {audio_source!r}")
        self.audio_source = audio_source
        if use_audio and audio_source == "keywords":
            self._init_keywords(dict(keywords or {}), dv, embed_dim, fusion)
        elif use_audio:
            self.audio = build_encoder(audio or SMALL_AUDIO)
            self.fuse_va = build_fusion(fusion, dv, self.audio.out_dim, embed_dim)
            self.cor_va = nn.Linear(embed_dim, 1)
            self.audio_proj = nn.Linear(self.audio.out_dim, embed_dim)
        if use_text:
            self.text = build_encoder(text or SMALL_TEXT)
            gate = SigConfig.from_dict(sig)
            self.sig = SelectiveInformationGate(
                gate.mode, vocabulary=self.text.vocabulary, lexicon=gate.lexicon, min_confidence=gate.min_confidence
            )
            self.fuse_vt = build_fusion(fusion, dv, self.text.out_dim, embed_dim)
            self.cor_vt = nn.Linear(embed_dim, 1)
            self.text_proj = nn.Linear(self.text.out_dim, embed_dim)
        self.correspondence = CorrespondenceLoss()
        self.contrastive = InfoNCE(temperature=temperature)

    def _init_keywords(self, kw: dict, dv: int, embed_dim: int, fusion: str) -> None:
        from sonotell.models.keyword_terms import KeywordTerms

        if fusion != "spatial":
            raise ConfigError(f"audio_source=keywords localises through spatial-aware fusion; got fusion {fusion!r}")
        cfg = KeywordInputConfig.from_dict(kw)
        self.terms = KeywordTerms(cfg.lexicon, cfg.labels)
        self.keyword_lexicon = cfg.lexicon  # a name lets `sonotell localise` run the speech pipeline
        self.term_embedding = nn.Embedding(len(self.terms), cfg.dim)
        self.fuse_va = SpatialFusion(dv, cfg.dim, embed_dim)
        self.cor_va = nn.Linear(embed_dim, 1)
        self.term_pool = {"kind": cfg.pool, "r": cfg.r, "k": cfg.k}
        self.keyword_map, self.negatives_from, self.augment = cfg.map, cfg.negatives_from, cfg.augment
        self.term_loss = TermMILLoss(cfg.negatives, cfg.temperature)

    @property
    def term_labels(self) -> list[str]:
        """The keyword labels, in the order of ``term_maps`` (keyword input only)."""
        self._need_keywords()
        return list(self.terms.labels)

    def _need_keywords(self) -> None:
        if getattr(self, "audio_source", "waveform") != "keywords" or not self.use_audio:
            raise ConfigError("this show_from_tell model reads raw audio, not keywords (audio_source: waveform)")

    def term_maps(self, vmap: torch.Tensor) -> torch.Tensor:
        """(B, K, h, w): the spatial-fusion score of every keyword at every position of (B, C, h, w) visual maps."""
        b, k = vmap.shape[0], len(self.terms)
        emb = self.term_embedding.weight
        maps = self.fuse_va.response_map(vmap.repeat_interleave(k, dim=0), emb.repeat(b, 1), head=self.cor_va)
        return maps.reshape(b, k, *maps.shape[-2:])

    def term_scores(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, K) frame-level score of each keyword (smooth max of its map): is it shown here?"""
        self._need_keywords()
        if frames.ndim == 3:
            frames = frames.unsqueeze(1)
        return smooth_max(self.term_maps(self.video.feature_map(frames)), **self.term_pool)

    def said_terms(self, speech) -> torch.Tensor:
        """(B, K) float weights of the terms said: from window transcripts (list of str) or as given."""
        if isinstance(speech, (list, tuple)):
            return self.terms(list(speech)).float()
        speech = torch.as_tensor(speech, dtype=torch.float32)
        if speech.ndim != 2 or speech.shape[1] != len(self.terms):
            raise ValueError(
                f"keyword speech input must be window transcripts or (B, {len(self.terms)}) term weights, "
                f"got shape {tuple(speech.shape)}"
            )
        return speech

    # ------------------------------------------------------------------ encoders (downstream API)

    def encode_video(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, H, W) in [0, 1] -> (B, D_video) clip embedding."""
        return self.video(frames)

    def encode_audio(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, S) waveform (or spectrogram) -> (B, D_audio).

        Keyword input: window transcripts -> mean term embedding.
        """
        self._need("audio")
        if self.audio_source == "keywords":
            w = self.said_terms(wav)
            return w @ self.term_embedding.weight / w.sum(dim=1, keepdim=True).clamp_min(1.0)
        return self.audio(wav)

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """Transcripts -> SIG -> (B, D_text)."""
        self._need("text")
        return self.text(self.sig(texts)[0])

    @torch.no_grad()
    def localisation_map(self, frames: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """(B, h, w) response of the spatial-aware audio-visual fusion; higher = where the speech points.

        ``frames``: (B, T, H, W) clip or (B, H, W) single frame in [0, 1]; ``audio``: (B, S)
        waveform, or for keyword input the window transcripts (list of str) or (B, K) term
        weights: the map is the weighted mean of the said terms' maps, all zeros when no term
        was said (nothing to point at).
        """
        self._need("audio")
        if self.fusion_kind != "spatial":
            raise ConfigError(f"localisation needs spatial-aware fusion; this model uses {self.fusion_kind!r}")
        if frames.ndim == 3:
            frames = frames.unsqueeze(1)
        if self.audio_source == "keywords":
            w = self.said_terms(audio)
            maps = self.term_maps(self.video.feature_map(frames))
            if self.keyword_map == "contrast":  # where this term, rather than another organ's, is the answer
                maps = torch.log_softmax(maps, dim=1)
            return (
                (w[:, :, None, None] * maps).sum(dim=1)
                / w.sum(dim=1).clamp_min(1e-8)[:, None, None]
                * (w.sum(dim=1) > 0)[:, None, None]
            )
        return self.fuse_va.response_map(self.video.feature_map(frames), self.audio(audio), head=self.cor_va)

    def correspondence_logits(
        self, vmap: torch.Tensor, other: torch.Tensor, fuse: nn.Module, head: nn.Linear
    ) -> torch.Tensor:
        """(N,) logits that each (visual map, vector) pair is aligned.

        With spatial fusion the clip's logit is the best position's (max over the map), so the
        correspondence objective trains the localisation map directly.
        """
        if isinstance(fuse, SpatialFusion):
            return fuse.response_map(vmap, other, head=head).amax(dim=(1, 2))
        return head(fuse(vmap, other)).squeeze(1)

    def _need(self, branch: str) -> None:
        if not getattr(self, f"use_{branch}"):
            raise ConfigError(f"this show_from_tell model was trained without {branch} (use_{branch}: false)")

    # ------------------------------------------------------------------ objective

    def _pair_terms(self, vmap, v_emb, other, plan: PairPlan, fuse, head, proj, prefix: str) -> dict:
        vi, oi, target = plan.correspondence_pairs()
        out = {}
        if len(target) >= 2:
            logits = self.correspondence_logits(vmap[vi], other[oi], fuse, head)
            out[f"cor_{prefix}"] = self.correspondence(logits, target.to(logits.dtype))
            out[f"acc_{prefix}"] = self.correspondence.accuracy(logits.detach(), target)
        else:
            out[f"cor_{prefix}"] = zero_like_graph(v_emb, other)
        if plan.enough_anchors():
            out[f"con_{prefix}"] = self.contrastive(v_emb, proj(other), valid=plan.anchors, ignore=plan.ignore)
        else:
            out[f"con_{prefix}"] = zero_like_graph(v_emb, other)
        return out

    def losses(self, batch: dict) -> dict:
        """``{"loss", "cor_va", "con_va", "cor_vt", "con_vt", "acc_*"}`` for a batch of aligned clips."""
        frames = batch["frames"]
        require_pairs(frames.shape[0], "show_from_tell")
        if getattr(self, "augment", False) and self.training:
            frames = augment_clips(frames)
        vmap = self.video.feature_map(frames)
        v_emb = self.video_proj(vmap.mean(dim=(2, 3)))
        w, out = self.weights, {}
        loss = zero_like_graph(v_emb)
        times = batch.get("time_s", torch.zeros(frames.shape[0]))
        if self.use_audio and self.audio_source == "keywords":
            said = self.terms(list(batch["text"]))
            allowed = None
            if self.negatives_from == "scan":
                if "scan_text" not in batch:
                    raise ConfigError(
                        "keywords.negatives_from=scan needs the batch's scan_text "
                        "(the spotted terms of each clip's scan)"
                    )
                allowed = ~self.terms(list(batch["scan_text"]))
            scores = smooth_max(self.term_maps(vmap), **self.term_pool)
            terms = self.term_loss(scores, said, allowed=allowed)
            out |= {
                "cor_va": terms["cor"],
                "con_va": terms["con"],
                "acc_va": terms["acc"],
                "said_frac": said.any(dim=1).float().mean(),
            }
            loss = loss + w["alpha"] * terms["cor"] + w["beta"] * terms["con"]
        elif self.use_audio:
            plan = PairPlan(
                batch["scan_id"], times, speech_mask(batch), self.no_speech, self.min_shift_s, self.same_scan_negatives
            )
            out |= self._pair_terms(
                vmap, v_emb, self.audio(batch["audio"]), plan, self.fuse_va, self.cor_va, self.audio_proj, "va"
            )
            loss = loss + w["alpha"] * out["cor_va"] + w["beta"] * out["con_va"]
        if self.use_text:
            gated, has_text = self.sig(list(batch["text"]))
            plan = PairPlan(
                batch["scan_id"],
                times,
                torch.tensor(has_text),
                self.no_speech,
                self.min_shift_s,
                self.same_scan_negatives,
            )
            out |= self._pair_terms(
                vmap, v_emb, self.text(gated), plan, self.fuse_vt, self.cor_vt, self.text_proj, "vt"
            )
            out["sig_kept"] = torch.tensor(float(sum(has_text)) / len(has_text))
            loss = loss + w["gamma"] * out["cor_vt"] + w["delta"] * out["con_vt"]
        out["loss"] = loss
        return out


def augment_clips(frames: torch.Tensor, min_scale: float = 0.8, contrast: float = 0.2) -> torch.Tensor:
    """Random crop (side ``min_scale``-1 of the frame) resized back, and contrast/brightness
    jitter, one draw per clip (the same for all its frames). (B, T, H, W) in [0, 1].

    Example:
        >>> augment_clips(torch.rand(2, 8, 32, 32)).shape
        torch.Size([2, 8, 32, 32])
    """
    import torch.nn.functional as F

    b, _, h, w = frames.shape
    out = []
    for i in range(b):
        s = float(torch.empty(1).uniform_(min_scale, 1.0))
        ch, cw = max(1, round(s * h)), max(1, round(s * w))
        y0 = int(torch.randint(0, h - ch + 1, (1,)))
        x0 = int(torch.randint(0, w - cw + 1, (1,)))
        clip = F.interpolate(
            frames[i : i + 1, :, y0 : y0 + ch, x0 : x0 + cw], size=(h, w), mode="bilinear", align_corners=False
        )[0]
        gain = 1.0 + float(torch.empty(1).uniform_(-contrast, contrast))
        bias = float(torch.empty(1).uniform_(-contrast, contrast)) * 0.5
        out.append((clip * gain + bias).clamp(0.0, 1.0))
    return torch.stack(out)


@register_model("show_from_tell")
def show_from_tell(**kwargs) -> ShowFromTell:
    """The Show from Tell model; its config is the ``model`` section of ``configs/methods/show_from_tell``."""
    return ShowFromTell(**kwargs)

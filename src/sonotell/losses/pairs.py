"""Pair bookkeeping shared by the cross-modal losses: batch-size checks and which pairs are negatives.

A pair (video i, audio j) is a *negative* when the two come from different scans, or from
the same scan at least ``min_shift_s`` apart (a shifted pair); otherwise it may be a false
negative (the same moment, or a neighbouring one) and is left out.

Example:
    >>> import torch
    >>> negative_mask(["a", "a", "b"], torch.tensor([0.0, 5.0, 0.0]), min_shift_s=1.0)
    tensor([[False,  True,  True],
            [ True, False,  True],
            [ True,  True, False]])
"""

from __future__ import annotations

from typing import Sequence

import torch

from sonotell.errors import ConfigError, SonotellError

NO_SPEECH_POLICIES = ("skip", "negative")


class BatchTooSmallError(SonotellError, ValueError):
    """A contrastive loss got fewer than two pairs: there is nothing to contrast against."""


def require_pairs(n: int, loss_name: str) -> None:
    """Raise ``BatchTooSmallError`` when a contrastive loss gets fewer than two pairs."""
    if n < 2:
        raise BatchTooSmallError(
            f"{loss_name}: a contrastive loss needs a batch of at least 2 pairs, got {n} "
            "(raise the batch size or drop_last=True)"
        )


def negative_mask(scan_ids: Sequence[str], times_s: torch.Tensor | Sequence[float], min_shift_s: float) -> torch.Tensor:
    """(B, B) bool: True where (i, j) is a valid negative (other scan, or same scan shifted enough)."""
    times = torch.as_tensor(times_s, dtype=torch.float64).reshape(-1)
    codes = {s: k for k, s in enumerate(dict.fromkeys(scan_ids))}
    scan = torch.tensor([codes[s] for s in scan_ids])
    other_scan = scan[:, None] != scan[None, :]
    shifted = (times[:, None] - times[None, :]).abs() >= min_shift_s
    return other_scan | shifted


def sample_negatives(
    valid_negatives: torch.Tensor, generator: torch.Generator | None = None, preferred: torch.Tensor | None = None
) -> torch.Tensor:
    """For each row i, a random j with ``valid_negatives[i, j]``; -1 where a row has none.

    ``preferred`` (B, B) bool: where a row has a valid preferred negative (e.g. the same scan
    at another time), it is drawn from those only.
    """
    weights = valid_negatives.float()
    if preferred is not None:
        hard = valid_negatives & preferred
        weights = torch.where(hard.any(dim=1, keepdim=True), hard.float(), weights)
    has_any = weights.sum(dim=1) > 0
    out = torch.full((weights.shape[0],), -1, dtype=torch.long)
    if has_any.any():
        out[has_any] = torch.multinomial(weights[has_any], 1, generator=generator).squeeze(1)
    return out


def speech_mask(batch: dict, rms_threshold: float = 1e-3) -> torch.Tensor:
    """(B,) bool: which clips contain speech -- words in the transcript window, or audio energy when no text is
    given."""
    if "text" in batch:
        return torch.tensor([bool(str(t).strip()) for t in batch["text"]])
    audio = batch["audio"]
    return audio.pow(2).mean(dim=1).sqrt() > rms_threshold


class PairPlan:
    """Which pairs of a batch a recipe uses: positives, sampled negatives and false negatives to ignore.

    Args:
        scan_ids, times_s: where each clip comes from.
        has_signal: (B,) bool, clips whose audio/text carries speech.
        no_speech: ``skip`` (clips without speech take no part) or ``negative`` (their own
            pair is a negative and they stay as negatives for the others).
        min_shift_s: a same-scan pair at least this far apart is a (shifted) negative.
        same_scan_negatives: the correspondence negative of a clip is a shifted clip of its own
            scan whenever the batch has one (a hard negative: same anatomy look, other words).
    """

    def __init__(
        self,
        scan_ids: Sequence[str],
        times_s,
        has_signal: torch.Tensor,
        no_speech: str = "skip",
        min_shift_s: float = 2.0,
        same_scan_negatives: bool = False,
    ):
        if no_speech not in NO_SPEECH_POLICIES:
            raise ConfigError(f"no_speech must be one of {NO_SPEECH_POLICIES}, got {no_speech!r}")
        n = len(scan_ids)
        require_pairs(n, "pretraining batch")
        self.n, self.no_speech = n, no_speech
        self.has_signal = has_signal.bool().cpu()
        negatives = negative_mask(list(scan_ids), times_s, min_shift_s)
        if no_speech == "skip":  # a silent clip is neither anchor nor negative
            negatives &= self.has_signal[None, :] & self.has_signal[:, None]
        self.negatives = negatives
        codes = {s: k for k, s in enumerate(dict.fromkeys(scan_ids))}
        scan = torch.tensor([codes[s] for s in scan_ids])
        self.preferred = (scan[:, None] == scan[None, :]) if same_scan_negatives else None
        # InfoNCE: pairs that are neither the positive nor a valid negative are left out
        self.ignore = ~negatives
        self.anchors = self.has_signal.clone()

    def correspondence_pairs(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(video index, other-modality index, target): aligned positives, one sampled negative per clip,
        and with ``no_speech=negative`` each silent clip's own pair as a negative."""
        rows = torch.arange(self.n)
        neg = sample_negatives(self.negatives, preferred=self.preferred)
        has_neg = neg >= 0
        if self.no_speech == "skip":
            has_neg &= self.has_signal
        vi = [rows[self.has_signal], rows[has_neg]]
        oi = [rows[self.has_signal], neg[has_neg]]
        tg = [torch.ones(int(self.has_signal.sum())), torch.zeros(int(has_neg.sum()))]
        if self.no_speech == "negative":
            silent_rows = rows[~self.has_signal]
            vi.append(silent_rows)
            oi.append(silent_rows)
            tg.append(torch.zeros(len(silent_rows)))
        return torch.cat(vi), torch.cat(oi), torch.cat(tg)

    def enough_anchors(self) -> bool:
        return int(self.anchors.sum()) >= 2


def zero_like_graph(*tensors: torch.Tensor) -> torch.Tensor:
    """A zero loss still connected to the graph (a term with nothing to learn from in this batch)."""
    return sum(t.sum() * 0.0 for t in tensors)

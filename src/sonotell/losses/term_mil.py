"""Multiple-instance term grounding: which lexicon terms were said while this frame was shown?

Each clip carries a *said* set of lexicon terms (spotted in its speech window, no human
label) and one frame-level score per term (the smooth maximum over positions of the
spatial-aware fusion map, ``sonotell.models.fusion.smooth_max``). Two terms:

* **correspondence** (binary): every said term is a positive pair (target 1); for each one,
  ``negatives`` terms *not said in that window* are drawn uniformly as negative pairs
  (target 0). A term that was said is never a negative -- otherwise the task is unlearnable.
* **contrastive over terms** (InfoNCE): each said term against the clip's unsaid terms,
  softmax over ``{said term} + unsaid terms`` of the scores divided by ``temperature``; the
  clip's other said terms are left out (neither positive nor negative).

Clips with no said term, or whose every term was said, contribute nothing.

Example:
    >>> import torch
    >>> scores = torch.tensor([[2.0, -1.0, 0.0]])
    >>> said = torch.tensor([[True, False, False]])
    >>> loss = TermMILLoss(negatives=1)
    >>> out = loss(scores, said, generator=torch.Generator().manual_seed(0))
    >>> sorted(out)
    ['acc', 'con', 'cor', 'loss', 'n_pairs']
    >>> round(float(out["con"]), 4)  # -log softmax([2, -1, 0])[0]
    0.1698
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def sample_unsaid_terms(
    said: torch.Tensor, n: int, generator: torch.Generator | None = None, allowed: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For every said (row, term) pair, ``n`` terms drawn uniformly (with replacement) among
    the row's *unsaid* terms.

    Args:
        said: (B, K) bool, True where term k was said in clip b's window.
        n: negatives per said term.
        allowed: (B, K) bool, optional: negatives only among these too (e.g. terms never said
            in the clip's whole scan, which are less likely to be on screen anyway).

    Returns:
        ``(rows, positives, negatives)``: (P,) row index and said term of every positive pair
        that has at least one unsaid term in its row, and (P, n) the drawn unsaid terms.

    Example:
        >>> said = torch.tensor([[True, False, True], [False, False, False]])
        >>> rows, pos, neg = sample_unsaid_terms(said, 2, torch.Generator().manual_seed(0))
        >>> rows.tolist(), pos.tolist(), neg.tolist()
        ([0, 0], [0, 2], [[1, 1], [1, 1]])
    """
    said = said.bool()
    unsaid = ~said if allowed is None else ~said & allowed.bool()
    usable = said & unsaid.any(dim=1, keepdim=True)
    rows, positives = usable.nonzero(as_tuple=True)
    if rows.numel() == 0 or n <= 0:
        return rows, positives, torch.zeros(rows.numel(), max(n, 0), dtype=torch.long)
    weights = unsaid[rows].float()
    negatives = torch.multinomial(weights, n, replacement=True, generator=generator)
    return rows, positives, negatives


class TermMILLoss(nn.Module):
    """Correspondence (said vs. unsaid term) + InfoNCE over terms on frame-level term scores.

    Args:
        negatives: unsaid terms drawn per said term for the correspondence term.
        temperature: divides the scores in the contrastive term.
        weights: ``{cor, con}`` weights of the two terms (1, 1 by default).
    """

    def __init__(self, negatives: int = 1, temperature: float = 1.0, weights: dict | None = None):
        super().__init__()
        self.negatives, self.temperature = int(negatives), float(temperature)
        self.weights = {"cor": 1.0, "con": 1.0, **(weights or {})}

    def forward(
        self,
        scores: torch.Tensor,
        said: torch.Tensor,
        generator: torch.Generator | None = None,
        allowed: torch.Tensor | None = None,
    ) -> dict:
        """``{"loss", "cor", "con", "acc", "n_pairs"}``; ``loss`` = the weighted sum of ``cor`` and
        ``con``; ``acc`` is the correspondence accuracy (logit > 0). ``allowed``: negatives only
        among these terms (see ``sample_unsaid_terms``), in both terms."""
        if scores.shape != said.shape:
            raise ValueError(f"term scores {tuple(scores.shape)} and said mask {tuple(said.shape)} differ")
        said = said.bool()
        rows, pos, neg = sample_unsaid_terms(said, self.negatives, generator, allowed)
        zero = scores.sum() * 0.0
        if rows.numel() == 0:
            return {
                "loss": zero,
                "cor": zero,
                "con": zero,
                "acc": torch.tensor(float("nan")),
                "n_pairs": torch.tensor(0.0),
            }
        pos_logits = scores[rows, pos]
        neg_logits = scores[rows[:, None].expand_as(neg), neg].reshape(-1)
        logits = torch.cat([pos_logits, neg_logits])
        targets = torch.cat([torch.ones_like(pos_logits), torch.zeros_like(neg_logits)])
        cor = F.binary_cross_entropy_with_logits(logits, targets)
        acc = ((logits.detach() > 0).float() == targets).float().mean()
        # InfoNCE over terms: the said term against every unsaid term of its row.
        z = scores[rows] / self.temperature
        keep = ~said[rows] if allowed is None else ~said[rows] & allowed.bool()[rows]
        keep[torch.arange(rows.numel()), pos] = True
        z = z.masked_fill(~keep, float("-inf"))
        con = -(z[torch.arange(rows.numel()), pos] - torch.logsumexp(z, dim=1)).mean()
        loss = self.weights["cor"] * cor + self.weights["con"] * con
        return {"loss": loss, "cor": cor, "con": con, "acc": acc, "n_pairs": torch.tensor(float(rows.numel()))}

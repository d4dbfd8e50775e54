"""sonotell.models."""

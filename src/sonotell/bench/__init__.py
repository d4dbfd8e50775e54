"""sonotell.bench."""

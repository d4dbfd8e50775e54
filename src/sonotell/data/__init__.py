"""sonotell.data."""

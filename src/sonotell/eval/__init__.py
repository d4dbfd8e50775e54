"""sonotell.eval."""

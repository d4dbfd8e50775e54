"""sonotell.speech."""

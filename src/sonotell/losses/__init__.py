"""sonotell.losses."""

"""sonotell: learn ultrasound anatomy from what clinicians say while they scan."""

from sonotell.types import Clip, Scan, TermEvent, Word

__version__ = "0.1.0"
__all__ = ["Clip", "Scan", "TermEvent", "Word", "__version__"]

"""Progress reporting. Library code never prints: it calls a ``Progress`` callback.

The CLI passes a rich progress bar; library callers pass nothing (silent) or their own.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def __call__(self, done: int, total: int, message: str = "") -> None: ...


def silent(done: int, total: int, message: str = "") -> None:
    """The default progress callback: does nothing."""

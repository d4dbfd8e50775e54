"""Errors that reach the user as one clear line naming the file and the problem."""

from __future__ import annotations

import re
from pathlib import Path


def one_line(problem: str) -> str:
    """A problem as one line: a parser's multi-line message (pandas, YAML) joined with spaces."""
    return re.sub(r"\s*\n\s*", " ", str(problem)).strip()


class SonotellError(Exception):
    """Base class: anything sonotell raises on purpose."""


class InputError(SonotellError):
    """Bad input: the message names the offending file and what is wrong with it.

    Example:
        >>> str(InputError("scan.mp4", "no video frames"))
        'scan.mp4: no video frames'
    """

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else str(path)
        self.problem = problem = one_line(problem)
        super().__init__(problem if path is None else f"{path}: {problem}")


class ConfigError(SonotellError):
    """A configuration value or file that cannot be used."""


class OutputError(SonotellError):
    """An output that cannot or must not be written: the message names the path and why.

    Example:
        >>> str(OutputError("scan.mp4", "is an input of this command; choose another --out"))
        'scan.mp4: is an input of this command; choose another --out'
    """

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else str(path)
        self.problem = problem = one_line(problem)
        super().__init__(problem if path is None else f"{path}: {problem}")


class SubjectLeakError(SonotellError):
    """A subject (patient) on both sides of a split: results would be optimistic, so nothing runs.

    A real exception, not an ``assert``: the check must hold under ``python -O`` too.
    """

"""Fixtures of the hardening tests: a tiny labelled benchmark and the fake "hears liver" ASR backend."""

from __future__ import annotations

import pytest

from tests.speech.conftest import bursts  # noqa: F401  (fixture re-exported)


@pytest.fixture(autouse=True)
def keyword_test_backend():
    """``test_keyword``: registered by name, the only way a config may choose a backend."""
    from sonotell.speech.transcribe import BACKENDS, register_backend
    from tests.speech.test_pipeline import KeywordBackend

    register_backend("test_keyword")(KeywordBackend)
    yield
    BACKENDS.pop("test_keyword", None)


def one_line_error(result) -> str:
    """The CLI's error output, checked to be the project's one-line error with exit code 2."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return result.output

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


def run_cli(capsys, args: list[str]) -> tuple[int, str]:
    """Run ``sonotell ARGS`` through the real entry point (``sonotell.cli.main``): exit code and output."""
    import sys

    from sonotell.cli import main

    capsys.readouterr()
    argv, sys.argv = sys.argv, ["sonotell", *map(str, args)]
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = argv
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def one_line_error(capsys, args: list[str]) -> str:
    """Run the CLI; check it failed with the project's one-line error (exit code 2, no traceback)."""
    code, output = run_cli(capsys, args)
    assert code == 2, output
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    return errors[0]

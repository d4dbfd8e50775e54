"""Fixtures of the bench tests: one tiny synthetic benchmark built once per session."""

from __future__ import annotations

import pytest

TINY = ["subjects=2", "scans_per_subject=1", "duration_s=4.0", "size=[64,64]", "organs_per_scan=[2,2]", "mask_stride=5"]


@pytest.fixture(scope="session")
def tiny_bench(tmp_path_factory):
    from sonotell.bench import build_benchmark

    return build_benchmark("synthetic", tmp_path_factory.mktemp("bench") / "syn", overrides=TINY, seed=3)

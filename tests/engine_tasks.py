"""Task functions for the engine tests: importable by worker processes (local pool and Ray)."""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import numpy as np

from sonotell.errors import InputError


def setup_marker(folder: str) -> dict:
    """Per-worker setup: leaves one file per call, so a test can count how often it ran."""
    Path(folder, f"setup-{os.getpid()}-{uuid.uuid4().hex}").touch()
    return {"folder": folder, "pid": os.getpid()}


def _attempt(state: dict, item) -> int:
    """Record one attempt at ``item``; return how many there were (this one included)."""
    Path(state["folder"], f"attempt-{item}-{uuid.uuid4().hex}").touch()
    return len(list(Path(state["folder"]).glob(f"attempt-{item}-*")))


def square(x: int, state: dict) -> tuple[int, int]:
    _attempt(state, x)
    return x * x, state["pid"]


def bad_input_at_3(x: int, state: dict) -> int:
    _attempt(state, x)
    if x == 3:
        raise InputError(f"scan{x}.wav", "audio is silent")
    return x


def killed_at_2_once(x: int, state: dict) -> int:
    """Item 2's first attempt kills its own worker process mid-task (as the OOM killer or an operator would)."""
    if _attempt(state, x) == 1 and x == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def out_of_memory_at_1(x: int, state: dict) -> int:
    _attempt(state, x)
    if x == 1:
        np.ones((10**6, 10**7))  # 80 TB: numpy's allocation fails with MemoryError
    return x


def label_killed_once(scan, state: dict):
    """The labelling task of ``speech.batch``; the first attempt at the second scan kills its worker."""
    from sonotell.speech import batch

    marker = Path(state["out_dir"], f".killed-{scan.scan_id}")
    if scan.scan_id == "s01_scan0" and not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return batch._label_one(scan, state)

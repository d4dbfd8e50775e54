"""Item 1: a checkpoint never runs code on load; old pickled ones are refused with how to convert them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

from sonotell.errors import InputError
from sonotell.safeload import convert_trusted, load_weights_only
from sonotell.train import CheckpointError, load_model_checkpoint, save_model_checkpoint
from tests.security.conftest import one_line_error


class Payload:
    """Unpickling this creates ``marker``: proof that loading ran code from the file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def evil_checkpoint(path: Path, marker: Path) -> Path:
    torch.save(
        {"format": "sonotell/1", "recipe": "show_from_tell", "config": {}, "state_dict": {}, "x": Payload(marker)}, path
    )
    return path


def test_model_checkpoint_with_code_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    ckpt = evil_checkpoint(tmp_path / "evil.pt", marker)
    with pytest.raises(CheckpointError, match=r"evil.pt: refused: .*convert it once with"):
        load_model_checkpoint(ckpt)
    assert not marker.exists()


def test_every_loader_is_weights_only(tmp_path):
    from sonotell.models.voice_label import load_branch

    marker = tmp_path / "pwned"
    ckpt = evil_checkpoint(tmp_path / "evil.pt", marker)
    with pytest.raises(InputError, match="refused"):
        load_branch(ckpt, "voice_cnn", {})
    with pytest.raises(InputError, match="refused"):
        load_weights_only(ckpt)
    assert not marker.exists()
    src = Path(__file__).resolve().parents[2] / "src" / "sonotell"
    unsafe = [
        f"{p.relative_to(src)}:{i}"
        for p in src.rglob("*.py")
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if re.search(r"weights_only\s*=\s*False|allow_pickle\s*=\s*True|pickle\.loads?\(", line)
    ]
    assert [u.split(":")[0] for u in unsafe] == ["safeload.py"], (
        unsafe
    )  # only the explicit, documented conversion of a trusted file


def test_localise_cli_refuses_a_pickled_checkpoint_without_running_it(tmp_path, capsys):
    marker = tmp_path / "pwned"
    ckpt = evil_checkpoint(tmp_path / "evil.pt", marker)
    video = tmp_path / "scan.mp4"
    video.write_bytes(b"not used")
    line = one_line_error(capsys, ["localise", video, "--checkpoint", ckpt, "--out", tmp_path / "o.mp4"])
    assert "refused" in line and "safeload convert" in line
    assert not marker.exists()


def test_new_checkpoints_load_weights_only_and_old_ones_convert(tmp_path):
    model = nn.Linear(3, 2)
    path = save_model_checkpoint(tmp_path / "m.pt", model, "toy", {"width": 3, "where": Path("x")})
    assert load_model_checkpoint(path, expected="toy", model=nn.Linear(3, 2))["config"] == {"width": 3, "where": "x"}
    old = tmp_path / "old.pt"  # an old-style checkpoint: a Python object in its metadata
    torch.save(
        {"format": "sonotell/1", "recipe": "toy", "config": {"where": Path("x")}, "state_dict": model.state_dict()}, old
    )
    with pytest.raises(CheckpointError, match="refused"):
        load_model_checkpoint(old)
    new = convert_trusted(old, tmp_path / "new.pt")
    ckpt = load_model_checkpoint(new, expected="toy", model=nn.Linear(3, 2))
    assert ckpt["config"] == {"where": "x"}
    assert torch.equal(ckpt["state_dict"]["weight"], model.weight.detach())

"""benchmarks/gpu_check.sh also runs on CPU, tiny: every step it times is a real training step."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_runs_tiny_on_cpu(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(tmp_path), "GPU_CHECK_STEPS": "1"}
    proc = subprocess.run(
        [
            "bash",
            str(ROOT / "benchmarks" / "gpu_check.sh"),
            "--tiny",
            "--device",
            "cpu",
            "--warmup",
            "1",
            "--threads",
            "1",
            "--recipes",
            "av_contrastive,fixmatch",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    res = json.loads((tmp_path / "gpu_check.json").read_text())
    assert res["device"] == "cpu" and not res["failures"]
    got = {(r["recipe"], r["encoder"]) for r in res["train"]}
    assert got == {
        ("av_contrastive", "scratch"),
        ("av_contrastive", "imagenet"),
        ("fixmatch", "scratch"),
        ("fixmatch", "imagenet"),
    }
    for r in res["train"]:
        assert r["clips_per_s"] > 0 and r["peak_mb"] > 0 and r["trainable_params"] > 0
    # the ImageNet encoder has far more weights than the from-scratch small ones: its cost is visible
    by = {(r["recipe"], r["encoder"]): r for r in res["train"]}
    assert by[("fixmatch", "imagenet")]["trainable_params"] > 10 * by[("fixmatch", "scratch")]["trainable_params"]
    assert {f["encoder"].split()[0] for f in res["encoder_fps"]} == {"image_resnet", "image_efficientnet_lite0"}
    assert "clips/s" in proc.stdout and "frames/s" in proc.stdout

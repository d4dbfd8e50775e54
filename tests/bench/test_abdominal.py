import numpy as np
import pytest

from sonotell.bench import build_benchmark, load_benchmark
from sonotell.bench.abdominal import assemble
from sonotell.data.frames import MASK_CLASSES, ORGAN_COLOURS, snap_mask
from sonotell.io.video import read_frames


def test_snap_mask_to_nearest_colour():
    rgb = np.array([[[0, 0, 0], [98, 3, 101], [250, 250, 10]], [[12, 0, 12], [0, 240, 5], [255, 255, 255]]], np.uint8)
    idx = snap_mask(rgb)
    names = [[MASK_CLASSES[i] for i in row] for row in idx]
    assert names == [["background", "liver", "kidney"], ["background", "gallbladder", "bone"]]
    assert len(MASK_CLASSES) == len(ORGAN_COLOURS) + 1


def test_assemble_holds_and_crossfades():
    a, b = np.zeros((2, 2), np.uint8), np.full((2, 2), 200, np.uint8)
    frames, spans = assemble([a, b], [True, False], fps=10, hold_s=0.2, keyframe_hold_s=0.5, crossfade_s=0.1)
    assert spans == [(0, 5), (6, 8)]
    assert len(frames) == 8 and frames[5, 0, 0] == 100  # one blended frame halfway
    assert (frames[:5] == 0).all() and (frames[6:] == 200).all()


@pytest.mark.shared
def test_build_two_real_sweeps(shared_data, tmp_path):
    over = [f"data_root={shared_data}", "limit=2", "size=[120,160]", "sweep.frames_per_sweep=4"]
    bench = load_benchmark(build_benchmark("abdominal", tmp_path / "abd", overrides=over, seed=0))
    assert len(bench.scans) == 2 and bench.mask_classes == MASK_CLASSES
    for scan in bench.scans:
        truth = bench.truth(scan.scan_id)
        assert truth["masks"], "limit picks sweeps with masks first"
        frames = read_frames(scan.video_path)
        assert frames.shape == (scan.n_frames, 120, 160)
        for f in list(truth["masks"])[:3]:
            mask = bench.mask(scan.scan_id, int(f))
            assert mask.shape == (120, 160) and mask.max() < len(MASK_CLASSES)
        named = {e["label"] for e in truth["events"]}
        assert named and named <= set(truth["labels"])
        for e in truth["events"]:  # an organ is named while (or just after) a frame showing it is on screen
            spans = [(v["start_s"], v["end_s"]) for v in truth["visible"] if v["label"] == e["label"]]
            assert any(a - 0.3 <= e["start_s"] <= b + 0.6 for a, b in spans)
        assert truth["label"] in truth["labels"]

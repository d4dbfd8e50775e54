"""Pointing game, thresholded IoU, upsampling and overlay rendering on worked examples."""

import numpy as np
import pytest

from sonotell.errors import InputError
from sonotell.eval import localisation as L
from sonotell.io.video import probe_video, read_frames


def test_upsample_bilinear_half_pixel_centres():
    heat = np.array([[0.0, 1.0], [0.0, 1.0]])
    up = L.upsample_map(heat, (4, 4))
    # source x for output x: (x + .5) / 2 - .5 = -.25, .25, .75, 1.25 -> clamped 0, .25, .75, 1
    np.testing.assert_allclose(up[0], [0.0, 0.25, 0.75, 1.0], atol=1e-6)
    np.testing.assert_allclose(L.upsample_map(np.full((3, 5), 2.0), (30, 50)), 2.0, rtol=1e-6)


def test_pointing_game_hit_miss_tolerance_empty():
    mask = np.zeros((40, 40), bool)
    mask[10:20, 10:20] = True
    heat = np.zeros((40, 40))
    heat[15, 15] = 1
    assert L.pointing_game(heat, mask) is True
    heat = np.zeros((40, 40))
    heat[15, 30] = 1  # 11 px right of the box (x=19 is its last column)
    assert L.pointing_game(heat, mask, tolerance_px=0) is False
    assert L.pointing_game(heat, mask, tolerance_px=10) is False
    assert L.pointing_game(heat, mask, tolerance_px=11) is True
    assert L.pointing_game(heat, np.zeros((40, 40), bool)) is None
    acc, n = L.pointing_game_accuracy([heat, heat, heat], [mask, np.zeros_like(mask), mask], tolerance_px=0)
    assert (acc, n) == (0.0, 2)


def test_pointing_game_on_a_coarse_map():
    heat = np.zeros((4, 4))
    heat[3, 0] = 1.0  # bottom-left cell of a 4x4 map over a 64x64 frame
    mask = np.zeros((64, 64), bool)
    mask[48:, :16] = True
    assert L.pointing_game(heat, mask, tolerance_px=0) is True


def test_threshold_iou_worked_example():
    heat = np.zeros((4, 4))
    heat[:2, :2] = 1.0  # predicted region: 4 pixels
    mask = np.zeros((4, 4), bool)
    mask[:2, :] = True  # 8 pixels, containing the prediction
    assert L.threshold_iou(heat, mask) == pytest.approx(4 / 8)
    heat[2, 0] = 0.4  # below the .5 threshold: not predicted
    assert L.threshold_iou(heat, mask, threshold=0.5) == pytest.approx(0.5)
    assert L.threshold_iou(heat, mask, threshold=0.3) == pytest.approx(4 / 9)
    assert L.threshold_iou(heat, np.zeros((4, 4), bool)) is None


def test_overlay_blends_colour_over_grey():
    frame = np.full((10, 12), 100, np.uint8)
    heat = np.zeros((2, 3))
    heat[0, 0] = 1
    rgb = L.overlay(frame, heat, alpha=0.0)
    assert rgb.shape == (10, 12, 3) and rgb.dtype == np.uint8
    assert np.all(rgb == 100)
    hot = L.overlay(frame, heat, alpha=1.0, colormap="jet")
    assert hot[0, 0, 0] > 100 and hot[0, 0, 2] < 50  # jet's top is red
    assert hot[-1, -1, 2] > 100  # jet's bottom is blue


def test_write_video_round_trip_and_odd_sizes(tmp_path):
    frames = [np.full((33, 41, 3), 40 * i, np.uint8) for i in range(5)]
    out = L.write_video(tmp_path / "o.mp4", frames, fps=10)
    info = probe_video(out)
    assert (info.n_frames, info.width, info.height) == (5, 42, 34)
    back = read_frames(out)
    assert abs(int(back[4].mean()) - 160) < 6
    assert not list(tmp_path.glob(".*tmp*"))  # atomic: no temporary left behind
    with pytest.raises(InputError, match="no frames"):
        L.write_video(tmp_path / "e.mp4", [], fps=10)
    with pytest.raises(InputError, match="must end in"):
        L.write_video(tmp_path / "e.gif", frames, fps=10)

"""io.views: view changes found on synthetic frames at hand-computed positions."""

from __future__ import annotations

import numpy as np
import pytest

from sonotell.io.views import frame_differences, view_starts


def scene(level: int, n: int, rng) -> np.ndarray:
    """n frames of one view: a flat level with +-2 grey levels of speckle."""
    return (level + rng.integers(-2, 3, size=(n, 8, 8))).astype(np.uint8)


def test_cuts_are_found_where_the_scene_changes():
    rng = np.random.default_rng(0)
    frames = np.concatenate([scene(50, 7, rng), scene(180, 5, rng), scene(100, 9, rng)])
    assert view_starts(frames, threshold=0.1, ratio=4.0) == [0, 7, 12]  # 7 = 7 frames, 12 = 7 + 5


def test_difference_is_mean_absolute_grey_difference_in_0_1():
    frames = np.zeros((3, 2, 2), np.uint8)
    frames[1] = [[255, 0], [0, 0]]  # one pixel of four at full scale: 0.25
    frames[2] = [[255, 51], [0, 0]]  # one pixel up by 51/255 = 0.2 -> 0.05
    assert frame_differences(frames) == pytest.approx([0.0, 0.25, 0.05])


def test_a_moving_scan_needs_a_larger_jump():
    rng = np.random.default_rng(1)
    frames = scene(100, 10, rng)
    frames[1::2] += 40  # flicker of 40/255 = 0.157 on every other frame: above threshold, but typical here
    assert view_starts(frames, threshold=0.1, ratio=4.0) == [0]
    assert view_starts(frames[:1], threshold=0.1, ratio=4.0) == [0]


def test_a_single_odd_frame_and_a_restarted_loop_are_no_view_change():
    rng = np.random.default_rng(2)
    clip = np.concatenate([scene(40 + 8 * k, 1, rng) for k in range(12)])  # a slow pan: 8/255 = 0.03 per frame
    looped = np.concatenate([clip, clip, clip])  # seams at 12 and 24 jump back by 88/255 = 0.35 to frame 0
    assert view_starts(looped, threshold=0.1, ratio=4.0) == [0]
    flash = scene(60, 20, rng)
    flash[9] = 250  # one white frame: a jump at 9 and back at 10
    assert view_starts(flash, threshold=0.1, ratio=4.0) == [0]
    cut = np.concatenate([looped, scene(230, 8, rng)])  # then a new picture that stays: a view from 36
    assert view_starts(cut, threshold=0.1, ratio=4.0) == [0, 36]

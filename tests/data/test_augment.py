"""Ultrasound augmentations: determinism, hand-checked effects, image standardisation."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from sonotell.data.augment import (
    STRONG,
    UltrasoundAugment,
    blur,
    depth_crop,
    gain,
    sector_mask,
    speckle,
    standardise_image,
    strong_augment,
    weak_augment,
)
from sonotell.errors import InputError


@pytest.fixture
def images() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return 0.2 + 0.6 * torch.rand(3, 1, 24, 20, generator=g)


def test_same_generator_seed_same_output(images):
    a = strong_augment(images, torch.Generator().manual_seed(5))
    b = strong_augment(images, torch.Generator().manual_seed(5))
    c = strong_augment(images, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == images.shape and a.min() >= 0 and a.max() <= 1


def test_weak_is_milder_than_strong(images):
    g = torch.Generator().manual_seed(0)
    weak = torch.stack([(weak_augment(images, g) - images).abs().mean() for _ in range(5)]).mean()
    strong = torch.stack([(strong_augment(images, g) - images).abs().mean() for _ in range(5)]).mean()
    assert strong > weak


def test_gain_hand_example():
    # One row image of ones, factor fixed at 2 and no TGC -> all twos.
    x = torch.ones(1, 1, 3, 2)
    out = gain(x, (2.0, 2.0), 0.0, torch.Generator().manual_seed(0))
    assert torch.allclose(out, torch.full_like(x, 2.0))


def test_speckle_zero_sigma_and_mean_preserved():
    x = torch.full((1, 1, 200, 200), 0.5)
    g = torch.Generator().manual_seed(0)
    assert torch.allclose(speckle(x, 0.0, g), x)
    assert speckle(x, 0.3, g).mean().item() == pytest.approx(0.5, abs=0.02)


def test_depth_crop_zero_is_identity_and_cuts_bottom():
    x = torch.zeros(1, 1, 10, 4)
    x[:, :, 8:] = 1.0  # bright deep rows
    g = torch.Generator().manual_seed(0)
    assert torch.allclose(depth_crop(x, 0.0, g), x)
    out = depth_crop(x, 0.5, torch.Generator().manual_seed(1))
    assert out[:, :, :5].max() == 0  # the top half stays dark


def test_blur_preserves_constant_and_mean():
    x = torch.full((2, 1, 9, 9), 0.3)
    assert torch.allclose(blur(x, 1.5, torch.Generator().manual_seed(0)), x, atol=1e-6)


def test_sector_mask_zero_width_is_identity_and_masks_a_wedge():
    x = torch.ones(4, 1, 16, 16)
    assert torch.equal(sector_mask(x, 0.0, torch.Generator().manual_seed(0)), x)
    out = sector_mask(x, 40.0, torch.Generator().manual_seed(0))
    assert (out == 0).any() and (out == 1).any()


def test_augment_accepts_b_h_w_and_rejects_channels():
    g = torch.Generator().manual_seed(0)
    assert UltrasoundAugment(speckle_sigma=0.2, p=1.0)(torch.rand(2, 8, 8), g).shape == (2, 8, 8)
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        STRONG(torch.rand(2, 3, 8, 8), g)


@pytest.mark.parametrize(
    "image",
    [
        np.full((40, 30), 128, np.uint8),
        np.full((20, 15), 32896, np.uint16),
        np.full((40, 30, 3), 128, np.uint8),
        np.full((40, 30, 4), 128, np.uint8),
        np.full((10, 10), 128 / 255, np.float64),
    ],
)
def test_standardise_mixed_sizes_channels_bit_depths(image):
    out = standardise_image(image, (16, 16))
    assert out.shape == (16, 16) and out.dtype == np.float32
    assert np.allclose(out, 128 / 255, atol=2e-3)


def test_standardise_bad_inputs(caplog):
    with pytest.raises(InputError, match="frame.png: expected a 2-D"):
        standardise_image(np.zeros((2, 3, 4, 5)), (8, 8), path="frame.png")
    with pytest.raises(InputError, match="NaN"):
        standardise_image(np.full((4, 4), np.nan), (8, 8), path="x.npy")
    with caplog.at_level(logging.WARNING, logger="sonotell.data.augment"):
        out = standardise_image(np.zeros((8, 8), np.uint8), (8, 8), path="black.png")
    assert "black.png: all-black frame" in caplog.text and out.max() == 0

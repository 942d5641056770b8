"""Boxes from masks and square, zero-padded crops."""

import numpy as np
import pytest

from aae.data.crop import bbox_from_mask, random_offset, square_crop


def _gradient_image(height=48, width=64) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width]
    return np.stack([xs * 3, ys * 5, np.full_like(xs, 7)], axis=-1).astype(np.uint8)


def test_bbox_follows_the_bop_convention():
    mask = np.zeros((40, 50), dtype=bool)
    mask[5:15, 20:41] = True  # rows 5..14, columns 20..40
    assert bbox_from_mask(mask) == (20, 5, 20, 9)
    assert all(isinstance(v, int) for v in bbox_from_mask(mask))


def test_bbox_of_an_empty_mask_hints_at_units():
    with pytest.raises(ValueError, match=r"not visible in the rendering.*vertices in mm"):
        bbox_from_mask(np.zeros((10, 10)))


def test_crop_inside_the_image_is_the_exact_square():
    image = _gradient_image()
    # Box over pixel centres 10..30; side 20 * 1.05 = 21 pixels, centred on 20.
    patch = square_crop(image, (10, 10, 20, 20), pad_factor=1.05, size=21)
    np.testing.assert_array_equal(patch, image[10:31, 10:31])


def test_shapes_and_dtypes_for_rgb_and_depth():
    rgb = _gradient_image()
    depth = np.random.default_rng(0).uniform(400, 900, size=(48, 64)).astype(np.float32)
    rgb_patch = square_crop(rgb, (5, 6, 30, 20))
    depth_patch = square_crop(depth, (5, 6, 30, 20), size=32)
    assert rgb_patch.shape == (128, 128, 3) and rgb_patch.dtype == np.uint8
    assert depth_patch.shape == (32, 32) and depth_patch.dtype == np.float32
    # Nearest neighbour never invents depths between surfaces.
    assert np.isin(depth_patch[depth_patch > 0], depth).all()
    single = square_crop(depth[..., None], (5, 6, 30, 20), size=32)
    assert single.shape == (32, 32, 1)


def test_outside_the_image_is_zero_padded_without_stretching():
    image = np.full((40, 40, 3), 200, dtype=np.uint8)
    # Box at the top-left corner: the 20-pixel square starts 4 pixels outside the image.
    patch = square_crop(image, (0, 0, 10, 10), pad_factor=2.0, size=20)
    assert np.all(patch[:4] == 0) and np.all(patch[:, :4] == 0)
    assert np.all(patch[4:, 4:] == 200)


def test_offset_moves_the_content():
    image = np.zeros((50, 50), dtype=np.float32)
    image[25, 25] = 1.0
    box = (20, 20, 10, 10)
    centred = square_crop(image, box, pad_factor=1.1, size=11)
    shifted = square_crop(image, box, pad_factor=1.1, size=11, offset=(3.0, -2.0))
    assert np.argwhere(centred == 1.0).tolist() == [[5, 5]]
    # Moving the window right and up moves the content left and down.
    assert np.argwhere(shifted == 1.0).tolist() == [[7, 2]]


def test_crop_rejects_bad_arguments():
    image = _gradient_image()
    with pytest.raises(ValueError, match="interpolation must be one of"):
        square_crop(image, (0, 0, 10, 10), interpolation="bilinear")
    with pytest.raises(ValueError, match="empty or less than a pixel"):
        square_crop(image, (3, 3, 0, 0))
    with pytest.raises(ValueError, match=r"\(H, W\) or \(H, W, C\)"):
        square_crop(np.zeros(5), (0, 0, 2, 2))


def test_random_offset_is_bounded_seeded_and_two_sided():
    box = (10, 10, 50, 20)
    offsets = np.array([random_offset(box, 0.2, np.random.default_rng(i)) for i in range(200)])
    assert np.abs(offsets[:, 0]).max() <= 10.0 and np.abs(offsets[:, 1]).max() <= 4.0
    assert offsets[:, 0].min() < -5 and offsets[:, 0].max() > 5
    assert random_offset(box, 0.2, np.random.default_rng(3)) == random_offset(
        box, 0.2, np.random.default_rng(3)
    )
    assert random_offset(box, 0.0, np.random.default_rng(0)) == (0.0, 0.0)

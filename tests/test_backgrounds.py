"""BackgroundPool: bundled photos plus clutter, and crops from a folder of images."""

import warnings

import cv2
import numpy as np
import pytest

from aae.data.backgrounds import BackgroundPool


def _write(path, rgb) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(np.asarray(rgb, dtype=np.uint8), cv2.COLOR_RGB2BGR))


def _flat(colour, height=60, width=90) -> np.ndarray:
    return np.broadcast_to(np.asarray(colour, dtype=np.uint8), (height, width, 3))


def test_builtin_pool_shapes_and_variety():
    pool = BackgroundPool.builtin(size=32, n=40, seed=0)
    assert pool.images.shape == (40, 32, 32, 3) and pool.images.dtype == np.uint8
    assert len(pool) == 40 and pool.size == 32
    assert len({image.tobytes() for image in pool.images}) == 40
    means = pool.images.reshape(40, -1, 3).mean(axis=1)
    assert means.std(axis=0).min() > 20  # crops differ in colour, channel by channel
    assert np.median(pool.images.reshape(40, -1).std(axis=1)) > 15  # and have texture
    np.testing.assert_array_equal(pool.sample([3, 0]), pool.images[[3, 0]])
    np.testing.assert_array_equal(pool[5], pool.images[5])


def test_builtin_pool_is_seeded():
    a = BackgroundPool.builtin(size=16, n=10, seed=1)
    assert np.array_equal(a.images, BackgroundPool.builtin(size=16, n=10, seed=1).images)
    assert not np.array_equal(a.images, BackgroundPool.builtin(size=16, n=10, seed=2).images)


def test_from_folder_recurses_and_skips_a_corrupt_file_with_one_warning(tmp_path):
    colours = {(200, 30, 30), (30, 200, 30), (30, 30, 200)}
    for i, (colour, name) in enumerate(
        zip(sorted(colours), ["a.jpg", "sub/b.png", "sub/deeper/c.BMP"], strict=True)
    ):
        _write(tmp_path / name, _flat(colour, 40 + 20 * i, 70))
    (tmp_path / "broken.jpg").write_bytes(b"this is not a jpeg")
    (tmp_path / "notes.txt").write_text("ignored")
    with pytest.warns(UserWarning) as record:
        pool = BackgroundPool.from_folder(tmp_path, size=16, n=7, seed=0)
    assert len(record) == 1 and "broken.jpg" in str(record[0].message)
    assert pool.images.shape == (7, 16, 16, 3)
    # Crops of flat photos are flat; JPEG's loss allows a few levels of error.
    found = set()
    for image in pool.images:
        colour = np.median(image.reshape(-1, 3), axis=0)
        nearest = min(colours, key=lambda c: np.abs(colour - c).max())
        assert np.abs(image.astype(int) - nearest).max() <= 6
        found.add(nearest)
    assert found == colours  # 7 crops spread over all 3 readable photos


def test_from_folder_one_crop_per_photo_when_there_are_enough(tmp_path):
    for i in range(6):
        _write(tmp_path / f"{i}.png", _flat((40 * i, 255 - 40 * i, 100)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to skip, nothing to warn about
        pool = BackgroundPool.from_folder(tmp_path, size=8, n=4, seed=3)
    assert len({image[0, 0].tobytes() for image in pool.images}) == 4


def test_from_folder_scales_crops(tmp_path):
    # A horizontal ramp: crops of different scale span different ranges of grey.
    ramp = np.repeat(np.linspace(0, 255, 400, dtype=np.uint8)[None, :, None], 300, axis=0)
    _write(tmp_path / "ramp.png", np.repeat(ramp, 3, axis=2))
    pool = BackgroundPool.from_folder(tmp_path, size=16, n=12, seed=0)
    spans = [int(image[..., 0].max()) - int(image[..., 0].min()) for image in pool.images]
    assert max(spans) - min(spans) > 40


def test_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match="No jpg/jpeg/png/bmp images under"):
        BackgroundPool.from_folder(tmp_path, size=16, n=4, seed=0)


def test_folder_of_only_corrupt_files_is_a_clear_error(tmp_path):
    (tmp_path / "x.png").write_bytes(b"\x89PNG garbage")
    with pytest.warns(UserWarning, match="x.png"), pytest.raises(ValueError, match="could be read"):
        BackgroundPool.from_folder(tmp_path, size=16, n=4, seed=0)


def test_missing_folder_and_bad_arrays_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        BackgroundPool.from_folder(tmp_path / "nope", size=16, n=4, seed=0)
    with pytest.raises(ValueError, match="uint8 array"):
        BackgroundPool(np.zeros((4, 16, 16, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="n must be a positive integer"):
        BackgroundPool.builtin(size=16, n=0)

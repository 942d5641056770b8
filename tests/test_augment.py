"""The original imgaug chain: its exact steps, determinism, effect, and the numpy 2 shim."""

import importlib

import numpy as np

import aae.data.augment  # before anything imports imgaug: it installs the numpy 2 shim
from aae.data.augment import make_augmenter


def _images(n: int = 16, size: int = 32) -> np.ndarray:
    """Coloured squares on a textured background: content every augmenter visibly changes."""
    rng = np.random.default_rng(0)
    images = rng.integers(40, 90, (n, size, size, 3), dtype=np.uint8)
    images[:, size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = rng.integers(
        120, 230, (n, 1, 1, 3)
    )
    return images


def test_chain_is_the_original():
    augmenter = make_augmenter(0)
    assert isinstance(augmenter, aae.data.augment.iaa.Sequential) and not augmenter.random_order
    probabilities = [step.p.p.value for step in augmenter]
    assert probabilities == [0.5, 0.5, 0.5, 0.5, 0.3, 0.5, 0.5, 0.5]
    inner = [step.then_list[0] for step in augmenter]
    assert [type(a).__name__ for a in inner] == [
        "Affine",
        "CoarseDropout",
        "GaussianBlur",
        "Add",
        "Invert",
        "Multiply",
        "Multiply",
        "LinearContrast",
    ]
    affine, dropout, blur, add, invert, multiply_channels, multiply, contrast = inner
    assert (affine.scale.a.value, affine.scale.b.value) == (1.0, 1.2)
    # CoarseDropout(p=0.2): keep probability 0.8 on a grid of 5% of the image size.
    assert dropout.mul.other_param.p.value == 0.8
    assert dropout.mul.size_percent.value == 0.05
    # One sigma per image from [0, 1.2] (the original drew one per training run).
    assert (blur.sigma.a.value, blur.sigma.b.value) == (0.0, 1.2)
    assert (add.value.a.value, add.value.b.value, add.per_channel.p.value) == (-25, 25, 0.3)
    assert (invert.p.p.value, invert.per_channel.value) == (0.2, 1)
    assert (multiply_channels.mul.a.value, multiply_channels.mul.b.value) == (0.6, 1.4)
    assert multiply_channels.per_channel.p.value == 0.5
    assert (multiply.mul.a.value, multiply.mul.b.value, multiply.per_channel.value) == (0.6, 1.4, 0)
    assert (contrast.params1d[0].a.value, contrast.params1d[0].b.value) == (0.5, 2.2)
    assert contrast.per_channel.p.value == 0.3


def test_shapes_dtype_and_effect():
    images = _images()
    out = make_augmenter(1)(images=images)
    assert out.shape == images.shape and out.dtype == np.uint8
    changed = [not np.array_equal(a, b) for a, b in zip(out, images, strict=True)]
    assert sum(changed) >= 12  # each image skips all 8 steps with probability ~0.5%
    assert out.min() < images.min() or out.max() > images.max()  # values leave the input range


def test_deterministic_given_the_seed():
    images = _images()
    first = make_augmenter(7)(images=images)
    assert np.array_equal(first, make_augmenter(7)(images=images))
    assert not np.array_equal(first, make_augmenter(8)(images=images))


def test_sctypes_shim(monkeypatch):
    # imgaug 0.4.0 reads numpy 1's np.sctypes, removed in numpy 2; aae.data.augment restores it.
    assert np.uint8 in np.sctypes["uint"] and np.float32 in np.sctypes["float"]
    sentinel = {"uint": [np.uint8]}
    monkeypatch.setattr(np, "sctypes", sentinel, raising=False)
    importlib.reload(aae.data.augment)
    assert np.sctypes is sentinel  # only set when missing: an existing value is kept


def test_dropout_cells_scale_with_the_image():
    """At 32 px the dropout cells cover the same fraction of the image as at 128 px, the
    size the original chain was written for (imgaug's minimum 3x3 grid would otherwise make
    them twice as large)."""
    import imgaug.augmenters as iaa
    from scipy import ndimage

    block_fraction = {}
    for size in (32, 128):
        (dropout,) = make_augmenter(0, size).find_augmenters(
            lambda augmenter, parents: isinstance(augmenter, iaa.CoarseDropout)
        )
        dropped = dropout(images=np.full((40, size, size, 3), 255, np.uint8))[..., 0] == 0
        areas = np.concatenate([np.bincount(ndimage.label(d)[0].ravel())[1:] for d in dropped])
        block_fraction[size] = np.median(areas) / size**2
    assert 0.6 < block_fraction[32] / block_fraction[128] < 1.6, block_fraction

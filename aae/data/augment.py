"""The original AAE input augmentation (imgaug), the one module of `aae` that imports imgaug."""

from __future__ import annotations

import numpy as np

# imgaug 0.4.0 builds its dtype tables from `np.sctypes` at import time, and numpy 2 removed
# that attribute; restore numpy 1's value (only if missing) so the import works.
if not hasattr(np, "sctypes"):
    np.sctypes = {
        "int": [np.int8, np.int16, np.int32, np.int64],
        "uint": [np.uint8, np.uint16, np.uint32, np.uint64],
        "float": [np.float16, np.float32, np.float64, np.longdouble],
        "complex": [np.complex64, np.complex128, np.clongdouble],
        "others": [bool, object, bytes, str, np.void],
    }

import imgaug.augmenters as iaa

#: The crop size the original chain was written for.
REFERENCE_SIZE = 128


def make_augmenter(seed: int, image_size: int = REFERENCE_SIZE) -> iaa.Sequential:
    """The augmentation chain of the original `train_template.cfg`, seeded for determinism.

    Applied per batch to uint8 RGB images (N, H, W, 3) that already have a background
    pasted in: `make_augmenter(seed, size)(images=batch)`. Two augmenters made with the same
    seed produce identical outputs on identical inputs.

    At 128² (the original's size) the chain is the original's. For other sizes the two
    parameters measured in pixels scale with the image, so a scaled profile sees the same
    augmentation relative to the object: the dropout grid keeps its ~6 cells across (the
    original's size_percent 0.05 of 128 px; at 32 px imgaug's minimum grid of 3 would make
    the blocks twice as large), and the blur's sigma keeps its fraction of the width.
    """
    scale = image_size / REFERENCE_SIZE
    augmenter = iaa.Sequential(
        [
            iaa.Sometimes(0.5, iaa.Affine(scale=(1.0, 1.2))),
            iaa.Sometimes(0.5, iaa.CoarseDropout(p=0.2, size_percent=0.05 / scale, min_size=2)),
            # The original writes GaussianBlur(1.2*np.random.rand()) in a config string that
            # is evaluated once, which fixes ONE sigma for a whole training run; sampling
            # sigma per image from the same range lets every run see every blur level.
            iaa.Sometimes(0.5, iaa.GaussianBlur(sigma=(0.0, 1.2 * scale))),
            iaa.Sometimes(0.5, iaa.Add((-25, 25), per_channel=0.3)),
            iaa.Sometimes(0.3, iaa.Invert(0.2, per_channel=True)),
            iaa.Sometimes(0.5, iaa.Multiply((0.6, 1.4), per_channel=0.5)),
            iaa.Sometimes(0.5, iaa.Multiply((0.6, 1.4))),
            # LinearContrast is imgaug 0.4's name for the original's ContrastNormalization.
            iaa.Sometimes(0.5, iaa.LinearContrast((0.5, 2.2), per_channel=0.3)),
        ],
        random_order=False,
    )
    # `seed_` re-seeds every child; Sequential(seed=...) would seed only the container.
    augmenter.seed_(seed)
    return augmenter

"""Bounding boxes from masks and square, zero-padded object crops (the AAE's input patches).

Boxes are (x, y, w, h) in the BOP convention: (x, y) is the top-left pixel and
w = x_max - x_min, h = y_max - y_min, i.e. the box spans the centres of the extreme
pixels and its centre is (x + w / 2, y + h / 2). Boxes read from BOP annotations and
boxes computed here therefore crop identically.
"""

from __future__ import annotations

import cv2
import numpy as np

from aae.errors import AAEError

INTERPOLATIONS = {
    "nearest": cv2.INTER_NEAREST,
    "linear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
}


def bbox_from_mask(mask: np.ndarray) -> tuple[int, int, int, int]:
    """The (x, y, w, h) box of the non-zero pixels of a 2D mask (e.g. depth > 0)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise AAEError(f"the mask must be 2D (H, W), got shape {mask.shape}")
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        raise AAEError(
            "object not visible in the rendering (empty mask); are the vertices in mm and "
            "the object in front of the camera?"
        )
    x0, y0 = int(xs.min()), int(ys.min())
    return x0, y0, int(xs.max()) - x0, int(ys.max()) - y0


def square_crop(
    image: np.ndarray,
    box_xywh: tuple[float, float, float, float],
    pad_factor: float = 1.2,
    size: int = 128,
    offset: tuple[float, float] = (0.0, 0.0),
    interpolation: str = "nearest",
) -> np.ndarray:
    """Crop a square of side max(w, h) * pad_factor around the box centre, resized to size x size.

    The square is centred on the box centre shifted by `offset` (pixels, x then y). Parts
    of the square outside the image are filled with zeros. (The original AAE clipped the
    square to the image and resized the clipped, non-square patch, which stretched objects
    near the border; padding keeps the aspect ratio.)

    Args:
        image: (H, W) or (H, W, C) array, e.g. RGB uint8 or depth float32.
        box_xywh: the object's box (x, y, w, h).
        pad_factor: side of the square relative to the box's longer side.
        size: side of the output patch in pixels.
        offset: shift (dx, dy) of the square's centre in pixels.
        interpolation: "nearest" (the original's, and the right one for depth), "linear",
            "cubic" or "area".

    Returns:
        The (size, size) or (size, size, C) patch with the image's dtype.
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise AAEError(f"image must be (H, W) or (H, W, C), got shape {image.shape}")
    if interpolation not in INTERPOLATIONS:
        raise AAEError(
            f"interpolation must be one of {sorted(INTERPOLATIONS)}, got {interpolation!r}"
        )
    if size < 1 or pad_factor <= 0:
        raise AAEError(
            f"size must be >= 1 and pad_factor > 0, got size={size}, pad_factor={pad_factor}"
        )
    x, y, w, h = (float(v) for v in box_xywh)
    if w < 0 or h < 0 or max(w, h) * pad_factor < 1:
        raise AAEError(
            f"box {tuple(box_xywh)} is empty or less than a pixel across; crop a visible object"
        )
    side = round(max(w, h) * pad_factor)
    centre_x = x + w / 2.0 + offset[0]
    centre_y = y + h / 2.0 + offset[1]
    # First pixel of the square: its pixel centres span centre +- (side - 1) / 2.
    left = int(np.floor(centre_x - (side - 1) / 2.0 + 0.5))
    top = int(np.floor(centre_y - (side - 1) / 2.0 + 0.5))

    square = np.zeros((side, side, *image.shape[2:]), dtype=image.dtype)
    src_x0, src_y0 = max(left, 0), max(top, 0)
    src_x1, src_y1 = min(left + side, image.shape[1]), min(top + side, image.shape[0])
    if src_x0 < src_x1 and src_y0 < src_y1:
        square[src_y0 - top : src_y1 - top, src_x0 - left : src_x1 - left] = image[
            src_y0:src_y1, src_x0:src_x1
        ]
    patch = cv2.resize(square, (size, size), interpolation=INTERPOLATIONS[interpolation])
    # cv2 drops a trailing channel axis of length 1; keep the caller's layout.
    return patch.reshape((size, size, *image.shape[2:]))


def random_offset(
    box_xywh: tuple[float, float, float, float], max_rel_offset: float, rng: np.random.Generator
) -> tuple[float, float]:
    """A random crop-centre shift U(-m, m) * (w, h), m = max_rel_offset (original: 0.2)."""
    if max_rel_offset < 0:
        raise AAEError(f"max_rel_offset must be non-negative, got {max_rel_offset}")
    _, _, w, h = box_xywh
    dx = rng.uniform(-max_rel_offset, max_rel_offset) * w
    dy = rng.uniform(-max_rel_offset, max_rel_offset) * h
    return float(dx), float(dy)

"""Background crops pasted behind the object in AAE training inputs.

The original pastes random 128x128 crops of Pascal VOC2012 photos wherever the rendered
depth is zero. `BackgroundPool.from_folder` does the same for any folder of images (VOC's
`JPEGImages` included); `BackgroundPool.builtin` needs no download: it mixes crops of the
photos that ship inside scikit-learn and scikit-image with procedural clutter.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from aae.errors import AAEError

#: File suffixes `from_folder` reads (case-insensitive).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
#: Crop side as a fraction of the photo's shorter side. The original's native 128-px crops of
#: ~375-px VOC photos sit at ~0.34; the range adds scale variety around it.
CROP_SCALE = (0.25, 1.0)
#: Fraction of `builtin` crops taken from photos; the rest is procedural clutter.
BUILTIN_PHOTO_FRACTION = 0.5
#: Colour photos bundled with the scikit-image wheel (no download needed).
SKIMAGE_PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "immunohistochemistry",
    "hubble_deep_field",
)


@dataclass(frozen=True, eq=False)
class BackgroundPool:
    """N square uint8 RGB background crops, `images` of shape (N, size, size, 3)."""

    images: np.ndarray

    def __post_init__(self) -> None:
        images = self.images
        if (
            not isinstance(images, np.ndarray)
            or images.dtype != np.uint8
            or images.ndim != 4
            or images.shape[0] < 1
            or images.shape[1] != images.shape[2]
            or images.shape[3] != 3
        ):
            raise AAEError(
                "BackgroundPool.images must be a uint8 array (N, size, size, 3) with N >= 1, got "
                f"{getattr(images, 'dtype', type(images).__name__)} "
                f"{getattr(images, 'shape', '')}; build one with BackgroundPool.from_folder "
                "or BackgroundPool.builtin."
            )

    @property
    def size(self) -> int:
        """Side length of every crop in pixels."""
        return self.images.shape[1]

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, indices: int | slice | Sequence[int] | np.ndarray) -> np.ndarray:
        return self.images[indices]

    def sample(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """The crops at `indices`, shape (len(indices), size, size, 3)."""
        return self.images[np.asarray(indices, dtype=np.intp)]

    @classmethod
    def from_folder(
        cls, path: str | os.PathLike, size: int, n: int, seed: int = 0
    ) -> BackgroundPool:
        """`n` random crops of random scale, resized to `size`, from the images under `path`.

        Every jpg/jpeg/png/bmp file below `path` (recursively) is a candidate; the crops are
        spread evenly over the files in a seeded random order, so with n <= #files every crop
        comes from a different photo, like the original. Unreadable files are skipped with
        one warning naming them; raises ValueError if none can be read.
        """
        _check_size_n(size, n)
        root = Path(path)
        if not root.is_dir():
            raise AAEError(f"Background folder {str(root)!r} does not exist or is not a folder.")
        files = sorted(
            p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        )
        if not files:
            raise AAEError(
                f"No {'/'.join(s[1:] for s in IMAGE_SUFFIXES)} images under {str(root)!r}; "
                "point it at a folder of photos such as VOC2012/JPEGImages, or use "
                "BackgroundPool.builtin()."
            )
        rng = np.random.default_rng(seed)
        order = [files[i] for i in rng.permutation(len(files))]
        crops = np.empty((n, size, size, 3), dtype=np.uint8)
        filled = 0
        unreadable: dict[Path, None] = {}  # insertion-ordered set, for the warning
        # Several passes only when n exceeds the number of readable files; each decode yields
        # the remaining crops divided evenly over the files still to come in this pass.
        while filled < n:
            readable = [p for p in order if p not in unreadable]
            if not readable:
                break
            for rank, file in enumerate(readable):
                image = _read_rgb(file)
                if image is None:
                    unreadable[file] = None
                    continue
                quota = math.ceil((n - filled) / (len(readable) - rank))
                for _ in range(quota):
                    crops[filled] = _random_crop(image, size, rng)
                    filled += 1
                if filled == n:
                    break
        if unreadable:
            names = [str(p) for p in unreadable]
            more = f" and {len(names) - 10} more" if len(names) > 10 else ""
            warnings.warn(
                f"Skipped {len(names)} unreadable background image(s): "
                f"{', '.join(names[:10])}{more}.",
                stacklevel=2,
            )
        if filled == 0:
            raise AAEError(
                f"None of the {len(files)} image files under {str(root)!r} could be read; "
                "check that they are valid jpg/png/bmp images."
            )
        return cls(crops)

    @classmethod
    def builtin(cls, size: int, n: int, seed: int = 0) -> BackgroundPool:
        """`n` crops needing no download: bundled photos mixed with procedural clutter.

        About `BUILTIN_PHOTO_FRACTION` of the crops come from scikit-learn's sample images
        and scikit-image's bundled colour photos (`SKIMAGE_PHOTOS`), the rest are random
        gradients/noise with rectangles, ellipses, lines and polygons, in shuffled order.
        """
        _check_size_n(size, n)
        rng = np.random.default_rng(seed)
        photos = _bundled_photos()
        n_photo = round(n * BUILTIN_PHOTO_FRACTION)
        crops = [_random_crop(photos[rng.integers(len(photos))], size, rng) for _ in range(n_photo)]
        crops += [_clutter(size, rng) for _ in range(n - n_photo)]
        return cls(np.stack([crops[i] for i in rng.permutation(n)]))


def _check_size_n(size: int, n: int) -> None:
    for name, value in (("size", size), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise AAEError(f"BackgroundPool {name} must be a positive integer, got {value!r}.")


def _read_rgb(file: Path) -> np.ndarray | None:
    """The image as uint8 RGB (H, W, 3), or None if it cannot be decoded."""
    # imdecode instead of imread: same codecs, but it also handles non-ASCII paths.
    data = np.fromfile(file, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None or image.ndim != 3 or min(image.shape[:2]) < 1:
        return None
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _random_crop(image: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random square crop of random scale (`CROP_SCALE`), resized to size x size."""
    height, width = image.shape[:2]
    side = max(1, round(min(height, width) * rng.uniform(*CROP_SCALE)))
    top = int(rng.integers(height - side + 1))
    left = int(rng.integers(width - side + 1))
    crop = image[top : top + side, left : left + side]
    # Area averaging avoids aliasing when shrinking; bilinear when a small photo is enlarged.
    interpolation = cv2.INTER_AREA if side >= size else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(crop, (size, size), interpolation=interpolation))


def _bundled_photos() -> list[np.ndarray]:
    """The colour photos shipped inside the scikit-learn and scikit-image wheels."""
    import skimage.data
    from sklearn.datasets import load_sample_images

    photos = list(load_sample_images().images)
    photos += [getattr(skimage.data, name)() for name in SKIMAGE_PHOTOS]
    return [np.ascontiguousarray(p[..., :3], dtype=np.uint8) for p in photos]


def _random_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(0, 256, 3))


def _clutter(size: int, rng: np.random.Generator) -> np.ndarray:
    """A procedural clutter image: a gradient or noise base with random shapes on top."""
    if rng.random() < 0.5:
        # Linear gradient between two random colours along a random direction.
        angle = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1)
        ramp = (np.cos(angle) * xx + np.sin(angle) * yy)[..., None]
        ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
        start, end = np.array(_random_colour(rng)), np.array(_random_colour(rng))
        image = (start + ramp * (end - start)).astype(np.uint8)
    else:
        # Smooth coloured noise: a few random pixels upsampled to full size.
        cells = int(rng.integers(2, 9))
        coarse = rng.integers(0, 256, (cells, cells, 3), dtype=np.uint8)
        image = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    image = np.ascontiguousarray(image)
    for _ in range(int(rng.integers(3, 16))):
        colour = _random_colour(rng)
        kind = rng.integers(4)
        p1 = tuple(int(v) for v in rng.integers(0, size, 2))
        p2 = tuple(int(v) for v in rng.integers(0, size, 2))
        filled = -1 if rng.random() < 0.6 else max(1, size // 64)
        if kind == 0:
            cv2.rectangle(image, p1, p2, colour, filled)
        elif kind == 1:
            axes = tuple(int(v) for v in rng.integers(1, max(2, size // 2), 2))
            cv2.ellipse(image, p1, axes, float(rng.uniform(0, 180)), 0, 360, colour, filled)
        elif kind == 2:
            cv2.line(image, p1, p2, colour, int(rng.integers(1, max(2, size // 16))))
        else:
            points = rng.integers(0, size, (int(rng.integers(3, 7)), 2)).astype(np.int32)
            cv2.fillPoly(image, [points], colour)
    if rng.random() < 0.5:
        noise = rng.normal(0.0, rng.uniform(2, 20), image.shape)
        image = np.clip(image + noise, 0, 255).astype(np.uint8)
    return image

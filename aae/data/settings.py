"""The settings of a training set, importable without Keras, pyrender or imgaug.

:class:`TrainingSetConfig` decides the pre-rendered training images (the original's
train_template.cfg); ``aae.profiles`` reads and prints it without loading the pipeline that
renders them (``aae.data.training_set``).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from aae.errors import AAEError

#: The train_template.cfg camera: K = [1075.65, 0, 720/2, 0, 1073.90, 540/2, 0, 0, 1].
TEMPLATE_K = ((1075.65, 0.0, 360.0), (0.0, 1073.90, 270.0), (0.0, 0.0, 1.0))


@dataclass(frozen=True)
class TrainingSetConfig:
    """Everything that determines the pre-rendered training images (train_template.cfg).

    Attributes:
        n_images: number of (input, target) pairs (NOOF_TRAINING_IMGS).
        image_size: side of the square crops fed to the network (H = W).
        render_width, render_height: size of the full rendering (RENDER_DIMS).
        K: 3x3 camera matrix of the rendering, as nested tuples.
        radius: camera-object distance in mm (RADIUS).
        pad_factor: square crop side = max(w, h) of the object's box times this.
        max_rel_offset: the input crop is shifted by up to this fraction of w and h.
        seed: seed of the rotations, lights and crop offsets.
    """

    n_images: int = 20000
    image_size: int = 128
    render_width: int = 720
    render_height: int = 540
    K: tuple[tuple[float, float, float], ...] = TEMPLATE_K
    radius: float = 700.0
    pad_factor: float = 1.2
    max_rel_offset: float = 0.20
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_images", "image_size", "render_width", "render_height"):
            if not _is_int_at_least(getattr(self, name), 1):
                raise AAEError(
                    f"TrainingSetConfig.{name} must be a positive integer, got "
                    f"{getattr(self, name)!r}."
                )
        if not _is_int_at_least(self.seed, 0):
            raise AAEError(f"TrainingSetConfig.seed must be an integer >= 0, got {self.seed!r}.")
        K = np.asarray(self.K, dtype=np.float64)
        if K.shape != (3, 3) or not np.all(np.isfinite(K)):
            raise AAEError(
                f"TrainingSetConfig.K must be a finite 3x3 camera matrix, got {self.K!r}."
            )
        # Normalise to nested float tuples so equal cameras hash and compare equal.
        object.__setattr__(self, "K", tuple(tuple(float(v) for v in row) for row in K))
        if not self.radius > 0:
            raise AAEError(
                "TrainingSetConfig.radius must be > 0 mm (700 in the original), got "
                f"{self.radius!r}."
            )
        if not self.pad_factor >= 1:
            raise AAEError(
                "TrainingSetConfig.pad_factor must be >= 1 (1.2 in the original), got "
                f"{self.pad_factor!r}."
            )
        if not 0 <= self.max_rel_offset < 1:
            raise AAEError(
                "TrainingSetConfig.max_rel_offset must be in [0, 1) (0.2 in the original), got "
                f"{self.max_rel_offset!r}."
            )

    @property
    def camera_matrix(self) -> np.ndarray:
        """K as a (3, 3) float64 array."""
        return np.array(self.K, dtype=np.float64)


def _is_int_at_least(value: object, minimum: int) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= minimum

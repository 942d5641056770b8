"""Pictures of what a network does: augmented inputs, reconstructions and targets."""

from __future__ import annotations

import os
from pathlib import Path

import keras
import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt
import numpy as np


def save_reconstructions(
    model: keras.Model,
    inputs: np.ndarray,
    targets: np.ndarray,
    path: str | os.PathLike,
    title: str = "",
) -> Path:
    """Saves a PNG with three rows: augmented inputs, the model's reconstructions, targets.

    Args:
        model: The autoencoder (takes [0, 255] images, outputs [0, 1]; see ``aae.net.model``).
        inputs: (N, S, S, 3) uint8 augmented inputs, as ``TrainingData.batches`` yields them.
        targets: (N, S, S, 3) uint8 reconstruction targets.
        path: Where to write the PNG.
        title: A title above the picture.
    """
    outputs = np.asarray(model.predict(inputs, verbose=0))
    rows = (
        ("augmented input", _unit(inputs)),
        ("reconstruction", outputs),
        ("target", _unit(targets)),
    )
    n = len(inputs)
    figure, axes = plt.subplots(3, n, figsize=(1.3 * n, 4.2), squeeze=False)
    for r, (label, images) in enumerate(rows):
        for c in range(n):
            axes[r][c].imshow(np.clip(images[c], 0, 1))
            axes[r][c].set_xticks([])
            axes[r][c].set_yticks([])
        axes[r][0].set_ylabel(label, fontsize=8)
    if title:
        figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _unit(images: np.ndarray) -> np.ndarray:
    """uint8 images as floats in [0, 1] for imshow (floats are taken as already there)."""
    images = np.asarray(images)
    return images / 255.0 if images.dtype == np.uint8 else images

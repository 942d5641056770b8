"""Whether a trained network has collapsed: codes that are all alike, or reconstructions
without spread, make every pose estimate the same, whatever the input."""

from __future__ import annotations

import numpy as np

from aae.errors import AAEError

#: A mean pairwise code cosine above this means the codes barely differ between views.
COLLAPSED_COSINE = 0.95
#: A reconstruction spread (mean per-pixel standard deviation over images, 0-1 scale) below
#: this means the decoder draws the same picture for every input.
COLLAPSED_SPREAD = 0.01


def mean_code_cosine(codes: np.ndarray) -> float:
    """The mean cosine similarity over all pairs of distinct codes (rows of ``codes``).

    1 when every code points the same way; about 0 for codes in unrelated directions.
    """
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim != 2 or len(codes) < 2:
        raise AAEError(f"need at least 2 codes as an (N, latent) array, got shape {codes.shape}")
    norms = np.linalg.norm(codes, axis=1, keepdims=True)
    unit = codes / np.where(norms > 0, norms, 1.0)
    n = len(unit)
    total = float(np.sum(unit.sum(axis=0) ** 2))  # the sum of cosines over all ordered pairs
    return (total - float(np.sum(unit * unit))) / (n * (n - 1))


def reconstruction_spread(reconstructions: np.ndarray) -> float:
    """The mean over pixels and channels of the standard deviation across images of
    ``reconstructions`` (N, H, W, C) on a 0-1 scale: 0 when every image is the same."""
    images = np.asarray(reconstructions, dtype=np.float64)
    if images.ndim < 2 or len(images) < 2:
        raise AAEError(f"need at least 2 reconstructions, got shape {images.shape}")
    return float(images.std(axis=0).mean())


def collapse_warning(code_cosine: float | None, spread: float | None = None) -> str | None:
    """One line saying the network collapsed, what it means and what to try; None when
    neither statistic says so."""
    reasons = []
    if code_cosine is not None and code_cosine > COLLAPSED_COSINE:
        reasons.append(f"its codes are nearly identical (mean code cosine {code_cosine:.2f})")
    if spread is not None and spread < COLLAPSED_SPREAD:
        reasons.append(f"its reconstructions have no spread ({spread:.3f})")
    if not reasons:
        return None
    return (
        "collapsed network: "
        + " and ".join(reasons)
        + ", so every input gets about the same pose and the results mean nothing; "
        "try a larger input (64x64), more training steps or a smaller learning rate"
    )

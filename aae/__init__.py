"""The Augmented Autoencoder (Sundermeyer et al.) for 6D object pose estimation, in Keras 3.

Geometry is in millimetres throughout (the BOP convention): mesh vertices, translations,
depth maps and object diameters. Rotations are 3x3 model-to-camera matrices in the OpenCV
camera frame (x right, y down, z forward). Images are RGB, uint8 on disk, in batches and
at a network's input; a network scales them to [0, 1] in its first layer (`aae.net.model`).
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aae.net.hypermodel import AAEHyperModel
    from aae.net.model import build_aae

__all__ = ["AAEHyperModel", "build_aae"]

# Importing Keras (and TensorFlow behind it) takes seconds, so the network API is loaded on
# first use: `import aae` stays cheap and never pulls in pyrender or imgaug.
_LAZY = {"AAEHyperModel": "aae.net.hypermodel", "build_aae": "aae.net.model"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'aae' has no attribute {name!r}")

"""The architecture settings that are not searched, importable without Keras.

:class:`NetworkSettings` is part of every profile (``aae.profiles``) and of every trained
network's ``network.json``; Keras is loaded only when :meth:`NetworkSettings.build` builds a
model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras


@dataclass(frozen=True)
class NetworkSettings:
    """The architecture settings that are not searched (the paper keeps them at default).

    Attributes:
        image_size: Side of the square input and reconstruction (128; a multiple of 16).
        width: Multiplier on every filter count, for scaled CPU profiles (1 = the paper).
        latent_dim: Size of the latent code (128).
        bootstrap_ratio: Bootstrapped L2 ratio (4; 16 for dark or thin objects).
        precision: "float32", "mixed_bfloat16" or "mixed_float16": the layers' dtype policy
            (`aae.net.model.PRECISIONS`); the output layer and the loss stay float32.
    """

    image_size: int = 128
    width: float = 1.0
    latent_dim: int = 128
    bootstrap_ratio: int = 4
    precision: str = "float32"

    def build(self, config: dict) -> keras.Model:
        """The compiled AAE of ``config`` with these settings."""
        from aae.net.model import build_aae  # Keras is loaded when a network is built

        return build_aae(config, **dataclasses.asdict(self))

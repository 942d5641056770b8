"""The AAE as a keras-tuner HyperModel over the paper's search space (Table 1)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import keras
import keras_tuner

from aae.errors import AAEError
from aae.net.configs import SEARCH_SPACE, SUNDERMEYER
from aae.net.model import build_aae

if TYPE_CHECKING:
    from aae.data.training_set import TrainingData


class AAEHyperModel(keras_tuner.HyperModel):
    """Builds `build_aae` networks from the nine hyperparameters NK1..NK4, KE, KD, OPT, MB, LR.

    Each is declared as `hp.Choice(name, values)` with the values of
    `aae.net.configs.SEARCH_SPACE` and, as default, the original network's value (the bold
    entries of Table 1, `aae.net.configs.SUNDERMEYER`). MB is the batch size of the data
    pipeline built in `fit`.

    Args:
        image_size, width, latent_dim, bootstrap_ratio, precision: passed to `build_aae`
            for every trial (fixed, not searched).
        values: The values searched for some hyperparameters, each a subset of Table 1's
            (e.g. ``{"OPT": ("Adam",)}``; one value makes it a `Fixed` hyperparameter); the
            others keep all of Table 1's values.
    """

    def __init__(
        self,
        image_size: int = 128,
        width: float = 1.0,
        latent_dim: int = 128,
        bootstrap_ratio: int = 4,
        name: str | None = None,
        tunable: bool = True,
        precision: str = "float32",
        values: Mapping[str, Sequence] | None = None,
    ) -> None:
        super().__init__(name=name, tunable=tunable)
        self.values = restricted_space(values or {})
        self.image_size = image_size
        self.width = width
        self.latent_dim = latent_dim
        self.bootstrap_ratio = bootstrap_ratio
        self.precision = precision

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        """Declare the nine hyperparameters and build the compiled AAE of their values."""
        config = {
            name: hp.Fixed(name, values[0])
            if len(values) == 1
            else hp.Choice(
                name,
                list(values),
                default=SUNDERMEYER[name] if SUNDERMEYER[name] in values else values[0],
            )
            for name, values in self.values.items()
        }
        return build_aae(
            config,
            image_size=self.image_size,
            width=self.width,
            latent_dim=self.latent_dim,
            bootstrap_ratio=self.bootstrap_ratio,
            precision=self.precision,
        )

    def fit(
        self,
        hp: keras_tuner.HyperParameters,
        model: keras.Model,
        data: TrainingData,
        *,
        seed: int = 0,
        workers: int | None = None,
        steps_per_epoch: int | None = None,
        initial_step: int = 0,
        **kwargs: Any,
    ) -> keras.callbacks.History:
        """Train `model` on augmented batches of `data` with batch size `hp.get("MB")`.

        `seed`, `workers` and `steps_per_epoch` configure the batch pipeline
        (`TrainingData.batches`; steps_per_epoch sets the length of an epoch in batches);
        `initial_step` (the optimizer steps a resumed trial has trained; PredictiveTuner
        passes it) continues the batch stream where the interrupted run left it;
        all other keyword arguments (epochs, callbacks, initial_epoch, ...) go to
        `model.fit`, with `shuffle=False` unless given: the batches are already random, and
        Keras' shuffle of their order would make the stream depend on Python's global RNG.
        A tuner passes these through `tuner.search(data, ...)`.
        """
        batches = data.batches(
            hp.get("MB"),
            seed=seed,
            workers=workers,
            steps_per_epoch=steps_per_epoch,
            initial_epoch=kwargs.get("initial_epoch", 0),
            initial_step=initial_step,
        )
        return model.fit(batches, **{"shuffle": False, **kwargs})


def restricted_space(values: Mapping[str, Sequence]) -> dict[str, tuple]:
    """Table 1's space with the named hyperparameters restricted to ``values``.

    Raises:
        AAEError: for an unknown name, an empty list or a value that is not in Table 1.
    """
    unknown = sorted(set(values) - set(SEARCH_SPACE))
    if unknown:
        raise AAEError(f"unknown hyperparameters {unknown}; the space has {list(SEARCH_SPACE)}")
    space = {}
    for name, table in SEARCH_SPACE.items():
        chosen = tuple(values.get(name, table))
        outside = [value for value in chosen if value not in table]
        if not chosen or outside:
            raise AAEError(
                f"values of {name} must be a non-empty subset of Table 1's {list(table)} "
                f"(got {list(chosen)})"
            )
        space[name] = tuple(value for value in table if value in chosen)  # Table 1's order
    return space

"""The AAE reconstruction loss: bootstrapped L2 (the original DLR `decoder.py` loss)."""

from __future__ import annotations

import math
import numbers

import keras
from keras import ops

from aae.errors import AAEError


@keras.saving.register_keras_serializable(package="aae")
class BootstrappedL2(keras.losses.Loss):
    """Mean of the largest `1/ratio` of each sample's squared errors.

    Per sample, the squared errors over all H·W·C elements are computed and only the top
    k = H·W·C // ratio are kept; the loss is the mean over those (and, with the default
    reduction, over the batch). This focuses training on the worst-reconstructed pixels,
    e.g. the object's edges, instead of the large, easy background. `ratio=1` is plain MSE;
    the original uses 4, and 16 for dark or thin objects.

    `target_scale` multiplies the targets first: the AAE gets uint8 targets (so batches
    cross process boundaries as bytes) and compiles this loss with 1/255, making the loss
    the original's, on [0, 1] images. Predictions and targets are cast to float32 whatever
    the model's precision: a bfloat16 mean of 4096 squared errors would lose the small
    differences between good networks.
    """

    def __init__(
        self,
        ratio: int = 4,
        name: str = "bootstrapped_l2",
        reduction: str = "sum_over_batch_size",
        dtype: str | None = None,
        target_scale: float = 1.0,
    ) -> None:
        if isinstance(ratio, bool) or not isinstance(ratio, numbers.Integral) or ratio < 1:
            raise AAEError(
                f"BootstrappedL2 ratio must be an integer >= 1 (1 = plain MSE, the original "
                f"uses 4 or 16), got {ratio!r}."
            )
        if (
            isinstance(target_scale, bool)
            or not isinstance(target_scale, numbers.Real)
            or not target_scale > 0
        ):
            raise AAEError(
                f"BootstrappedL2 target_scale must be a number > 0 (1/255 for uint8 targets), "
                f"got {target_scale!r}."
            )
        # float32 unless asked otherwise: Keras casts both inputs to the loss dtype first.
        super().__init__(name=name, reduction=reduction, dtype=dtype or "float32")
        self.ratio = int(ratio)
        self.target_scale = float(target_scale)

    def call(self, y_true, y_pred):
        """Per-sample bootstrapped L2 of batched images (or any batched tensors)."""
        if any(d is None for d in y_pred.shape[1:]):
            raise AAEError(
                f"BootstrappedL2 needs the per-sample shape to be static to compute k, got "
                f"{tuple(y_pred.shape)}; give the model a fixed input size."
            )
        n = math.prod(y_pred.shape[1:])
        k = n // self.ratio
        if k < 1:
            raise AAEError(
                f"BootstrappedL2 ratio {self.ratio} keeps no element of a sample with {n} "
                f"elements; use a ratio <= {n}."
            )
        y_pred = ops.cast(y_pred, "float32")
        y_true = ops.cast(y_true, "float32")
        if self.target_scale != 1.0:
            y_true = y_true * self.target_scale
        squared = ops.reshape(ops.square(y_pred - y_true), (-1, n))
        if k < n:
            # Order is irrelevant for the mean; unsorted top-k is cheaper where supported.
            squared, _ = ops.top_k(squared, k, sorted=False)
        return ops.mean(squared, axis=-1)

    def get_config(self) -> dict:
        """The constructor arguments, for `keras.saving`."""
        return {**super().get_config(), "ratio": self.ratio, "target_scale": self.target_scale}

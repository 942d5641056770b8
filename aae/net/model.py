"""The Augmented Autoencoder network, exactly as the original DLR code builds it.

Encoder: four stride-2 'same' convolutions with ReLU (NK1..NK4 filters, kernel KE), flatten,
a linear Dense to the latent code. Decoder: a ReLU Dense to (s, s, NK4) with s = size/16,
then three nearest-neighbour x2 upsamplings each followed by a ReLU convolution (NK3, NK2,
NK1 filters, kernel KD), a final x2 upsampling and a sigmoid convolution to RGB. No batch
norm, no transposed convolutions; Glorot-uniform initialisation (TF1's xavier).

Contract: the encoder (and so the AAE) takes images with values in [0, 255], uint8 as the
data pipeline yields them (floats in [0, 255] work too), and divides by 255 in its first
layer, so batches cross process and device boundaries as bytes, a quarter of float32's
size. The decoder outputs float32 images in [0, 1]; the compiled loss divides uint8-range
targets by 255 the same way (``BootstrappedL2(target_scale=1/255)``).

Precision: ``precision="mixed_bfloat16"`` or ``"mixed_float16"`` gives every layer that dtype
policy (per layer, not keras' global policy, so other models in the process are unaffected),
except the final sigmoid convolution, which stays float32 like the loss.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping

import keras

from aae.errors import AAEError
from aae.net.configs import validate_config
from aae.net.losses import BootstrappedL2

#: Four stride-2 stages: the input side must be a multiple of 2**4.
DOWNSAMPLING = 16

#: Pixel values of the images the model takes: [0, PIXEL_MAX] (uint8).
PIXEL_MAX = 255.0

#: Accepted ``precision`` values: keras dtype policies of the layers.
PRECISIONS: tuple[str, ...] = ("float32", "mixed_bfloat16", "mixed_float16")


def _is_positive_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > 0


def scaled_filters(config: Mapping[str, object], width: float = 1.0) -> tuple[int, int, int, int]:
    """The (NK1, NK2, NK3, NK4) filter counts of `config` multiplied by `width` (at least 1)."""
    if not width > 0:
        raise AAEError(f"width multiplier must be > 0 (1.0 = the paper's network), got {width!r}.")
    return tuple(max(1, round(config[name] * width)) for name in ("NK1", "NK2", "NK3", "NK4"))


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    """The optimizer the original builds as `tf.train.<name>Optimizer(learning_rate)`.

    Adam keeps TF1's epsilon of 1e-8 (Keras defaults to 1e-7); Momentum uses 0.9, since
    TF1's MomentumOptimizer has no default momentum.
    """
    if name == "Adam":
        return keras.optimizers.Adam(learning_rate=learning_rate, epsilon=1e-8)
    if name == "Momentum":
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.9)
    if name == "SGD":
        return keras.optimizers.SGD(learning_rate=learning_rate)
    raise AAEError(f"Unknown optimizer {name!r}; choose one of 'Adam', 'Momentum', 'SGD'.")


def _check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise AAEError(
            f"precision must be one of {list(PRECISIONS)} (a keras dtype policy), got "
            f"{precision!r}."
        )
    return precision


def build_encoder(
    filters: tuple[int, ...],
    kernel_size: int,
    image_size: int,
    latent_dim: int,
    precision: str = "float32",
) -> keras.Model:
    """The encoder sub-model, (S, S, 3) images in [0, 255] (uint8) -> (latent_dim,) codes."""
    policy = _check_precision(precision)
    images = keras.Input((image_size, image_size, 3), name="image")
    # The one place pixels become [0, 1] floats: everything upstream moves uint8.
    x = keras.layers.Rescaling(1.0 / PIXEL_MAX, name="scale", dtype=policy)(images)
    for i, n in enumerate(filters, start=1):
        x = keras.layers.Conv2D(
            n,
            kernel_size,
            strides=2,
            padding="same",
            activation="relu",
            name=f"enc_conv{i}",
            dtype=policy,
        )(x)
    x = keras.layers.Flatten(name="flatten", dtype=policy)(x)
    z = keras.layers.Dense(latent_dim, name="z", dtype=policy)(x)
    return keras.Model(images, z, name="encoder")


def build_decoder(
    filters: tuple[int, ...],
    kernel_size: int,
    image_size: int,
    latent_dim: int,
    precision: str = "float32",
) -> keras.Model:
    """The decoder sub-model, (latent_dim,) codes -> (S, S, 3) float32 images in [0, 1]."""
    policy = _check_precision(precision)
    side = image_size // DOWNSAMPLING
    nk1, nk2, nk3, nk4 = filters
    z = keras.Input((latent_dim,), name="z")
    x = keras.layers.Dense(side * side * nk4, activation="relu", name="dense", dtype=policy)(z)
    x = keras.layers.Reshape((side, side, nk4), name="reshape", dtype=policy)(x)
    for i, n in zip((3, 2, 1), (nk3, nk2, nk1), strict=True):
        x = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"up{i}", dtype=policy)(x)
        x = keras.layers.Conv2D(
            n, kernel_size, padding="same", activation="relu", name=f"dec_conv{i}", dtype=policy
        )(x)
    x = keras.layers.UpSampling2D(2, interpolation="nearest", name="up0", dtype=policy)(x)
    # float32 output: a sigmoid in bfloat16 has 8 bits of mantissa, coarser than the
    # loss's differences late in training (mean losses of ~0.002 in the paper).
    images = keras.layers.Conv2D(
        3, kernel_size, padding="same", activation="sigmoid", name="rgb", dtype="float32"
    )(x)
    return keras.Model(z, images, name="decoder")


def build_aae(
    config: Mapping[str, object],
    image_size: int = 128,
    width: float = 1.0,
    latent_dim: int = 128,
    bootstrap_ratio: int = 4,
    precision: str = "float32",
) -> keras.Model:
    """Build and compile the AAE for a configuration of `aae.net.configs.SEARCH_SPACE`.

    Args:
        config: the nine hyperparameters (NK1..NK4, KE, KD, OPT, MB, LR); MB is the batch
            size of the data pipeline and is not used here.
        image_size: side of the square RGB input and reconstruction; a multiple of 16.
        width: multiplier on every filter count (scaled CPU profiles); 1.0 = the paper.
        latent_dim: size of the latent code (128 in the original).
        bootstrap_ratio: `BootstrappedL2` ratio (4 in the original, 16 for dark objects).
        precision: dtype policy of the layers, one of `PRECISIONS`; the output layer and
            the loss stay float32.

    Returns:
        A compiled `keras.Model` named "aae", encoder -> decoder, with sub-models
        `model.get_layer("encoder")` and `model.get_layer("decoder")`. It takes images in
        [0, 255] (uint8) and outputs [0, 1] float32 images; train it with uint8 targets
        (the loss scales them by 1/255), as `AugmentedBatches` yields them.
    """
    config = validate_config(config)
    if not _is_positive_int(image_size) or image_size % DOWNSAMPLING:
        raise AAEError(
            f"image_size must be a positive multiple of {DOWNSAMPLING} (four stride-2 stages), "
            f"got {image_size!r}; e.g. 32, 64 or 128."
        )
    if not _is_positive_int(latent_dim):
        raise AAEError(
            f"latent_dim must be a positive integer (128 in the original), got {latent_dim!r}."
        )
    _check_precision(precision)
    filters = scaled_filters(config, width)
    encoder = build_encoder(filters, config["KE"], image_size, latent_dim, precision)
    decoder = build_decoder(filters, config["KD"], image_size, latent_dim, precision)
    images = keras.Input((image_size, image_size, 3), name="image")
    model = keras.Model(images, decoder(encoder(images)), name="aae")
    optimizer = make_optimizer(config["OPT"], config["LR"])
    if precision == "mixed_float16":
        # float16 gradients underflow without loss scaling (bfloat16 has float32's range).
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model.compile(
        optimizer=optimizer,
        loss=BootstrappedL2(bootstrap_ratio, target_scale=1.0 / PIXEL_MAX),
    )
    # The optimizer's variables now rather than in the first training step: created there,
    # they make TensorFlow trace the training step twice (each fresh model's first fit
    # costs about twice the CPU time).
    optimizer.build(model.trainable_variables)
    return model

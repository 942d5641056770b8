"""The AAE network: the original architecture, parameter counts, scaling and training."""

import keras
import numpy as np
import pytest

from aae.net.configs import BOP, MAXADD2, NAS2, SUNDERMEYER
from aae.net.losses import BootstrappedL2
from aae.net.model import build_aae

TINY = {"image_size": 32, "width": 1 / 16, "latent_dim": 16}


def expected_parameter_count(config: dict, image_size: int, width: float, latent_dim: int) -> int:
    """The parameter count of the original AAE, by hand from its layer shapes."""
    nk = [max(1, round(config[k] * width)) for k in ("NK1", "NK2", "NK3", "NK4")]
    ke, kd = config["KE"], config["KD"]
    side = image_size // 16

    def conv(k, c_in, c_out):
        return k * k * c_in * c_out + c_out

    encoder = (
        conv(ke, 3, nk[0])
        + conv(ke, nk[0], nk[1])
        + conv(ke, nk[1], nk[2])
        + conv(ke, nk[2], nk[3])
    )
    encoder += side * side * nk[3] * latent_dim + latent_dim  # flatten -> linear z
    decoder = latent_dim * side * side * nk[3] + side * side * nk[3]  # z -> (s, s, NK4)
    decoder += conv(kd, nk[3], nk[2]) + conv(kd, nk[2], nk[1]) + conv(kd, nk[1], nk[0])
    decoder += conv(kd, nk[0], 3)  # sigmoid RGB
    return encoder + decoder


@pytest.mark.parametrize("config", [SUNDERMEYER, BOP], ids=["sundermeyer", "bop"])
def test_full_size_parameter_count_matches_the_original(config):
    model = build_aae(config)
    assert model.count_params() == expected_parameter_count(config, 128, 1.0, 128)


def test_sundermeyer_count_is_the_known_number():
    # Guards the hand formula itself: 9,939,584 encoder + 9,971,715 decoder weights.
    assert expected_parameter_count(SUNDERMEYER, 128, 1.0, 128) == 19_911_299


@pytest.mark.jax
def test_encoder_and_decoder_sub_models():
    model = build_aae(NAS2, **TINY)
    encoder, decoder = model.get_layer("encoder"), model.get_layer("decoder")
    assert isinstance(encoder, keras.Model) and isinstance(decoder, keras.Model)
    assert tuple(encoder.input.shape) == (None, 32, 32, 3)
    assert tuple(encoder.output.shape) == (None, 16)
    assert tuple(decoder.input.shape) == (None, 16)
    assert tuple(decoder.output.shape) == (None, 32, 32, 3)
    assert tuple(model.output.shape) == (None, 32, 32, 3)
    assert [layer.name for layer in model.layers[1:]] == ["encoder", "decoder"]
    x = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_allclose(
        model.predict(x, verbose=0),
        decoder.predict(encoder.predict(x, verbose=0), verbose=0),
        atol=1e-6,
    )


@pytest.mark.jax
def test_layers_are_the_original_ones():
    model = build_aae(NAS2, **TINY)  # NK (256, 64, 1024, 1024) / 16, KE 7, KD 3
    encoder, decoder = model.get_layer("encoder"), model.get_layer("decoder")
    scale = encoder.layers[1]  # uint8 pixels in, [0, 1] from the first layer on
    assert isinstance(scale, keras.layers.Rescaling) and scale.scale == pytest.approx(1 / 255)
    convs = [layer for layer in encoder.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [16, 4, 64, 64]
    assert all(
        c.kernel_size == (7, 7) and c.strides == (2, 2) and c.padding == "same" for c in convs
    )
    assert all(c.activation is keras.activations.relu for c in convs)
    z = encoder.layers[-1]
    assert isinstance(z, keras.layers.Dense) and z.activation is keras.activations.linear
    kinds = [type(layer).__name__ for layer in decoder.layers[1:]]
    assert kinds == ["Dense", "Reshape"] + ["UpSampling2D", "Conv2D"] * 4
    ups = [layer for layer in decoder.layers if isinstance(layer, keras.layers.UpSampling2D)]
    assert all(u.interpolation == "nearest" and u.size == (2, 2) for u in ups)
    dconvs = [layer for layer in decoder.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in dconvs] == [64, 4, 16, 3]
    assert all(c.kernel_size == (3, 3) and c.strides == (1, 1) for c in dconvs)
    assert [c.activation for c in dconvs] == [keras.activations.relu] * 3 + [
        keras.activations.sigmoid
    ]
    assert decoder.layers[1].activation is keras.activations.relu
    everything = encoder.layers + decoder.layers
    assert not any(
        isinstance(layer, keras.layers.BatchNormalization | keras.layers.Conv2DTranspose)
        for layer in everything
    )
    assert all(
        isinstance(
            getattr(layer, "kernel_initializer", keras.initializers.GlorotUniform()),
            keras.initializers.GlorotUniform,
        )
        for layer in everything
    )


@pytest.mark.parametrize(("width", "size"), [(1 / 8, 32), (1 / 16, 64), (0.001, 16)])
def test_width_and_size_scaling(width, size):
    model = build_aae(MAXADD2, image_size=size, width=width, latent_dim=8)
    assert model.count_params() == expected_parameter_count(MAXADD2, size, width, 8)
    assert tuple(model.output.shape) == (None, size, size, 3)


@pytest.mark.parametrize("size", [100, 8, 0, 24])
def test_image_size_must_be_a_multiple_of_16(size):
    with pytest.raises(ValueError, match="multiple of 16"):
        build_aae(SUNDERMEYER, image_size=size)


@pytest.mark.jax
def test_bad_config_and_width_are_rejected():
    with pytest.raises(ValueError, match="allowed values for KE"):
        build_aae({**SUNDERMEYER, "KE": 4}, **TINY)
    with pytest.raises(ValueError, match="width multiplier must be > 0"):
        build_aae(SUNDERMEYER, image_size=32, width=0)


@pytest.mark.parametrize(
    ("name", "optimizer", "momentum"),
    [
        ("Adam", keras.optimizers.Adam, None),
        ("Momentum", keras.optimizers.SGD, 0.9),
        ("SGD", keras.optimizers.SGD, 0.0),
    ],
)
@pytest.mark.jax
def test_optimizer_and_loss(name, optimizer, momentum):
    model = build_aae({**SUNDERMEYER, "OPT": name, "LR": 2e-3}, bootstrap_ratio=16, **TINY)
    assert type(model.optimizer) is optimizer
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(2e-3)
    if momentum is None:
        assert model.optimizer.epsilon == 1e-8  # TF1 AdamOptimizer's, not Keras' 1e-7
    else:
        assert model.optimizer.momentum == momentum
    assert isinstance(model.loss, BootstrappedL2) and model.loss.ratio == 16


def _blobs(n: int = 8, size: int = 32) -> np.ndarray:
    """A fixed uint8 batch of smooth colour blobs on black, the kind of image the AAE
    reconstructs, in the pipeline's format."""
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    rng = np.random.default_rng(0)
    images = []
    for _ in range(n):
        cx, cy, r = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.15, 0.3)
        blob = ((xx - cx) ** 2 + (yy - cy) ** 2 < r**2)[..., None]
        images.append(blob * rng.uniform(0.3, 1.0, 3))
    return np.rint(255 * np.asarray(images)).astype(np.uint8)


@pytest.mark.jax
def test_a_few_training_steps_reduce_the_loss():
    keras.utils.set_random_seed(0)
    model = build_aae({**NAS2, "LR": 2e-3}, **TINY)
    x = _blobs()
    losses = [float(model.train_on_batch(x, x)) for _ in range(30)]
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.jax
def test_uint8_images_are_scaled_inside_the_model():
    # The contract: uint8 in, [0, 1] out, loss on [0, 1] images. The same images given
    # as floats in [0, 255] must give the same outputs and the same loss, and that loss
    # must be the bootstrapped L2 of [0, 1] targets (not of 0..255 ones, 65,025x larger).
    model = build_aae(NAS2, **TINY)
    x = _blobs(4)
    out = model.predict(x, verbose=0)
    assert out.dtype == np.float32 and out.min() >= 0.0 and out.max() <= 1.0
    np.testing.assert_allclose(model.predict(x.astype("float32"), verbose=0), out, atol=1e-6)
    loss = float(model.evaluate(x, x, verbose=0))
    expected = BootstrappedL2(4)(x.astype("float32") / 255.0, out)
    assert loss == pytest.approx(float(keras.ops.convert_to_numpy(expected)), rel=1e-4)
    assert loss < 1.0


@pytest.mark.parametrize("precision", ["mixed_bfloat16"])
@pytest.mark.jax
def test_mixed_precision_trains_with_float32_output_and_loss(precision):
    keras.utils.set_random_seed(0)
    global_policy = keras.config.dtype_policy().name
    model = build_aae({**NAS2, "LR": 2e-3}, precision=precision, **TINY)
    # Per-layer policies: building a mixed model leaves keras' global policy alone.
    assert keras.config.dtype_policy().name == global_policy
    encoder, decoder = model.get_layer("encoder"), model.get_layer("decoder")
    convs = [
        layer for layer in encoder.layers + decoder.layers if isinstance(layer, keras.layers.Conv2D)
    ]
    assert all(c.dtype_policy.name == precision for c in convs[:-1])
    assert convs[-1].name == "rgb" and convs[-1].dtype_policy.name == "float32"
    assert all(w.dtype == "float32" for w in model.weights)  # variables stay float32
    assert keras.backend.standardize_dtype(encoder.output.dtype) == "bfloat16"
    assert keras.backend.standardize_dtype(model.output.dtype) == "float32"
    assert model.loss.dtype == "float32"
    x = _blobs()
    losses = [float(model.train_on_batch(x, x)) for _ in range(40)]
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.jax
def test_unknown_precision_is_rejected():
    with pytest.raises(ValueError, match="precision must be one of"):
        build_aae(SUNDERMEYER, precision="float16", **TINY)

"""BootstrappedL2: the top-k squared-error mean of the original AAE, per sample."""

import keras
import numpy as np
import pytest

from aae.net.losses import BootstrappedL2

# Also run by `make test`'s JAX leg (KERAS_BACKEND=jax): backend-independent code.
pytestmark = pytest.mark.jax


def _value(loss, y_true, y_pred) -> float:
    return float(keras.ops.convert_to_numpy(loss(y_true, y_pred)))


def test_hand_computed_top_k_mean_per_sample():
    # Two samples of 1x2x2 = 4 elements; ratio 2 keeps the 2 largest squared errors each.
    y_true = np.zeros((2, 1, 2, 2), dtype="float32")
    y_pred = np.array([[0.1, 0.2, 0.3, 0.4], [0.5, 0.0, 0.0, 0.1]], dtype="float32").reshape(
        2, 1, 2, 2
    )
    # Sample 1 keeps .16 and .09 -> .125; sample 2 keeps .25 and .01 -> .13; mean .1275.
    # (A top-k over the whole batch would keep .25, .16, .09, .04 -> .135.)
    assert _value(BootstrappedL2(ratio=2), y_true, y_pred) == pytest.approx(0.1275, rel=1e-6)


def test_k_is_floor_of_elements_over_ratio():
    # 6 elements, ratio 4 -> k = 1: the largest squared error of each sample.
    y_true = np.zeros((2, 6), dtype="float32")
    y_pred = np.array(
        [[0.1, -0.3, 0.2, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.6]], dtype="float32"
    )
    assert _value(BootstrappedL2(ratio=4), y_true, y_pred) == pytest.approx(
        (0.09 + 0.36) / 2, rel=1e-6
    )


def test_ratio_one_is_mse_and_larger_ratios_weigh_the_worst_pixels():
    rng = np.random.default_rng(0)
    y_true = rng.random((3, 8, 8, 3), dtype=np.float32)
    y_pred = rng.random((3, 8, 8, 3), dtype=np.float32)
    mse = float(np.mean((y_true - y_pred) ** 2))
    assert _value(BootstrappedL2(ratio=1), y_true, y_pred) == pytest.approx(mse, rel=1e-5)
    ratio4 = _value(BootstrappedL2(ratio=4), y_true, y_pred)
    sq = ((y_true - y_pred) ** 2).reshape(3, -1)
    expected = np.mean(np.sort(sq, axis=1)[:, -sq.shape[1] // 4 :])
    assert ratio4 == pytest.approx(expected, rel=1e-5)
    assert ratio4 > mse


def test_serialization_round_trip():
    loss = BootstrappedL2(ratio=16)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert isinstance(restored, BootstrappedL2)
    assert restored.ratio == 16
    assert restored.get_config() == loss.get_config()


@pytest.mark.parametrize("ratio", [0, -4, 2.5, True])
def test_bad_ratio_is_rejected(ratio):
    with pytest.raises(ValueError, match="ratio must be an integer >= 1"):
        BootstrappedL2(ratio=ratio)


def test_ratio_larger_than_sample_is_rejected():
    with pytest.raises(ValueError, match="keeps no element"):
        BootstrappedL2(ratio=8)(np.zeros((1, 4), "float32"), np.ones((1, 4), "float32"))


def test_target_scale_compares_uint8_targets_on_the_unit_scale():
    # The AAE's targets arrive as uint8; with target_scale 1/255 the loss is the one of the
    # same images in [0, 1].
    rng = np.random.default_rng(1)
    targets = rng.integers(0, 256, (2, 4, 4, 3), dtype=np.uint8)
    y_pred = rng.random((2, 4, 4, 3), dtype=np.float32)
    unit = _value(BootstrappedL2(ratio=4), targets.astype("float32") / 255.0, y_pred)
    assert _value(BootstrappedL2(ratio=4, target_scale=1 / 255), targets, y_pred) == pytest.approx(
        unit, rel=1e-6
    )
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(BootstrappedL2(ratio=4, target_scale=1 / 255))
    )
    assert restored.target_scale == pytest.approx(1 / 255)


def test_low_precision_predictions_are_compared_in_float32():
    # bfloat16 keeps 8 bits: 1 + 2**-9 rounds to 1 there, so a bfloat16 difference would be 0.
    y_true = np.ones((1, 4), "float32")
    y_pred = keras.ops.cast(np.full((1, 4), 1.0 + 2.0**-6, "float32"), "bfloat16")
    loss = BootstrappedL2(ratio=1)
    assert loss.dtype == "float32"
    assert _value(loss, y_true, y_pred) == pytest.approx(2.0**-12, rel=1e-6)


@pytest.mark.parametrize("scale", [0, -1.0, True])
def test_bad_target_scale_is_rejected(scale):
    with pytest.raises(ValueError, match="target_scale must be a number > 0"):
        BootstrappedL2(target_scale=scale)

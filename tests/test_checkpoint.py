"""Full checkpoints: training resumed from one continues exactly where it stopped."""

import keras
import numpy as np
import pytest

from kt_predictive.checkpoint import load_training_state, save_training_state

# Also run by `make test`'s JAX leg (KERAS_BACKEND=jax): backend-independent code.
pytestmark = pytest.mark.jax


def _model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    return model


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    return x, (x.sum(axis=1, keepdims=True) ** 2).astype("float32")


def test_resume_equals_uninterrupted_training(tmp_path):
    x, y = _data()
    uninterrupted = _model()
    uninterrupted.fit(x, y, batch_size=16, shuffle=False, epochs=4, verbose=0)

    first = _model()
    first.fit(x, y, batch_size=16, shuffle=False, epochs=2, verbose=0)
    path = tmp_path / "state.npz"
    save_training_state(path, first, np.arange(8, dtype=np.float32), seconds=1.5)

    resumed = _model()  # fresh weights and a fresh (unbuilt) Adam
    losses, seconds = load_training_state(path, resumed)
    np.testing.assert_array_equal(losses, np.arange(8))
    assert seconds == 1.5
    assert int(resumed.optimizer.iterations.numpy()) == 8
    resumed.fit(x, y, batch_size=16, shuffle=False, epochs=2, verbose=0)
    for a, b in zip(uninterrupted.get_weights(), resumed.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    path = tmp_path / "state.npz"
    save_training_state(path, _model(), np.zeros(3))
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(1)])
    other.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match="retrain this trial from scratch"):
        load_training_state(path, other)


def test_write_is_atomic(tmp_path):
    path = tmp_path / "state.npz"
    save_training_state(path, _model(), np.zeros(3))
    assert [p.name for p in tmp_path.iterdir()] == ["state.npz"]  # no temporary file left

"""The step callback reads every optimizer step's loss exactly from a real Keras fit."""

import keras
import numpy as np
import pytest

from kt_predictive.budget import TrainingSteps
from kt_predictive.callbacks import StepBudgetCallback

# Also run by `make test`'s JAX leg (KERAS_BACKEND=jax): backend-independent code.
pytestmark = pytest.mark.jax


def _constant_model():
    # Predicts 0 whatever the input and never learns (learning rate 0): the loss of a batch
    # is the mean of y² over it, which the data fixes.
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, kernel_initializer="zeros")])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    return model


def _known_batches():
    # 10 samples, batch 4: batches of 4, 4 and 2 samples whose losses are 1, 2 and 3. The
    # short last batch checks that steps are not weighted by batch size.
    y = np.sqrt(np.array([1] * 4 + [2] * 4 + [3] * 2, dtype="float32"))[:, None]
    return np.zeros((10, 1), "float32"), y


def test_window_and_final_means_from_a_known_loss_sequence():
    budget = TrainingSteps(full_steps=30, early_steps=12, window=4, final_window=5)
    reports, saves = [], []
    callback = StepBudgetCallback(
        budget,
        [],
        report=lambda step, value: reports.append((step, value)) or False,
        save=lambda curve: saves.append(len(curve)),
        checkpoint_every=10,
    )
    x, y = _known_batches()
    _constant_model().fit(
        x, y, batch_size=4, shuffle=False, epochs=100, verbose=0, callbacks=[callback]
    )
    # Step s has loss 1, 2, 3, 1, 2, 3, ...; training stops at full_steps.
    expected = [((s - 1) % 3) + 1 for s in range(1, 31)]
    np.testing.assert_allclose(callback.losses, expected, rtol=1e-6)
    steps, values = zip(*reports, strict=True)
    # Window ends, the final step, and heartbeats at the checkpoints between (10, 20).
    assert steps == (4, 8, 10, 12, 20, 30)
    # Windows 1-4, 5-8, 9-12, the final mean of steps 26-30; a heartbeat sends its step's loss.
    np.testing.assert_allclose(values, [7 / 4, 8 / 4, 1, 9 / 4, 2, 11 / 5], rtol=1e-6)
    # A checkpoint at every early window and every 10 steps (none at the end).
    assert saves == [4, 8, 10, 12, 20]


def test_oracle_stop_and_divergence_stop_training():
    budget = TrainingSteps(full_steps=30, early_steps=12, window=4, final_window=5)
    stop_at_8 = StepBudgetCallback(
        budget, [], lambda step, value: step == 8, lambda curve: None, 100
    )
    x, y = _known_batches()
    _constant_model().fit(
        x, y, batch_size=4, shuffle=False, epochs=100, verbose=0, callbacks=[stop_at_8]
    )
    assert stop_at_8.steps == 8 and stop_at_8.stopped_by_oracle

    reports = []
    diverging = StepBudgetCallback(
        budget, [], lambda step, value: reports.append((step, value)), lambda c: None, 100
    )
    y_bad = y.copy()
    y_bad[5] = np.inf  # second batch
    _constant_model().fit(
        x, y_bad, batch_size=4, shuffle=False, epochs=100, verbose=0, callbacks=[diverging]
    )
    assert diverging.diverged_at == 2
    assert reports[-1][0] == 2 and not np.isfinite(reports[-1][1])


def test_resumed_curve_continues_step_count():
    budget = TrainingSteps(full_steps=30, early_steps=12, window=4, final_window=5)
    reports = []
    callback = StepBudgetCallback(
        budget,
        [1.0, 2.0, 3.0] * 4,
        lambda step, value: reports.append(step) or False,
        lambda c: None,
        100,
    )
    x, y = _known_batches()
    _constant_model().fit(
        x, y, batch_size=4, shuffle=False, epochs=100, verbose=0, callbacks=[callback]
    )
    assert callback.steps == 30 and reports == [30]

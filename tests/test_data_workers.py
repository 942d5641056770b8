"""A trial stopped mid-epoch leaves no Keras data worker process behind."""

import multiprocessing
import time

import keras
import numpy as np
import pytest

from kt_predictive.budget import TrainingSteps
from kt_predictive.callbacks import StepBudgetCallback
from kt_predictive.data_workers import use_backend_start_method

# Also run by `make test`'s JAX leg (KERAS_BACKEND=jax): backend-independent code.
pytestmark = pytest.mark.jax


class _Batches(keras.utils.PyDataset):
    # Computed in one worker process, as aae's training batches are.
    def __init__(self):
        super().__init__(workers=1, use_multiprocessing=True, max_queue_size=4)

    def __len__(self):
        return 50

    def __getitem__(self, index):
        rng = np.random.default_rng(index)
        return rng.random((8, 4), dtype="float32"), rng.random((8, 1), dtype="float32")


def _children_after(seconds: float) -> list:
    # active_children() also reaps the workers that have exited.
    deadline = time.monotonic() + seconds
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.1)
    return multiprocessing.active_children()


def test_a_fit_stopped_at_the_early_budget_leaves_no_worker_process():
    # Keras stops a PyDataset's worker pool only at an epoch's end: three exploration trials
    # stopped at step 10 of a 50-batch epoch left three pools running before
    # StepLossRecorder.on_train_end stopped them.
    assert _children_after(10) == []
    budget = TrainingSteps(full_steps=40, early_steps=10, window=5, final_window=5)
    for _ in range(3):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        callback = StepBudgetCallback(
            budget,
            [],
            report=lambda step, value: step >= 10,
            save=lambda curve: None,
            checkpoint_every=100,
        )
        model.fit(_Batches(), epochs=1, verbose=0, callbacks=[callback])
        assert len(callback.losses) == 10  # stopped mid-epoch by the oracle's answer
    assert _children_after(10) == []


def test_on_jax_data_workers_start_without_forking_the_training_process(monkeypatch):
    # JAX is multithreaded: a fork of its process may deadlock (JAX warns at every fork).
    # On JAX the recorder makes Keras' pools start their workers from a fork server.
    import os

    forks = []
    real_fork = os.fork
    monkeypatch.setattr(os, "fork", lambda: forks.append(1) or real_fork())
    budget = TrainingSteps(full_steps=40, early_steps=10, window=5, final_window=5)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    callback = StepBudgetCallback(
        budget, [], report=lambda step, value: step >= 10, save=lambda c: None, checkpoint_every=100
    )
    model.fit(_Batches(), epochs=1, verbose=0, callbacks=[callback])
    assert len(callback.losses) == 10 and all(np.isfinite(callback.losses))
    if keras.backend.backend() == "jax":
        assert forks == []
    assert _children_after(10) == []


def test_the_fork_server_imports_keras_before_it_forks_data_workers():
    # Without it every pool's workers imported Keras and JAX again: on JAX, a later epoch of
    # bench/data_workers.py's fit took 116 s instead of 1.0 s with the preload (bench/RESULTS.md).
    import multiprocessing.forkserver

    from kt_predictive.data_workers import use_data_worker_start_method

    try:
        assert use_data_worker_start_method("forkserver")
        assert "keras" in multiprocessing.forkserver._forkserver._preload_modules
    finally:
        use_data_worker_start_method(None)
        use_backend_start_method()

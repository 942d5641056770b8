"""The per-trial shortcuts of PredictiveTuner leave every result as it was.

A validation loss computed eagerly must equal ``model.evaluate``'s, and a seeded search with
the shortcuts must choose the same trials and measure the same losses as without them.
"""

import dataclasses
import gc
import multiprocessing
import time

import keras
import numpy as np
import pytest

from kt_predictive import PredictiveSearch
from kt_predictive import tuner as tuner_module

from tiny_problem import SEARCH, build_model, grouped, regression_data

needs_tensorflow = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="the eager validation loss is TensorFlow's"
)


def _trained(seed: int, regularized: bool) -> keras.Model:
    keras.utils.set_random_seed(seed)
    regularizer = keras.regularizers.L2(1e-2) if regularized else None
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu", kernel_regularizer=regularizer),
            keras.layers.Dense(1),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    x, y = regression_data(64, seed=seed)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    return model


@needs_tensorflow
@pytest.mark.parametrize("regularized", [False, True])
def test_eager_validation_loss_is_evaluates(regularized):
    model = _trained(3, regularized)
    # 77 samples: two full batches of 32 and a partial one, as evaluate batches them.
    data = regression_data(77, seed=5)
    assert tuner_module._eager_loss_applies(model, data, None)
    expected = model.evaluate(*data, verbose=0, return_dict=True)["loss"]
    assert tuner_module._eager_loss(model, data) == expected


@needs_tensorflow
def test_eager_validation_loss_only_where_it_is_evaluates():
    model = _trained(1, regularized=False)
    x, y = regression_data(40)
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)  # evaluate() reads these
    assert not tuner_module._eager_loss_applies(model, [x, y], None)
    assert not tuner_module._eager_loss_applies(model, (x, y, np.ones(40)), None)
    assert not tuner_module._eager_loss_applies(model, (x, y[:20]), None)
    assert not tuner_module._eager_loss_applies(model, dataset, None)

    class OwnTestStep(keras.Sequential):
        def test_step(self, data):  # a model that measures validation its own way
            return super().test_step(data)

    own = OwnTestStep([keras.Input((8,)), keras.layers.Dense(1)])
    own.compile("sgd", "mse")
    assert not tuner_module._eager_loss_applies(own, (x, y), None)


def _search(directory, name: str) -> list:
    tuner = PredictiveSearch(
        build_model, objective="val_loss", directory=directory, project_name=name, **grouped(SEARCH)
    )
    x, y = regression_data()
    val = regression_data(50, seed=1)
    tuner.search(x, y, batch_size=32, validation_data=val, verbose=0)
    assert tuner.oracle.phase == "done"
    # Training times differ from run to run; everything else must not.
    return [dataclasses.replace(r, seconds=0.0) for r in tuner.oracle.records()]


@needs_tensorflow
def test_a_seeded_search_gives_the_same_trials_with_and_without_the_shortcuts(
    tmp_path, monkeypatch
):
    with_them = _search(tmp_path, "with")
    assert gc.get_freeze_count() == 0  # the search's end unfreezes what it froze
    monkeypatch.setattr(tuner_module, "_eager_loss_applies", lambda *args: False)
    monkeypatch.setattr(tuner_module, "_build_optimizer", lambda model: None)
    monkeypatch.setattr(tuner_module, "_free_last_model", lambda: None)
    without = _search(tmp_path, "without")
    assert with_them == without
    assert any(r.role == "continuation" for r in with_them)


class _Batches(keras.utils.PyDataset):
    def __init__(self):
        super().__init__(workers=1, use_multiprocessing=True, max_queue_size=4)

    def __len__(self):
        return 50

    def __getitem__(self, index):
        rng = np.random.default_rng(index)
        return rng.random((8, 4), dtype="float32"), rng.random((8, 1), dtype="float32")


class _FailAt(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch == 3:
            raise RuntimeError("a trial that fails mid-epoch")


def test_freeing_the_last_model_stops_a_failed_trials_data_workers():
    # A fit that raised skipped on_train_end: its worker pool is still running, and after a
    # gc.freeze it could no longer be found. Freeing the last model stops it first.
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(RuntimeError, match="mid-epoch"):
        model.fit(_Batches(), epochs=1, verbose=0, callbacks=[_FailAt()])
    assert multiprocessing.active_children()
    try:
        tuner_module._free_last_model()
    finally:
        gc.unfreeze()
    deadline = time.monotonic() + 10
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert multiprocessing.active_children() == []

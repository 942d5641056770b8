"""The predictive search with training loops that are not ``model.fit``.

Two ways, both through ``kt_predictive.TrialReporter`` (report every step's loss; stop when it
says so):

- ``--loop tape``: keras-tuner's documented way to customise training — a ``PredictiveTuner``
  whose ``run_trial`` trains with a plain ``tf.GradientTape`` loop (TensorFlow backend). A
  continuation (phase 4) starts from its parent's checkpoint, written with
  ``kt_predictive.save_training_state``.
- ``--loop oracle``: no Keras model at all — the oracle driven by hand, training
  scikit-learn's ``SGDRegressor`` with ``partial_fit``; a continuation copies its parent's
  estimator.

    python examples/custom_loop.py --loop oracle
    python examples/custom_loop.py --loop tape
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras_tuner
import numpy as np

from kt_predictive import (
    PredictiveOracle,
    PredictiveTuner,
    PredictorSettings,
    Schedule,
    TrainingSteps,
    TrialReporter,
)
from kt_predictive.checkpoint import load_training_state, save_training_state, training_state_path

SEARCH = dict(
    schedule=Schedule(initial_trials=4, max_iterations=6, top_k=2),
    steps=TrainingSteps(full_steps=60, early_steps=20, window=10, final_window=10),
    predictor=PredictorSettings(tuning_trials=2, report_splits=0),
    seed=3,
)
PARENT = "tuner/trial_id"  # keras-tuner's link from a continuation to its parent


def regression_data(n: int = 512, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype("float32")
    y = (x @ rng.normal(size=8) + 0.1 * rng.normal(size=n)).astype("float32")
    return x, y


def batches(x, y, batch_size: int, start_step: int, seed: int):
    """An endless stream of batches; step s always gets the same batch."""
    step = start_step
    while True:
        rng = np.random.default_rng((seed, step))
        picks = rng.choice(len(x), batch_size, replace=False)
        yield x[picks], y[picks]
        step += 1


# ------------------------------------------------------------------ the oracle by hand


def search_without_keras(directory: str) -> PredictiveOracle:
    """Drives a PredictiveOracle with scikit-learn's SGDRegressor: no Keras model at all."""
    from sklearn.linear_model import SGDRegressor

    space = keras_tuner.HyperParameters()
    space.Choice("eta0", [1e-4, 1e-3, 1e-2, 1e-1])
    space.Choice("alpha", [1e-5, 1e-3, 1e-1])
    space.Choice("batch_size", [8, 32])
    oracle = PredictiveOracle(hyperparameters=space, **SEARCH)
    oracle.open(directory, "sgd")  # where the search is saved (and resumed from)
    x, y = regression_data()
    estimators: dict[str, tuple[SGDRegressor, list[float]]] = {}  # trial id -> (estimator, curve)
    while True:
        trial = oracle.create_trial("tuner0")
        if trial.status == "STOPPED":
            return oracle
        values = trial.hyperparameters.values
        if PARENT in values:  # a continuation: resume the parent's estimator and curve
            estimator, curve = copy.deepcopy(estimators[values[PARENT]])
        else:
            estimator = SGDRegressor(
                learning_rate="constant", eta0=values["eta0"], alpha=values["alpha"]
            )
            curve = []
        reporter = TrialReporter(oracle, trial.trial_id, oracle.steps, losses=curve)
        for xb, yb in batches(x, y, values["batch_size"], len(curve), seed=SEARCH["seed"]):
            estimator.partial_fit(xb, yb)
            if reporter.step(float(np.mean((estimator.predict(xb) - yb) ** 2))):
                break
        estimators[trial.trial_id] = (estimator, reporter.losses)
        trial.status = "COMPLETED"
        oracle.end_trial(trial)


# ------------------------------------------------------------------ a GradientTape loop


class TapeTuner(PredictiveTuner):
    """A PredictiveTuner whose trials train with a plain tf.GradientTape loop."""

    def run_trial(self, trial, x, y):
        import keras
        import tensorflow as tf

        seed = self.trial_seed(trial)
        keras.utils.set_random_seed(seed)
        hp = trial.hyperparameters
        model = self.hypermodel.build(hp)
        own = training_state_path(self.get_trial_dir(trial.trial_id))
        parent = hp.values.get(PARENT)
        start = (
            own
            if own.exists()
            else training_state_path(self.get_trial_dir(parent))
            if parent
            else None
        )
        losses = (
            list(load_training_state(start, model)[0])
            if start is not None and start.exists()
            else []
        )
        reporter = TrialReporter(self.oracle, trial.trial_id, self.steps, losses=losses)
        for xb, yb in batches(x, y, hp.get("batch_size"), len(losses), seed=seed):
            with tf.GradientTape() as tape:
                loss = model.compute_loss(x=xb, y=yb[:, None], y_pred=model(xb, training=True))
            gradients = tape.gradient(loss, model.trainable_variables)
            model.optimizer.apply(gradients, model.trainable_variables)
            if reporter.step(float(loss)):
                break
            if len(reporter.losses) % self.checkpoint_every == 0:
                save_training_state(own, model, np.asarray(reporter.losses))
        if len(reporter.losses) < self.steps.full_steps:  # stopped early: keep it resumable
            save_training_state(own, model, np.asarray(reporter.losses))
        else:
            own.unlink(missing_ok=True)
            self.save_model(trial.trial_id, model)  # what get_best_models reads


def build(hp):
    import keras

    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(hp.Choice("units", [4, 32]), activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    hp.Choice("batch_size", [8, 32])
    model.compile(keras.optimizers.Adam(hp.Choice("lr", [1e-3, 1e-2, 1e-1])), "mse")
    return model


def search_with_tape(directory: str) -> PredictiveOracle:
    tuner = TapeTuner(
        build, oracle=PredictiveOracle(**SEARCH), directory=directory, project_name="tape"
    )
    tuner.search(*regression_data())
    return tuner.oracle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loop", choices=("oracle", "tape"), default="oracle")
    parser.add_argument("--directory", default=None, help="default: a temporary folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        directory = args.directory or temporary
        oracle = (
            search_without_keras(directory)
            if args.loop == "oracle"
            else search_with_tape(directory)
        )
        best = oracle.get_best_trials()[0]
        print(f"{args.loop}: {len(oracle.records())} trials, phase {oracle.phase}")
        print(f"best real final loss {best.score:.5g} with {best.hyperparameters.values}")


if __name__ == "__main__":
    main()

"""Predictive search vs keras-tuner's RandomSearch on a small CNN, with the same step budget.

The data is scikit-learn's bundled 8x8 digits (no download). The predictive search trains
``--initial`` networks fully, explores ``--iterations`` more to the early budget only, and
finishes the ``--top-k`` most promising; RandomSearch then gets as many fully trained trials
as that total number of optimizer steps allows. Both report the validation accuracy of their
best network.

    python examples/digits_cnn.py            # about 3 minutes on 2 CPU cores
"""

from __future__ import annotations

import argparse
import math
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import keras_tuner
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from kt_predictive import PredictiveSearch, PredictorSettings, Schedule, TrainingSteps


class DigitsCNN(keras_tuner.HyperModel):
    """A small CNN whose width, kernel, optimizer, learning rate and batch size are tuned."""

    def build(self, hp):
        model = keras.Sequential(
            [
                keras.Input((8, 8, 1)),
                keras.layers.Conv2D(
                    hp.Choice("filters", [8, 16, 32]),
                    hp.Choice("kernel", [2, 3]),
                    activation="relu",
                ),
                keras.layers.Flatten(),
                keras.layers.Dense(hp.Choice("units", [32, 64, 128]), activation="relu"),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
        optimizer = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}[
            hp.Choice("optimizer", ["adam", "sgd"])
        ]
        model.compile(
            optimizer=optimizer(hp.Choice("lr", [1e-1, 1e-2, 1e-3, 1e-4])),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model

    def fit(self, hp, model, *args, **kwargs):
        # The batch size is a hyperparameter too.
        return model.fit(*args, batch_size=hp.Choice("batch_size", [16, 32, 64]), **kwargs)


class StopAfterSteps(keras.callbacks.Callback):
    """Gives RandomSearch's trials the same number of optimizer steps as a full trial."""

    def __init__(self, steps: int):
        super().__init__()
        self.steps = steps
        self.done = 0

    def on_train_batch_end(self, batch, logs=None):
        self.done += 1
        if self.done >= self.steps:
            self.model.stop_training = True


def load_data(seed: int = 0):
    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]
    return train_test_split(
        x, digits.target, test_size=0.2, random_state=seed, stratify=digits.target
    )


def validation_scores(model, x_val, y_val) -> tuple[float, float]:
    loss, accuracy = model.evaluate(x_val, y_val, verbose=0)
    return accuracy, loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--directory", default="runs/digits")
    parser.add_argument("--initial", type=int, default=12)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--top-k", type=int, default=4)
    parser.add_argument("--full-steps", type=int, default=400)
    parser.add_argument("--early-steps", type=int, default=80)
    parser.add_argument("--window", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--overwrite", action="store_true", help="start both searches over")
    args = parser.parse_args()
    x_train, x_val, y_train, y_val = load_data()

    started = time.perf_counter()
    predictive = PredictiveSearch(
        DigitsCNN(),
        schedule=Schedule(
            initial_trials=args.initial, max_iterations=args.iterations, top_k=args.top_k
        ),
        steps=TrainingSteps(args.full_steps, args.early_steps, args.window, 2 * args.window),
        predictor=PredictorSettings(tuning_trials=10),
        seed=args.seed,
        directory=args.directory,
        project_name="predictive",
        overwrite=args.overwrite,
    )
    predictive.search(x_train, y_train, verbose=0)
    predictive_seconds = time.perf_counter() - started
    oracle = predictive.oracle
    total_steps = oracle.training_steps()

    started = time.perf_counter()
    random_trials = math.floor(total_steps / args.full_steps)
    random_search = keras_tuner.RandomSearch(
        DigitsCNN(),
        objective="val_accuracy",
        max_trials=random_trials,
        seed=args.seed,
        directory=args.directory,
        project_name="random",
        overwrite=args.overwrite,
    )
    random_search.search(
        x_train,
        y_train,
        validation_data=(x_val, y_val),
        epochs=args.full_steps,  # StopAfterSteps ends each trial at full_steps
        callbacks=[StopAfterSteps(args.full_steps)],
        verbose=0,
    )
    random_seconds = time.perf_counter() - started

    best_predictive = validation_scores(predictive.get_best_models()[0], x_val, y_val)
    best_random = validation_scores(random_search.get_best_models()[0], x_val, y_val)
    fixed = ", ".join(
        f"{name}={value} (iteration {oracle.fixed_iterations[name]})"
        for name, value in oracle.fixed_values.items()
    )
    print()
    print(f"Total optimizer steps per method: {total_steps}")
    print(
        f"PredictiveSearch: {len(oracle.records())} trials ({args.initial} full, "
        f"{sum(r.role == 'explore' for r in oracle.records())} explored, {args.top_k} finished), "
        f"{predictive_seconds:.0f} s; fixed: {fixed or 'none'}"
    )
    print(f"  best: {predictive.get_best_hyperparameters()[0].values}")
    print(f"  validation accuracy {best_predictive[0]:.4f}, loss {best_predictive[1]:.4f}")
    print(f"RandomSearch: {random_trials} full trials, {random_seconds:.0f} s")
    print(f"  best: {random_search.get_best_hyperparameters()[0].values}")
    print(f"  validation accuracy {best_random[0]:.4f}, loss {best_random[1]:.4f}")
    report = oracle.predictor_report
    if report:
        print(
            "Predictor (random splits of phase 1): "
            + ", ".join(
                f"{name.upper()} MAE {scores['mae']:.4f} pooled R2 {scores['r2_pooled']:.3f}"
                for name, scores in report.items()
            )
        )
    print(
        f"\nnumpy {np.__version__}, keras {keras.__version__}, keras-tuner "
        f"{keras_tuner.__version__}"
    )


if __name__ == "__main__":
    main()

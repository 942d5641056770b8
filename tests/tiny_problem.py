"""A tiny real regression problem and search, shared by in-process and subprocess tests.

Run as a script it performs one search (optionally as a keras-tuner chief or worker, from the
KERASTUNER_* environment variables) and appends the id of every trial it starts to a log.
"""

import argparse
import dataclasses
import gc
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from kt_predictive import (
    AllocationRule,
    PredictiveOracle,
    PredictiveSearch,
    PredictorSettings,
    Schedule,
    Screening,
    TrainingSteps,
)


def regression_data(n=256, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype("float32")
    y = (x @ rng.normal(size=(8, 1)) + 0.1 * rng.normal(size=(n, 1))).astype("float32")
    return x, y


def build_model(hp):
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(hp.Choice("units", [4, 16]), activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    optimizer = {"sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam}[
        hp.Choice("opt", ["sgd", "adam"])
    ]
    model.compile(optimizer=optimizer(hp.Choice("lr", [1e-3, 1e-2, 1e-1])), loss="mse")
    return model


# Small enough for tests, large enough for every phase to matter.
SEARCH = dict(
    initial_trials=5,
    max_iterations=4,
    top_k=2,
    full_steps=24,
    early_steps=8,
    window=4,
    final_window=4,
    tuning_trials=2,
    min_tuning_networks=2,  # tune even with these few networks: the tests cover tuning
    report_splits=3,
    seed=7,
)


# Tests name each setting flat (SEARCH["window"]); grouped() gives the oracle's arguments.
GROUPS = {
    "steps": (TrainingSteps, ("full_steps", "early_steps", "window", "final_window")),
    "schedule": (Schedule, ("initial_trials", "max_iterations", "top_k", "final_share")),
    "screening": (
        Screening,
        (
            "reduction_factor",
            "initial_screen",
            "_screen_within_initial_share",
            "_initial_screen_halvings",
        ),
    ),
    "predictor": (
        PredictorSettings,
        ("predictor", "refit_predictor", "tuning_trials", "min_tuning_networks", "report_splits"),
    ),
}


def grouped(settings: dict) -> dict:
    """``settings`` with flat names (``full_steps=24``, ``top_k=2``, ``reward="linear"``) as
    PredictiveOracle's settings objects; other names pass through."""
    arguments = dict(settings)
    for name in ("screen_within_initial_share", "initial_screen_halvings"):  # bench-only
        if name in arguments:
            arguments[f"_{name}"] = arguments.pop(name)
    for group, (kind, names) in GROUPS.items():
        given = {name: arguments.pop(name) for name in names if name in arguments}
        if given:
            arguments[group] = kind(**given)
    rule = {
        name: arguments.pop(name) for name in ("reward", "beta", "thresholds") if name in arguments
    }
    rule = {name: value for name, value in rule.items() if value is not None}
    if rule:
        base = arguments.get("allocation") or AllocationRule.evidence()
        arguments["allocation"] = dataclasses.replace(base, **rule)
    return arguments


def flat_oracle(**settings) -> PredictiveOracle:
    """A PredictiveOracle of flat-named settings (:func:`grouped`)."""
    return PredictiveOracle(**grouped(settings))


def flat_paper(reward: str = "exp", **settings) -> PredictiveOracle:
    """PredictiveOracle.paper of flat-named settings: the predictor ones change the paper's."""
    names = GROUPS["predictor"][1]
    predictor = {name: settings.pop(name) for name in names if name in settings}
    arguments = grouped(settings)
    if predictor:
        arguments["predictor"] = PredictorSettings.paper(settings.get("seed"), **predictor)
    return PredictiveOracle.paper(reward, **arguments)


def flat_search(hypermodel=None, **settings) -> PredictiveSearch:
    """A PredictiveSearch of flat-named settings (:func:`grouped`)."""
    return PredictiveSearch(hypermodel, **grouped(settings))


class LoggingSearch(PredictiveSearch):
    """Appends the id of every trial it starts to a log file; can pause between trials."""

    def __init__(self, *args, trial_log, pause_after_trial=0.0, **kwargs):
        self.trial_log = trial_log
        self.pause_after_trial = pause_after_trial
        super().__init__(*args, **kwargs)

    def on_trial_begin(self, trial):
        with open(self.trial_log, "a") as log:
            log.write(f"{os.getpid()} {trial.trial_id}\n")
        super().on_trial_begin(trial)

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        time.sleep(self.pause_after_trial)


class SlowSteps(keras.callbacks.Callback):
    """Sleeps ``delay`` seconds after every training step past step ``after`` (counted by the
    optimizer, so a resumed training continues the count)."""

    def __init__(self, delay: float, after: int = 0):
        super().__init__()
        self.delay = delay
        self.after = after

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations) > self.after:
            time.sleep(self.delay)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("directory")
    parser.add_argument("--log", required=True)
    parser.add_argument("--step-delay", type=float, default=0.0, help="seconds to sleep per step")
    parser.add_argument(
        "--delay-after-step",
        type=int,
        default=0,
        help="sleep only in the steps after this one of a network's training",
    )
    parser.add_argument(
        "--pause-after-trial", type=float, default=0.0, help="seconds to sleep between trials"
    )
    parser.add_argument("--tuning-trials", type=int, default=SEARCH["tuning_trials"])
    parser.add_argument("--worker-timeout", type=float, default=None)
    parser.add_argument(
        "--checkpoint-every", type=int, default=None, help="steps between checkpoints"
    )
    parser.add_argument("--heartbeat-seconds", type=float, default=None)
    parser.add_argument(
        "--tf-data", action="store_true", help="train on a tf.data pipeline of the same data"
    )
    parser.add_argument(
        "--mark-fit", default=None, help="a file written when the predictor's first fit begins"
    )
    args = parser.parse_args()
    callbacks = []
    if args.step_delay:
        callbacks.append(SlowSteps(args.step_delay, args.delay_after_step))
    x, y = regression_data()
    settings = {
        **SEARCH,
        "tuning_trials": args.tuning_trials,
        "worker_timeout": args.worker_timeout,
    }
    # As tests/conftest.py does in pytest's process: keras-tuner's two full garbage
    # collections per trial skip the objects of the imported modules.
    gc.collect()
    gc.freeze()
    tuner = LoggingSearch(
        build_model,
        directory=args.directory,
        project_name="tiny",
        trial_log=args.log,
        pause_after_trial=args.pause_after_trial,
        checkpoint_every=args.checkpoint_every,
        heartbeat_seconds=args.heartbeat_seconds,
        **grouped(settings),
    )
    if args.mark_fit:
        decisions = tuner.oracle._decisions
        start_exploration = decisions.start_exploration

        def marked_start():
            with open(args.mark_fit, "w") as mark:
                mark.write("fitting\n")
            start_exploration()

        decisions.start_exploration = marked_start
    if args.tf_data:
        import tensorflow as tf

        # Shuffled once (seeded), batched: 8 batches an epoch.
        pipeline = tf.data.Dataset.from_tensor_slices((x, y))
        pipeline = pipeline.shuffle(len(x), seed=0, reshuffle_each_iteration=False).batch(32)
        tuner.search(pipeline, verbose=0, callbacks=callbacks)
        return
    tuner.search(x, y, batch_size=32, verbose=0, callbacks=callbacks)


if __name__ == "__main__":
    main()

"""Full training checkpoints: weights, optimizer state, step and the loss curve so far.

Exploration trials stop at the early budget and may later resume to the full budget; a
killed trial resumes from its last checkpoint. Resuming must continue the same optimisation
(Adam's moments, the step counter behind learning-rate schedules), so a checkpoint holds the
optimizer's variables too, unlike keras-tuner's weights-only ``checkpoint.weights.h5``.

Variables are stored in order (models rebuilt from the same hyperparameters list their
variables in the same order, while their auto-generated names differ); shapes are checked on
restore.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterable
from pathlib import Path

import keras
import numpy as np

from kt_predictive.errors import SearchError
from kt_predictive.storage import CorruptStateError, atomic_write, remove_file

TRAINING_STATE_FILE = "training_state.npz"


def training_state_path(trial_dir: str | os.PathLike) -> Path:
    """Where a trial's full training checkpoint lives."""
    return Path(trial_dir) / TRAINING_STATE_FILE


def remove_training_states(trial_dirs: Iterable[str | os.PathLike]) -> None:
    """Deletes the full checkpoints in ``trial_dirs`` (those that will never be resumed)."""
    for trial_dir in trial_dirs:
        remove_file(training_state_path(trial_dir))


def _optimizer(model: keras.Model) -> keras.optimizers.Optimizer:
    if model.optimizer is None:
        raise SearchError("the model must be compiled with an optimizer before checkpointing")
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    return model.optimizer


def save_training_state(
    path: str | os.PathLike, model: keras.Model, losses: np.ndarray, seconds: float = 0.0
) -> None:
    """Atomically writes the model's full training state after ``len(losses)`` steps.

    ``seconds`` is the training time spent so far, carried over when training resumes.
    """
    arrays = {"losses": np.asarray(losses, dtype=np.float32), "seconds": np.array(float(seconds))}
    for i, variable in enumerate(model.weights):
        arrays[f"weight_{i}"] = variable.numpy()
    optimizer_store: dict[str, np.ndarray] = {}
    _optimizer(model).save_own_variables(optimizer_store)
    for key, value in optimizer_store.items():
        arrays[f"optimizer_{key}"] = np.asarray(value)
    arrays["n_weights"] = np.array(len(model.weights))
    arrays["n_optimizer"] = np.array(len(optimizer_store))
    atomic_write(path, lambda file: np.savez(file, **arrays))


def load_training_state(path: str | os.PathLike, model: keras.Model) -> tuple[np.ndarray, float]:
    """Restores weights and optimizer state into ``model``; returns the loss curve and the
    training seconds spent so far.

    Raises:
        ValueError: when the checkpoint was made by a different architecture.
        CorruptStateError: when the file cannot be read.
    """
    try:
        data = np.load(path)
        n_weights, n_optimizer = int(data["n_weights"]), int(data["n_optimizer"])
        losses, seconds = np.array(data["losses"], dtype=np.float32), float(data["seconds"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise CorruptStateError(
            f"checkpoint {path} cannot be read ({type(error).__name__}: {error}); delete it to "
            "train this trial again from its start"
        ) from error
    with data:
        if n_weights != len(model.weights):
            raise SearchError(
                f"checkpoint {path} holds {n_weights} weights but the model has "
                f"{len(model.weights)}: it was made by another architecture; delete it to "
                "retrain this trial from scratch"
            )
        for i, variable in enumerate(model.weights):
            value = data[f"weight_{i}"]
            if tuple(value.shape) != tuple(variable.shape):
                raise SearchError(
                    f"checkpoint {path}: weight {i} ({variable.path}) has shape {value.shape}, "
                    f"the model expects {tuple(variable.shape)}; delete the checkpoint to "
                    "retrain this trial from scratch"
                )
            variable.assign(value)
        optimizer = _optimizer(model)
        if n_optimizer != len(optimizer.variables):
            raise SearchError(
                f"checkpoint {path} holds {n_optimizer} optimizer variables but the "
                f"optimizer has {len(optimizer.variables)}; was the optimizer changed?"
            )
        optimizer.load_own_variables({str(i): data[f"optimizer_{i}"] for i in range(n_optimizer)})
    return losses, seconds

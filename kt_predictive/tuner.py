"""PredictiveTuner: runs the PredictiveOracle's trials on Keras models, budgeted in steps."""

from __future__ import annotations

import copy
import inspect
import time
import warnings
from pathlib import Path

import keras_tuner
import numpy as np
from keras_tuner import errors

from kt_predictive.budget import window_mean
from kt_predictive.callbacks import StepBudgetCallback
from kt_predictive.checkpoint import load_training_state, save_training_state, training_state_path
from kt_predictive.oracle import TRAIN_SECONDS, PredictiveOracle
from kt_predictive.storage import check_writable, write_json

# How long a worker waits before asking again while the oracle waits for other workers'
# trials to end (between phases, in distributed searches).
IDLE_POLL_SECONDS = 2.0


class PredictiveTuner(keras_tuner.Tuner):
    """A keras-tuner ``Tuner`` whose trials are budgeted in optimizer steps.

    ``search(*fit_args, **fit_kwargs)`` passes its arguments to ``HyperModel.fit`` (so to
    ``model.fit``): NumPy arrays, ``tf.data`` datasets and ``keras.utils.PyDataset`` work.
    Training length is set by the oracle's step budget, whatever ``epochs`` says; the data
    must last that many steps (arrays and datasets are iterated again each epoch).

    Each trial writes a full checkpoint (weights, optimizer state, step, loss curve) to its
    trial folder every ``checkpoint_every`` steps and at every early window, so a killed
    search resumes mid-trial, and exploration trials can be continued in phase 4. Fully
    trained trials keep keras-tuner's ``checkpoint.weights.h5`` for ``get_best_models``.

    Args:
        hypermodel: A ``keras_tuner.HyperModel`` or a function ``hp -> compiled model``.
        oracle: A :class:`PredictiveOracle`.
        checkpoint_every: Steps between checkpoints (default: the oracle's window).
        **kwargs: ``keras_tuner.Tuner`` arguments (``directory``, ``project_name``,
            ``overwrite``, ``distribution_strategy``, ...).
    """

    def __init__(self, hypermodel=None, oracle=None, checkpoint_every: int | None = None, **kwargs):
        if not isinstance(oracle, PredictiveOracle):
            raise ValueError(
                f"PredictiveTuner needs a PredictiveOracle (got {type(oracle).__name__}); "
                "or use PredictiveSearch(hypermodel, ...) to build both"
            )
        if kwargs.get("executions_per_trial", 1) != 1:
            raise ValueError(
                "executions_per_trial must be 1: a trial is one training run that may be "
                "stopped and resumed"
            )
        # Workers in a distributed search talk to the chief through a client that hides the
        # oracle's settings; the budget is the same in every process running the script.
        self.budget = oracle.budget
        self.checkpoint_every = checkpoint_every or oracle.budget.window
        if self.checkpoint_every <= 0:
            raise ValueError(f"checkpoint_every must be a positive step count (got {checkpoint_every})")
        self._awaiting_trial = False
        # Fail before any training if the results could not be kept.
        check_writable(Path(kwargs.get("directory") or ".") / (kwargs.get("project_name") or "untitled_project"))
        super().__init__(oracle=oracle, hypermodel=hypermodel, **kwargs)

    def on_search_begin(self):
        # Saved now so that rerunning a search killed during its first trial reloads it.
        self.save()

    def pre_create_trial(self):
        if self._awaiting_trial:  # the last request got no trial: the oracle is waiting
            time.sleep(IDLE_POLL_SECONDS)
        self._awaiting_trial = True

    def on_trial_begin(self, trial):
        self._awaiting_trial = False
        super().on_trial_begin(trial)

    def _run_and_update_trial(self, trial, *fit_args, **fit_kwargs):
        # The window means and the final mean reach the oracle from StepBudgetCallback while
        # the model trains, so nothing is left to report afterwards.
        self.run_trial(trial, *fit_args, **fit_kwargs)

    def run_trial(self, trial, *args, **kwargs):
        """Trains the trial's model until the oracle or the budget stops it."""
        hp = trial.hyperparameters
        model = self._try_build(hp)
        trial_dir = self.get_trial_dir(trial.trial_id)
        state_path = training_state_path(trial_dir)
        losses, seconds = load_training_state(state_path, model) if state_path.exists() else ([], 0.0)

        def report(step: int, value: float) -> bool:
            metrics = {self.oracle.objective.name: value, TRAIN_SECONDS: callback.seconds}
            response = self.oracle.update_trial(trial.trial_id, metrics, step=step)
            return response.status == keras_tuner.engine.trial.TrialStatus.STOPPED

        callback = StepBudgetCallback(
            self.budget,
            losses,
            report=report,
            save=lambda curve: save_training_state(state_path, model, curve, callback.seconds),
            checkpoint_every=self.checkpoint_every,
            metric=self.oracle.objective.name,
            seconds=seconds,
        )
        if not self._replay(callback):
            self._fit(trial, model, callback, args, kwargs)
        if callback.diverged_at is not None or callback.stopped_by_oracle:
            return
        if callback.steps < self.budget.full_steps:
            raise errors.FailedTrialError(
                f"trial {trial.trial_id} stopped after {callback.steps} of "
                f"{self.budget.full_steps} steps: the data ran out or a callback set "
                "model.stop_training. Pass data that lasts (arrays, a repeating dataset, a "
                "PyDataset) and leave stopping to the oracle (no EarlyStopping)"
            )
        self._save_final_weights(trial.trial_id, model)
        state_path.unlink(missing_ok=True)

    def _replay(self, callback: StepBudgetCallback) -> bool:
        """Re-reports the complete windows of a resumed curve; returns whether to stop.

        The oracle may have missed the last report if the search was killed right after a
        checkpoint; reports are idempotent.
        """
        curve = np.asarray(callback.losses)
        for end in self.budget.window_ends():
            if end <= len(curve) and callback.report(end, window_mean(curve, end, self.budget.window)):
                callback.stopped_by_oracle = True
                return True
        return False

    def _fit(self, trial, model, callback, args, kwargs):
        kwargs = copy.copy(kwargs)
        if "epochs" in kwargs:
            warnings.warn(
                "PredictiveTuner ignores epochs: trials train for the oracle's step budget "
                f"({self.budget.early_steps} or {self.budget.full_steps} steps)",
                stacklevel=3,
            )
        # Keras' progress bars know neither the step budget nor where the oracle stops a
        # trial; the oracle prints one line per trial instead. verbose=1 brings them back.
        kwargs.setdefault("verbose", 0)
        callbacks = self._deepcopy_callbacks(kwargs.pop("callbacks", []))
        self._configure_tensorboard_dir(callbacks, trial)
        # Every epoch has at least one step, so this many epochs always reach the budget.
        kwargs["epochs"] = self.budget.full_steps - callback.steps
        kwargs["callbacks"] = [callback, *callbacks]
        self.hypermodel.fit(trial.hyperparameters, model, *args, **kwargs)

    def _save_final_weights(self, trial_id: str, model) -> None:
        # keras-tuner's load_model() and get_best_models() read these two files.
        model.save_weights(self._get_checkpoint_fname(trial_id))
        write_json(self._get_build_config_fname(trial_id), model.get_build_config())

    def save(self):
        if not self._is_worker():
            self.oracle.save()
        write_json(self._get_tuner_fname(), self.get_state())

    def load_model(self, trial):
        """The fully trained model of ``trial``, with its optimizer state."""
        model = self._try_build(trial.hyperparameters)
        # The weights file holds the optimizer's variables too; they load once it is built.
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(self._get_checkpoint_fname(trial.trial_id))
        return model

    def get_best_models(self, num_models=1):
        """The fully trained models with the lowest real final loss."""
        return super().get_best_models(num_models)


# The keyword arguments PredictiveSearch hands to the oracle; the rest go to the tuner.
_ORACLE_ARGUMENTS = (set(inspect.signature(PredictiveOracle.__init__).parameters) - {"self", "kwargs"}) | {
    "allow_new_entries",
    "tune_new_entries",
    "max_retries_per_trial",
    "max_consecutive_failed_trials",
}


class PredictiveSearch(PredictiveTuner):
    """A :class:`PredictiveOracle` and its :class:`PredictiveTuner` in one call.

    Like keras-tuner's ``RandomSearch``: the oracle's keyword arguments (``initial_trials``,
    ``full_steps``, ``reward``, ``seed``, ...) build the oracle, the others (``directory``,
    ``project_name``, ``overwrite``, ``checkpoint_every``, ...) go to the tuner.
    """

    def __init__(self, hypermodel=None, objective="loss", **kwargs):
        oracle_kwargs = {name: kwargs.pop(name) for name in list(kwargs) if name in _ORACLE_ARGUMENTS}
        oracle = PredictiveOracle(objective=objective, **oracle_kwargs)
        super().__init__(hypermodel, oracle=oracle, **kwargs)

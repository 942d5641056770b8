"""PredictiveTuner: runs the PredictiveOracle's trials on Keras models, budgeted in steps."""

from __future__ import annotations

import copy
import gc
import hashlib
import inspect
import math
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import keras
import keras_tuner
import numpy as np
from keras_tuner import errors

from kt_predictive import lock
from kt_predictive.budget import window_mean
from kt_predictive.callbacks import StepBudgetCallback
from kt_predictive.checkpoint import (
    load_training_state,
    remove_training_states,
    save_training_state,
    training_state_path,
)
from kt_predictive.data_workers import stop_abandoned_data_workers
from kt_predictive.errors import FatalSearchError, SearchError
from kt_predictive.oracle import PredictiveOracle
from kt_predictive.records import INITIAL_STEP_VALUE, PARENT_VALUE
from kt_predictive.reporting import TrialReporter
from kt_predictive.storage import check_writable, remove_file, write_json

# How long a worker waits before asking again while the oracle waits for other workers'
# trials to end (between phases, in distributed searches).
IDLE_POLL_SECONDS = 2.0

#: Fully trained networks whose weights a search keeps by default (the lowest real final
#: losses; the best finalized candidate is kept as well). A paper-size search fully trains
#: 120 networks of up to 586 MiB of weights each.
KEEP_MODELS = 10


class PredictiveTuner(keras_tuner.Tuner):
    """A keras-tuner ``Tuner`` whose trials are budgeted in optimizer steps.

    ``search(*fit_args, **fit_kwargs)`` passes its arguments to ``HyperModel.fit`` (so to
    ``model.fit``): NumPy arrays, ``tf.data`` datasets and ``keras.utils.PyDataset`` work.
    Training length is set by the oracle's step budget, whatever ``epochs`` says; the data
    must last that many steps (arrays and datasets are iterated again each epoch).

    Each trial writes a full checkpoint (weights, optimizer state, step, loss curve) to its
    trial folder every ``checkpoint_every`` steps and at every early window, so a killed
    search resumes mid-trial, and exploration trials can be continued in phase 4: a
    continuation is a new trial whose ``values["tuner/trial_id"]`` names the parent whose
    checkpoint it starts from (in a distributed search the ``directory`` must be shared).
    Fully trained trials keep keras-tuner's ``checkpoint.weights.h5`` for
    ``get_best_models`` and no optimizer state, and only while they can be among the
    ``keep_models`` with the lowest real final loss (or are the best finalized candidate,
    ``oracle.best_finalized_trial()``): the others' weights are deleted as soon as enough
    better networks have settled, so a search's disk use is bounded whatever its length.
    ``has_model`` says whether a trial's weights are kept; override ``on_trial_end`` to use a
    network before the search may delete it (it is settled in ``super().on_trial_end``).

    A resumed or continued trial continues the data stream too when its
    ``HyperModel.fit`` declares an ``initial_step`` parameter (the optimizer steps already
    trained; the AAE's does); otherwise a ``tf.data`` dataset is trained on as one stream of
    batches (its epochs one after the other) from that step on, and a ``PyDataset`` is
    resumed with ``initial_epoch`` at the epoch that holds that step.

    Args:
        hypermodel: A ``keras_tuner.HyperModel`` or a function ``hp -> compiled model``.
        oracle: A :class:`PredictiveOracle`.
        checkpoint_every: Steps between checkpoints (default: the oracle's window).
        heartbeat_seconds: Longest time between two reports to the oracle. Default: 30 s,
            or a third of the oracle's ``worker_timeout`` when that is shorter, so that live
            workers are never taken for dead; a value not below ``worker_timeout`` is refused.
        keep_models: Fully trained networks whose weights are kept (default 10): those
            with the lowest real final loss, plus the best finalized candidate. ``None``
            keeps every one.
        **kwargs: ``keras_tuner.Tuner`` arguments (``directory``, ``project_name``,
            ``overwrite``, ``distribution_strategy``, ...).
    """

    def __init__(
        self,
        hypermodel=None,
        oracle=None,
        checkpoint_every: int | None = None,
        heartbeat_seconds: float | None = None,
        keep_models: int | None = KEEP_MODELS,
        **kwargs,
    ):
        if not isinstance(oracle, PredictiveOracle):
            raise SearchError(
                f"PredictiveTuner needs a PredictiveOracle (got {type(oracle).__name__}); "
                "or use PredictiveSearch(hypermodel, ...) to build both"
            )
        if kwargs.get("executions_per_trial", 1) != 1:
            raise SearchError(
                "executions_per_trial must be 1: a trial is one training run that may be "
                "stopped and resumed"
            )
        # Workers in a distributed search talk to the chief through a client that hides the
        # oracle's settings; the budget is the same in every process running the script.
        self.steps = oracle.steps
        self.checkpoint_every = checkpoint_every or oracle.steps.window
        if self.checkpoint_every <= 0:
            raise SearchError(
                f"checkpoint_every must be a positive step count (got {checkpoint_every})"
            )
        self.heartbeat_seconds = _heartbeat(heartbeat_seconds, oracle.worker_timeout)
        if keep_models is not None and (
            isinstance(keep_models, bool) or not isinstance(keep_models, int) or keep_models < 1
        ):
            raise SearchError(
                f"keep_models must be a positive number of networks or None (got {keep_models!r})"
            )
        self.keep_models = keep_models
        self._awaiting_trial = False
        # Fail before any training if the results could not be kept.
        if "://" in str(kwargs.get("directory") or ""):
            # keras-tuner can write to gs:// through tf.io; this plugin's state and
            # checkpoints rely on local atomic renames, which such stores do not offer.
            raise SearchError(
                f"directory {kwargs['directory']!r} is not a local path: PredictiveTuner writes "
                "its state and checkpoints with atomic renames, which object stores do not "
                "have. Use a local or mounted folder (e.g. gcsfuse) and copy it afterwards"
            )
        project_dir = Path(kwargs.get("directory") or ".") / (
            kwargs.get("project_name") or "untitled_project"
        )
        check_writable(project_dir)
        # Outside keras-tuner's chief/worker mode, one process per folder (checked before
        # reloading, taken again after: overwrite=True deletes the folder).
        self._project_lock = None if "KERASTUNER_ORACLE_IP" in os.environ else project_dir
        if self._project_lock is not None:
            lock.acquire(project_dir)
        # Every process of a search (chief or worker) builds its oracle with the same seed;
        # workers only see keras-tuner's client of it, so the seed is kept here.
        self._search_seed = oracle.seed
        # The oracle says which early checkpoints will never be continued; the tuner, which
        # wrote them, deletes them (set before keras-tuner reloads a search: an extended
        # search releases checkpoints while it reloads).
        oracle.release_checkpoints = self._remove_training_states
        # Likewise the weights of fully trained networks that cannot be among the best kept.
        oracle.trial_settled = self._release_models
        super().__init__(oracle=oracle, hypermodel=hypermodel, **kwargs)
        if self._project_lock is not None:
            lock.acquire(project_dir)
        if getattr(self.oracle, "multi_worker", False):
            # keras-tuner's OracleClient drops update_trial's answer in multi-worker mode, so
            # the oracle could never stop an exploration trial at the early budget.
            raise SearchError(
                "PredictiveTuner does not support a multi-worker distribution_strategy: "
                "keras-tuner then drops the oracle's answers, so exploration trials could not "
                "stop at early_steps. Use one worker per trial (keras-tuner's chief/worker "
                "mode) with a single-machine strategy such as MirroredStrategy"
            )

    def reload(self):
        super().reload()
        # keras-tuner takes the saved space on reload; building the hypermodel's space again
        # lets the oracle refuse a space that changed since (a value added to a Choice).
        self._populate_initial_space()

    def on_search_end(self):
        super().on_search_end()
        # What _free_last_model froze goes back to the collector's oldest generation.
        gc.unfreeze()
        if self._project_lock is not None:
            lock.release(Path(self._project_lock) / lock.LOCK_FILE)

    def on_search_begin(self):
        if self._project_lock is not None:
            lock.acquire(self._project_lock)
        # Saved now so that rerunning a search killed during its first trial reloads it.
        self.save()
        if isinstance(self.oracle, PredictiveOracle):
            # Trials a kill left trained but not ended end here, through on_trial_end, so
            # an override sees their networks as it sees every other.
            self.oracle.end_runs_over(self.on_trial_end)

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

    def _remove_training_states(self, trial_ids: list[str]) -> None:
        """Deletes the training states of trials that will never be resumed or continued."""
        remove_training_states(self.get_trial_dir(t) for t in trial_ids)

    def _release_models(self) -> None:
        """Deletes the weights of the fully trained networks that can no longer be among the
        ``keep_models`` lowest real final losses (a settled loss never changes, so a network
        with ``keep_models`` better ones never gets back in), except the best finalized one."""
        if self.keep_models is None or not isinstance(self.oracle, PredictiveOracle):
            return  # a worker of a distributed search: the chief's tuner deletes them
        keep = {t.trial_id for t in self.oracle.get_best_trials(self.keep_models)}
        finalized = self.oracle.best_finalized_trial()
        if finalized is not None:
            keep.add(finalized.trial_id)
        for record in self.oracle.records():
            if record.is_real and record.trial_id not in keep:
                Path(self._get_checkpoint_fname(record.trial_id)).unlink(missing_ok=True)

    def has_model(self, trial_id: str) -> bool:
        """Whether the weights of trial ``trial_id`` are kept, so :meth:`load_model` works:
        it was trained fully and has not been released (``keep_models``)."""
        return Path(self._get_checkpoint_fname(trial_id)).is_file()

    def _starting_state(self, trial, model) -> tuple[np.ndarray, float]:
        """The curve and seconds a trial starts from: its own checkpoint (a resumed trial),
        its parent's (a continuation), or nothing (a new trial)."""
        own = training_state_path(self.get_trial_dir(trial.trial_id))
        if own.exists():
            return load_training_state(own, model)
        parent = trial.hyperparameters.values.get(PARENT_VALUE)
        if parent is None:
            return np.zeros(0, dtype=np.float32), 0.0
        parent_state = training_state_path(self.get_trial_dir(parent))
        if not parent_state.exists():
            raise FatalSearchError(
                f"trial {trial.trial_id} continues trial {parent} from its early checkpoint, but "
                f"{parent_state} does not exist. In a distributed search every worker needs the "
                "same (shared) directory; if the file was deleted, the continuation cannot be "
                "resumed: start over with overwrite=True"
            )
        return load_training_state(parent_state, model)

    def trial_seed(self, trial) -> int:
        """The seed of a trial's weights and data order, derived from the search's seed and
        the trial id, so the same search seed gives the same trials (TensorFlow's CPU kernels
        may still differ in the last bits between machines or thread counts)."""
        digest = hashlib.sha256(f"{self._search_seed}/{trial.trial_id}".encode()).digest()
        return int.from_bytes(digest[:4], "little") % 2**31

    def run_trial(self, trial, *args, **kwargs):
        """Trains the trial's model until the oracle or the budget stops it."""
        _free_last_model()
        keras.utils.set_random_seed(self.trial_seed(trial))
        model = self._try_build(trial.hyperparameters)
        _build_optimizer(model)
        state_path = training_state_path(self.get_trial_dir(trial.trial_id))
        losses, seconds = self._starting_state(trial, model)
        reporter = TrialReporter(
            self.oracle, trial.trial_id, self.steps, self.oracle.objective.name
        )
        callback = StepBudgetCallback(
            self.steps,
            losses,
            report=None,
            save=None,
            checkpoint_every=self.checkpoint_every,
            # A validation objective is measured at the report points; the curve that
            # checks divergence and makes checkpoints is the training loss.
            metric=_training_metric(self.oracle.objective.name),
            seconds=seconds,
            heartbeat_seconds=self.heartbeat_seconds,
        )
        objective = self.oracle.objective.name
        if objective.startswith("val_"):
            callback.evaluate = self._validation(model, objective, kwargs)
        # Both need the callback's running clock, so they are attached once it exists.
        callback.report = lambda step, value: reporter.report(step, value, seconds=callback.seconds)
        callback.save = lambda curve: save_training_state(
            state_path, model, curve, callback.seconds
        )
        # Before the final report: once the oracle has it, the trial is never trained again.
        callback.save_final = lambda: self._save_final_weights(trial.trial_id, model)
        if not self._replay(callback, self._initial_step(trial)):
            self._fit(trial, model, callback, args, kwargs)
        if callback.diverged_at is not None or callback.stopped_by_oracle:
            return
        if callback.steps < self.steps.full_steps:
            # The oracle hears of the steps trained, so its progress line and this message agree.
            if callback.losses and math.isfinite(callback.losses[-1]):
                callback.report(callback.steps, float(callback.losses[-1]))
            raise errors.FailedTrialError(
                f"trial {trial.trial_id} stopped after {callback.steps} of "
                f"{self.steps.full_steps} steps: the data ran out or a callback set "
                "model.stop_training. Pass data that lasts (arrays, a repeating dataset, a "
                "PyDataset) and leave stopping to the oracle (no EarlyStopping)"
            )
        # A fully trained network never resumes: its optimizer state is not kept.
        remove_file(state_path)

    def _validation(self, model, objective: str, kwargs: dict) -> Callable[[], float]:
        """``evaluate()`` of a validation objective on the search's ``validation_data``.

        Its time counts as the trial's (``seconds``): a validation pass at every window end
        is what a validation objective costs.
        """
        data = kwargs.pop("validation_data", None)
        if data is None:
            raise FatalSearchError(
                f"the objective {objective!r} is measured on validation data: pass "
                "validation_data=(x, y) (or a dataset) to tuner.search()"
            )
        name = objective[len("val_") :]
        if name == "loss" and _eager_loss_applies(model, data, self.distribution_strategy):
            return lambda: _eager_loss(model, data)

        def evaluate() -> float:
            results = (
                model.evaluate(*data, verbose=0, return_dict=True)
                if isinstance(data, tuple)
                else model.evaluate(data, verbose=0, return_dict=True)
            )
            if name not in results:
                raise FatalSearchError(
                    f"evaluating the validation data gives {sorted(results)}, not {name!r}; "
                    "compile the model with that metric or choose another objective"
                )
            return float(results[name])

        return evaluate

    def _initial_step(self, trial) -> int:
        """The step after which a trial reports: a continuation's parent's steps, else 0."""
        values = trial.hyperparameters.values
        if PARENT_VALUE not in values:
            return 0
        # A continuation created before the oracle said where it starts: its parent's
        # windows are the oracle's already.
        return int(values.get(INITIAL_STEP_VALUE, self.steps.early_steps))

    def _replay(self, callback: StepBudgetCallback, initial_step: int = 0) -> bool:
        """Re-reports the complete windows of a resumed curve after ``initial_step`` (a
        continuation's parent's windows are the oracle's already); returns whether to stop.

        The oracle may have missed the last report if the search was killed right after a
        checkpoint; reports are idempotent.
        """
        curve = np.asarray(callback.losses)
        if callback.evaluate is not None:
            # A validation value can only be measured now, on the restored state: the report
            # a kill may have cut off is the one at the checkpoint's own step.
            at = len(curve)
            replayed = at in self.steps.window_ends() and at > initial_step
            if replayed and callback.report(at, callback.evaluate()):
                callback.stopped_by_oracle = True
                return True
            return False
        for end in self.steps.window_ends():
            if initial_step < end <= len(curve) and callback.report(
                end, window_mean(curve, end, self.steps.window)
            ):
                callback.stopped_by_oracle = True
                return True
        return False

    def _fit(self, trial, model, callback, args, kwargs):
        kwargs = copy.copy(kwargs)
        if "epochs" in kwargs:
            warnings.warn(
                "PredictiveTuner ignores epochs: trials train for the oracle's step budget "
                f"({self.steps.early_steps} or {self.steps.full_steps} steps)",
                stacklevel=3,
            )
        # Keras' progress bars know neither the step budget nor where the oracle stops a
        # trial; the oracle prints one line per trial instead. verbose=1 brings them back.
        kwargs.setdefault("verbose", 0)
        callbacks = self._deepcopy_callbacks(kwargs.pop("callbacks", []))
        self._configure_tensorboard_dir(callbacks, trial)
        # Every epoch has at least one step, so this many epochs always reach the budget.
        remaining = self.steps.full_steps - callback.steps
        initial_epoch = 0
        resumes_itself = _declares(self.hypermodel.fit, "initial_step")
        if not resumes_itself and (stream := _batch_stream(args, kwargs, callback.steps)):
            args, kwargs = stream
        elif callback.steps:
            if resumes_itself:
                kwargs["initial_step"] = callback.steps
            elif (epoch_length := _epoch_length(args, kwargs)) is not None:
                initial_epoch = callback.steps // epoch_length
                kwargs["initial_epoch"] = initial_epoch
        kwargs["epochs"] = initial_epoch + remaining
        kwargs["callbacks"] = [callback, *callbacks]
        self.hypermodel.fit(trial.hyperparameters, model, *args, **kwargs)

    def save_model(self, trial_id, model, step=0):
        """Saves the weights of ``trial_id``'s fully trained ``model`` where ``load_model``
        and ``get_best_models`` read them: keras-tuner's hook, for a ``run_trial`` of your
        own (``step`` is unused: only networks trained to the full budget are kept)."""
        del step
        self._save_final_weights(trial_id, model)

    def _save_final_weights(self, trial_id: str, model) -> None:
        # keras-tuner's load_model() and get_best_models() read these two files. A fully
        # trained network never resumes: its optimizer's variables (Adam: twice the
        # weights) are left out where the model is a graph of layers that can be re-wrapped.
        path = self._get_checkpoint_fname(trial_id)
        try:
            keras.Model(model.inputs, model.outputs).save_weights(path)
        except (AttributeError, ValueError, TypeError):  # a subclassed model has no graph
            model.save_weights(path)
        write_json(self._get_build_config_fname(trial_id), model.get_build_config())

    def save(self):
        if not self._is_worker():
            self.oracle.save()
        write_json(self._get_tuner_fname(), self.get_state())

    def load_model(self, trial):
        """The fully trained model of ``trial`` (its weights; the optimizer starts afresh
        unless the model is subclassed, whose file holds the optimizer's variables too)."""
        if not self.has_model(trial.trial_id):
            raise SearchError(
                f"trial {trial.trial_id} has no weights to load: it was not trained to the full "
                f"budget, or is not among the {self.keep_models} networks with the lowest final "
                "loss whose weights the search keeps (keep_models; None keeps every one)"
            )
        model = self._try_build(trial.hyperparameters)
        path = self._get_checkpoint_fname(trial.trial_id)
        try:
            graph = keras.Model(model.inputs, model.outputs)
        except (AttributeError, ValueError, TypeError):  # a subclassed model
            if model.optimizer is not None and not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)
            model.load_weights(path)
        else:
            graph.load_weights(path)
        return model

    def results_summary(self, num_trials=10):
        """Prints how trials are scored, then keras-tuner's summary of the best trials.

        A trial's score is the mean of the objective over its final window, not the best
        epoch that keras-tuner's own tuners report.
        """
        objective = self.oracle.objective.name
        measured = (
            f"{objective!r} from one evaluation of validation_data at the end of training"
            if objective.startswith("val_")
            else f"the mean of {objective!r} over its final window (the last "
            f"{self.steps.final_window} optimizer steps)"
        )
        print(
            f"Scoring: a fully trained trial's score is {measured}, not its best epoch as in "
            "keras-tuner's own tuners; an explored trial stopped at the early budget is scored "
            "by its predicted final value (metric 'predicted_final')."
        )
        super().results_summary(num_trials)

    def get_best_models(self, num_models=1):
        """The fully trained models with the lowest real final loss (at most
        ``keep_models`` of them: the others' weights are not kept).

        Raises:
            SearchError: for more models than ``keep_models`` keeps, or than the search has
                trained fully.
        """
        if self.keep_models is not None and num_models > self.keep_models:
            raise SearchError(
                f"get_best_models({num_models}) asks for more networks than the search keeps "
                f"the weights of (keep_models={self.keep_models}); ask for at most "
                f"{self.keep_models}, or search with a larger keep_models (None keeps all)"
            )
        trained = len(self.oracle.get_best_trials(num_models))
        if trained < num_models:
            raise SearchError(
                f"get_best_models({num_models}): the search has trained only {trained} "
                "networks fully (explored trials stop early and have no final weights); ask "
                f"for at most {trained}"
            )
        return super().get_best_models(num_models)


# The default longest silence of a training worker, and its share of a worker_timeout.
HEARTBEAT_SECONDS = 30.0
HEARTBEATS_PER_TIMEOUT = 3


def _heartbeat(heartbeat_seconds: float | None, worker_timeout: float | None) -> float:
    """The seconds between two heartbeats: given, or derived from ``worker_timeout``."""
    if heartbeat_seconds is None:
        if worker_timeout is None:
            return HEARTBEAT_SECONDS
        return min(HEARTBEAT_SECONDS, worker_timeout / HEARTBEATS_PER_TIMEOUT)
    if not heartbeat_seconds > 0:
        raise SearchError(f"heartbeat_seconds must be > 0 (got {heartbeat_seconds!r})")
    if worker_timeout is not None and heartbeat_seconds >= worker_timeout:
        raise SearchError(
            f"heartbeat_seconds={heartbeat_seconds:g} is not shorter than the oracle's "
            f"worker_timeout={worker_timeout:g}: live workers would be taken for dead and "
            "their trials trained twice. Leave heartbeat_seconds out (it is then a third of "
            "worker_timeout) or make it shorter"
        )
    return float(heartbeat_seconds)


def _training_metric(objective: str) -> str:
    """The per-step training metric behind an objective (``loss`` for validation ones)."""
    return "loss" if objective.startswith("val_") else objective


def _free_last_model() -> None:
    """Frees the last trial's model, then freezes what is alive (``gc.freeze``).

    keras-tuner's ``_try_build`` runs two full garbage collections before every build; in a
    process that imported TensorFlow each takes about a second, and a search of short trials
    builds a model every few seconds. Once the objects alive between two trials are frozen,
    every collection (those and Python's automatic ones) scans only what was allocated since;
    the next trial's start unfreezes them for one full collection, and the search's end for
    good (:meth:`PredictiveTuner.on_search_end`).
    """
    # A worker pool left by a trial that failed mid-fit is stopped now: once frozen, it could
    # no longer be found through gc.get_referrers, which searches unfrozen objects only.
    # Unfrozen first: what was alive at the last freeze (a model the caller still held then)
    # and has been released since is collected now, not held for the rest of the search.
    gc.unfreeze()
    stop_abandoned_data_workers()
    keras.backend.clear_session()  # collects the garbage (gc.collect) too
    gc.freeze()


def _build_optimizer(model) -> None:
    """Creates the optimizer's variables of a built model before its first ``fit``.

    ``fit`` would create them inside its first traced training step, and TensorFlow then
    traces that step a second time; a search of short trials traces one per trial.
    """
    optimizer = getattr(model, "optimizer", None)
    if model.built and optimizer is not None and not optimizer.built:
        optimizer.build(model.trainable_variables)


# The batch size of model.evaluate's default, which the eager validation loss batches by.
EVALUATE_BATCH_SIZE = 32


def _eager_loss_applies(model, data, strategy) -> bool:
    """Whether :func:`_eager_loss` gives ``model.evaluate``'s loss on ``data``: in-memory
    arrays ``(x, y)``, Keras' own ``test_step``, TensorFlow, and no distribution strategy."""
    return (
        keras.backend.backend() == "tensorflow"
        and strategy is None
        and isinstance(data, tuple)
        and len(data) == 2
        and all(isinstance(part, np.ndarray) for part in data)
        and len(data[0]) == len(data[1])
        and len(data[0]) > 0
        and type(model).test_step is keras.Model.test_step
    )


def _eager_loss(model, data: tuple) -> float:
    """``model.evaluate(*data)``'s loss computed eagerly, batch by batch.

    The same batches (``EVALUATE_BATCH_SIZE``, in order), the same per-batch loss
    (``compute_loss``, with the model's regularization losses) and the same float32
    batch-size-weighted mean as ``evaluate``'s loss tracker, without tracing a test function
    for every trial's new model or setting up ``evaluate``'s data pipeline and callbacks at
    every window end.
    """
    x, y = data
    total, count = np.float32(0.0), np.float32(0.0)
    for start in range(0, len(x), EVALUATE_BATCH_SIZE):
        batch = slice(start, start + EVALUATE_BATCH_SIZE)
        prediction = model(x[batch], training=False)
        loss = model.compute_loss(
            x=x[batch],
            y=y[batch],
            y_pred=prediction,
            training=False,
        )
        size = np.float32(len(x[batch]))
        total = np.float32(total + np.float32(keras.ops.convert_to_numpy(loss)) * size)
        count = np.float32(count + size)
    return float(total / count)


def _declares(function, name: str) -> bool:
    """Whether ``function`` names parameter ``name`` explicitly (not through **kwargs)."""
    try:
        return name in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


def _batch_stream(args: tuple, kwargs: dict, step: int) -> tuple[tuple, dict] | None:
    """A ``tf.data`` training set as one stream of batches from optimizer step ``step`` on
    (its epochs one after the other, the first ``step`` batches skipped), with the epoch
    length Keras needs to keep one iterator over it; None for other data.

    Every trial trains on this stream, so a resumed trial sees the batches the uninterrupted
    one would have. (A shuffle that reshuffles each epoch draws its order from a seed state
    shared by every iteration in a process, which a new process cannot reproduce: shuffle
    with ``reshuffle_each_iteration=False`` or by a stateless seed of the epoch for that.)
    """
    tf = sys.modules.get("tensorflow")
    positional = bool(args)
    data = args[0] if positional else kwargs.get("x")
    if tf is None or not isinstance(data, tf.data.Dataset):
        return None
    kwargs = dict(kwargs)
    if not kwargs.get("steps_per_epoch"):
        batches = int(data.cardinality())
        kwargs["steps_per_epoch"] = batches if batches > 0 else None
    stream = data.repeat().skip(step)
    if positional:
        return (stream, *args[1:]), kwargs
    kwargs["x"] = stream
    return args, kwargs


def _epoch_length(args, kwargs) -> int | None:
    """Batches per epoch of the training data, where they are known."""
    if kwargs.get("steps_per_epoch"):
        return int(kwargs["steps_per_epoch"])
    data = args[0] if args else kwargs.get("x")
    if isinstance(data, keras.utils.PyDataset):
        try:
            return len(data) or None
        except TypeError:
            return None
    return None


class PredictiveSearch(PredictiveTuner):
    """A :class:`PredictiveOracle` and its :class:`PredictiveTuner` in one call.

    Like keras-tuner's ``RandomSearch``. Every :class:`PredictiveOracle` argument (see there)
    goes to the oracle; ``checkpoint_every``, ``heartbeat_seconds`` and ``keep_models`` are
    :class:`PredictiveTuner`'s.

    Args:
        hypermodel: A ``keras_tuner.HyperModel`` or a function ``hp -> compiled model``.
        **kwargs: The oracle's arguments, and keras-tuner's ``Tuner`` arguments
            (``directory``, ``project_name``, ``overwrite``, ``distribution_strategy``,
            ``tuner_id``, ...).

    Example:
        >>> tuner = PredictiveSearch(build_model, search_budget=30,
        ...                          steps=TrainingSteps(400, 80, 20, 80),
        ...                          directory="runs", project_name="demo")  # doctest: +SKIP
    """

    def __init__(
        self,
        hypermodel=None,
        objective: str | keras_tuner.Objective = "loss",
        search_budget: float | None = None,
        *,
        checkpoint_every: int | None = None,
        heartbeat_seconds: float | None = None,
        keep_models: int | None = KEEP_MODELS,
        **kwargs,
    ):
        if "max_trials" in kwargs:
            raise SearchError(
                "PredictiveSearch has no max_trials: give search_budget (total training in "
                "full-training equivalents; the oracle sizes its phases), or "
                "schedule=Schedule(initial_trials=..., max_iterations=..., top_k=...)"
            )
        moved = sorted(set(kwargs) & set(MOVED_SETTINGS))
        if moved:
            raise SearchError(
                "these settings moved into settings objects: "
                + "; ".join(f"{name} -> {MOVED_SETTINGS[name]}" for name in moved)
            )
        settings = {name: kwargs.pop(name) for name in ORACLE_PARAMETERS if name in kwargs}
        oracle = PredictiveOracle(objective=objective, search_budget=search_budget, **settings)
        super().__init__(
            hypermodel,
            oracle=oracle,
            checkpoint_every=checkpoint_every,
            heartbeat_seconds=heartbeat_seconds,
            keep_models=keep_models,
            **kwargs,
        )


# PredictiveOracle's keyword arguments, which PredictiveSearch forwards (help() shows them).
ORACLE_PARAMETERS = tuple(
    name
    for name in inspect.signature(PredictiveOracle.__init__).parameters
    if name not in ("self", "objective", "search_budget")
)

# Arguments of earlier versions, and where each went.
MOVED_SETTINGS = {
    **{
        name: f"steps=TrainingSteps({name}=...)"
        for name in ("full_steps", "early_steps", "window", "final_window")
    },
    **{
        name: f"schedule=Schedule({name}=...)"
        for name in ("initial_trials", "max_iterations", "top_k", "final_share")
    },
    **{name: f"screening=Screening({name}=...)" for name in ("reduction_factor", "initial_screen")},
    **{name: f"allocation=AllocationRule({name}=...)" for name in ("reward", "beta", "thresholds")},
    **{
        name: f"predictor=PredictorSettings({name}=...)"
        for name in ("refit_predictor", "tuning_trials", "min_tuning_networks", "report_splits")
    },
    "allow_new_entries": "gone (a predictive search always takes new entries)",
    "tune_new_entries": "gone (a predictive search always tunes new entries)",
}


def _search_signature() -> inspect.Signature:
    """PredictiveSearch's parameters with the oracle's written out, for help() and IDEs."""
    own = inspect.signature(PredictiveSearch.__init__).parameters
    oracle = inspect.signature(PredictiveOracle.__init__).parameters
    head = [own["self"], own["hypermodel"], own["objective"], own["search_budget"]]
    middle = [oracle[name] for name in ORACLE_PARAMETERS]
    tail = [own[name] for name in ("checkpoint_every", "heartbeat_seconds", "keep_models")]
    return inspect.Signature([*head, *middle, *tail, own["kwargs"]])


PredictiveSearch.__init__.__signature__ = _search_signature()

"""The batch-level callback that turns a Keras training run into a budgeted trial.

It records the training loss of every optimizer step, reports each early window mean and the
final mean to the oracle as they complete, stops the run when the oracle or the budget says
so (at ``full_steps``) or when the loss stops being finite, and writes full checkpoints along
the way.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import keras
import numpy as np

from kt_predictive.budget import TrainingSteps, final_mean, window_mean
from kt_predictive.data_workers import stop_abandoned_data_workers, use_backend_start_method
from kt_predictive.errors import FatalSearchError, SearchError

# Keras may start a fit's data worker pool before on_train_begin: the start method is set
# when this module is imported, and again at every fit (a cheap no-op when unchanged).
use_backend_start_method()


def _running_mean_tracker(model: keras.Model, metric: str):
    """The ``Mean`` metric behind ``logs[metric]``, if the model has one.

    Keras logs a running mean of the loss over the epoch so far. Its ``total`` and ``count``
    variables give each step's own (batch-size weighted) loss exactly, by difference.
    """
    for candidate in model.metrics:
        if candidate.name == metric and hasattr(candidate, "total") and hasattr(candidate, "count"):
            return candidate
    return None


class StepLossRecorder(keras.callbacks.Callback):
    """Records the training loss of every optimizer step, exactly.

    Subclasses decide what happens after each step by overriding :meth:`after_step`.

    Args:
        losses: Per-step losses of steps trained before (a resumed run's curve).
        metric: The training metric whose per-step value makes the curve.
        seconds: Training time spent before (a resumed run's).
    """

    def __init__(self, losses=(), metric: str = "loss", seconds: float = 0.0):
        super().__init__()
        self.losses = list(np.asarray(losses, dtype=np.float32))
        self.metric = metric
        self._seconds_before = seconds
        self._started: float | None = None

    @property
    def seconds(self) -> float:
        """Training time so far, over every run, in seconds."""
        running = time.perf_counter() - self._started if self._started is not None else 0.0
        return self._seconds_before + running

    @property
    def steps(self) -> int:
        """Optimizer steps trained so far, over every run."""
        return len(self.losses)

    def on_train_begin(self, logs=None):
        # On JAX, data worker processes must not be forked from this process (data_workers).
        use_backend_start_method()
        self._tracker = _running_mean_tracker(self.model, self.metric)
        self._started = time.perf_counter()

    def on_train_end(self, logs=None):
        # A fit stopped mid-epoch leaves a PyDataset's worker pool running (see data_workers).
        stop_abandoned_data_workers()

    def on_epoch_begin(self, epoch, logs=None):
        # Keras resets its metrics at every epoch start.
        self._seen_total, self._seen_count = 0.0, 0.0

    def on_train_batch_begin(self, batch, logs=None):
        self._first_batch = batch

    def on_train_batch_end(self, batch, logs=None):
        # With steps_per_execution > 1 one call covers several optimizer steps; each gets
        # their mean loss, which keeps window sums exact when windows align with them.
        n_steps = batch - self._first_batch + 1
        value = self._step_loss(logs or {})
        for _ in range(n_steps):
            self.losses.append(value)
            if self.after_step(value):
                self.model.stop_training = True
                return

    def after_step(self, value: float) -> bool:
        """Called after each recorded step; returns whether training must stop."""
        return False

    def _step_loss(self, logs: dict) -> float:
        if self._tracker is None:
            if self.metric not in logs:
                # Fatal: every trial would fail the same way, so the search stops at the
                # first batch with this one message instead of retrying trial after trial.
                raise FatalSearchError(
                    f"the model logs no {self.metric!r} during training, so the search's "
                    f"objective cannot be measured (logged: {sorted(logs)}). Pass "
                    "objective= one of those, or compile the model with that metric"
                )
            return float(logs[self.metric])
        total, count = self._tracker_state()
        value = (total - self._seen_total) / (count - self._seen_count)
        self._seen_total, self._seen_count = total, count
        return value

    def _tracker_state(self) -> tuple[float, float]:
        """The loss tracker's ``total`` and ``count`` now.

        On JAX, ``fit`` keeps metric values outside the variables until the epoch ends
        (stateless training): they are read from the trainer's current state, where Keras
        puts them before calling batch-end callbacks.
        """
        state = getattr(self.model, "_jax_state", None)
        if state and state.get("metrics_variables") is not None:
            variables = self.model.metrics_variables
            values = state["metrics_variables"]
            positions = [
                next(i for i, v in enumerate(variables) if v is tracked)
                for tracked in (self._tracker.total, self._tracker.count)
            ]
            return float(np.asarray(values[positions[0]])), float(np.asarray(values[positions[1]]))
        return float(self._tracker.total.numpy()), float(self._tracker.count.numpy())


class StepBudgetCallback(StepLossRecorder):
    """Counts optimizer steps and drives one trial through its budget.

    Args:
        steps: How long trials train (the oracle's :class:`TrainingSteps`).
        losses: Per-step losses of the steps already trained (empty for a new trial, the
            checkpoint's curve for a resumed one).
        report: ``report(step, value) -> stop`` sends a window mean (at ``window``,
            ``2·window``, … ``early_steps``), the final mean (at ``full_steps``) or inf
            (at the step where the loss stopped being finite) to the oracle, and returns
            whether the oracle wants the trial stopped.
        save: ``save(losses)`` writes a full checkpoint after ``len(losses)`` steps.
        checkpoint_every: Steps between checkpoints; one is always written at every early
            window, so an exploration trial ends with one at ``early_steps``.
        metric: The training metric whose per-step value makes the curve.
        seconds: Training time of the steps already trained.
        heartbeat_seconds: Longest time between two reports. Between the early budget and
            the end of a full training nothing else is reported, and a distributed oracle with
            a ``worker_timeout`` would take a silent worker for dead; every checkpoint and
            every ``heartbeat_seconds`` of training sends the step's loss as a heartbeat.
        evaluate: For a validation objective, ``evaluate() -> value`` measures it on the
            validation data; the window reports and the final report then send that value
            instead of the training curve's means.
    """

    def __init__(
        self,
        steps: TrainingSteps,
        losses: np.ndarray,
        report: Callable[[int, float], bool],
        save: Callable[[np.ndarray], None],
        checkpoint_every: int,
        metric: str = "loss",
        seconds: float = 0.0,
        heartbeat_seconds: float = 30.0,
        evaluate: Callable[[], float] | None = None,
    ):
        super().__init__(losses, metric, seconds)
        self.evaluate = evaluate
        if not heartbeat_seconds > 0:
            raise SearchError(f"heartbeat_seconds must be > 0 (got {heartbeat_seconds!r})")
        self.limits = steps
        self.report = report
        self.save = save
        self.checkpoint_every = checkpoint_every
        self.heartbeat_seconds = heartbeat_seconds
        self.diverged_at: int | None = None
        self.stopped_by_oracle = False
        #: Called at ``full_steps`` before the final report (the tuner saves the network's
        #: final weights there, so a trial the oracle knows as trained has them).
        self.save_final: Callable[[], None] | None = None
        self._last_report = time.monotonic()

    def _report(self, step: int, value: float) -> bool:
        self._last_report = time.monotonic()
        return self.report(step, value)

    def after_step(self, value: float) -> bool:
        step = self.steps
        if not math.isfinite(value):
            self.diverged_at = step
            self._report(step, math.inf)  # NaN or inf: diverged either way
            return True
        early_window_end = step <= self.limits.early_steps and step % self.limits.window == 0
        checkpoint = step % self.checkpoint_every == 0 and step < self.limits.full_steps
        heartbeat_due = time.monotonic() - self._last_report >= self.heartbeat_seconds
        if not (early_window_end or checkpoint or heartbeat_due or step == self.limits.full_steps):
            return False
        curve = np.asarray(self.losses)
        if early_window_end or checkpoint:
            self.save(curve)
        if early_window_end:
            value = (
                self.evaluate() if self.evaluate else window_mean(curve, step, self.limits.window)
            )
            if self._report(step, value):
                self.stopped_by_oracle = True
                return True
        elif step == self.limits.full_steps:
            if self.save_final is not None:
                self.save_final()
            self._report(step, self.evaluate() if self.evaluate else final_mean(curve, self.limits))
            return True
        elif self._report(step, value):  # a heartbeat: the step's own loss
            self.stopped_by_oracle = True
            return True
        return False

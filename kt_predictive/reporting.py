"""The trial protocol in one object, for training loops that are not ``model.fit``.

A :class:`PredictiveOracle` learns about a trial through ``update_trial(trial_id, metrics,
step)``: the objective's mean over each early window (at ``window``, ``2·window``, …,
``early_steps``), the final mean over the last ``final_window`` steps (at ``full_steps``), a
non-finite value at the step where training diverged, and heartbeats in between. It answers
whether to stop. :class:`TrialReporter` does that bookkeeping for a custom loop: feed it every
step's loss and stop when it says so.

Example — a custom loop inside ``PredictiveTuner.run_trial`` (keras-tuner's documented way
to customise training)::

    class MyTuner(PredictiveTuner):
        def run_trial(self, trial, data):
            model = self.hypermodel.build(trial.hyperparameters)
            reporter = TrialReporter(self.oracle, trial.trial_id, self.steps)
            for batch in data:                      # a tf.GradientTape or JAX step
                loss = train_step(model, batch)
                if reporter.step(float(loss)):      # True: the oracle stops the trial here
                    break

(Continuations of explored trials then need the trial's state: a continuation resumes its
parent's state and curve, ``losses=`` here, and reports only the steps after the parent's,
``trial.hyperparameters.values["tuner/initial_step"]``; the oracle refuses an earlier step.
See ``PredictiveTuner``.)
"""

from __future__ import annotations

import math
import time

from kt_predictive.budget import TrainingSteps, final_mean, window_mean

# The metric in which a trial's training time so far travels next to the objective.
TRAIN_SECONDS = "train_seconds"


class TrialReporter:
    """Reports one trial's loss curve to the oracle and says when to stop.

    Args:
        oracle: The oracle, or keras-tuner's client of it in a distributed search.
        trial_id: The trial being trained.
        steps: How long trials train (``oracle.steps``).
        objective: The metric name the oracle ranks by (default ``oracle.objective.name``).
        losses: Per-step losses of steps already trained (a resumed trial's curve).
        heartbeat_seconds: Longest time between two reports (see ``worker_timeout``).
    """

    def __init__(
        self,
        oracle,
        trial_id: str,
        steps: TrainingSteps,
        objective: str | None = None,
        losses=(),
        heartbeat_seconds: float = 30.0,
    ):
        self.oracle = oracle
        self.trial_id = trial_id
        self.steps = steps
        self.objective = objective or oracle.objective.name
        self.losses = [float(x) for x in losses]
        self.heartbeat_seconds = heartbeat_seconds
        self._started = time.perf_counter()
        self._last_report = time.monotonic()

    def report(self, step: int, value: float, seconds: float | None = None) -> bool:
        """Sends ``value`` at ``step``; returns whether the oracle wants the trial stopped.

        ``seconds``: the trial's training time so far (default: since this reporter began).
        """
        self._last_report = time.monotonic()
        if seconds is None:
            seconds = time.perf_counter() - self._started
        metrics = {self.objective: float(value), TRAIN_SECONDS: float(seconds)}
        response = self.oracle.update_trial(self.trial_id, metrics, step=step)
        return str(getattr(response, "status", "")) == "STOPPED"

    def step(self, loss: float) -> bool:
        """Records one optimizer step's loss; returns whether training must stop now.

        Stops at the full budget, when the loss stops being finite, or when the oracle says so
        (an exploration trial at the early budget).
        """
        self.losses.append(float(loss))
        step = len(self.losses)
        if not math.isfinite(loss):
            self.report(step, math.inf)
            return True
        if step <= self.steps.early_steps and step % self.steps.window == 0:
            return self.report(step, window_mean(self.losses, step, self.steps.window))
        if step == self.steps.full_steps:
            self.report(step, final_mean(self.losses, self.steps))
            return True
        if time.monotonic() - self._last_report >= self.heartbeat_seconds:
            return self.report(step, loss)
        return False

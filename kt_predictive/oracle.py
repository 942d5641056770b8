"""PredictiveOracle: the paper's search method as a keras-tuner Oracle.

Four phases (``oracle.phase``):

- ``"initial"`` (dataset generation): ``initial_trials`` distinct configurations, sampled
  uniformly, are trained to ``full_steps``;
- between phases 1 and 3 the performance predictor is tuned once and fitted on them, m and M
  (lowest and highest final losses) are set, and the probabilities are allocated;
- ``"explore"``: Algorithms 2.1/2.2: each trial samples a configuration from the current
  probabilities (fixed values stay fixed), trains to ``early_steps`` only and gets a predicted
  final loss; the probabilities are recomputed after every record, and a value whose
  probability reaches its threshold is fixed. It ends after ``max_iterations`` trials or when
  every hyperparameter is fixed;
- ``"finalize"``: the ``top_k`` explored trials with the lowest predicted loss resume from their
  early checkpoint and train on to ``full_steps``;
- ``"done"``.

The tuner reports through ``update_trial``: the objective's mean over each early window at
steps ``window, 2·window, …, early_steps``, the final mean at ``full_steps``, or a non-finite
value at the step where training diverged. The oracle answers with a trial whose status is
``"STOPPED"`` when the trial must stop (an exploration trial at ``early_steps``).

All state (records, probabilities, fixed values, m and M, the random generator, the
predictor's tuned parameters and which records trained it) is plain JSON in ``oracle.json``,
written atomically, so a killed search continues where it stopped.
"""

from __future__ import annotations

import copy
import glob
import math
import os
import time
from collections.abc import Mapping

import keras_tuner
import numpy as np
from keras_tuner import errors
from keras_tuner.engine import trial as trial_module

from kt_predictive.allocation import (
    FixedValue,
    allocate,
    make_reward,
    newly_fixed,
    resolve_thresholds,
)
from kt_predictive.budget import StepBudget
from kt_predictive.checkpoint import training_state_path
from kt_predictive.predictor import FeatureEncoder, HybridPredictor
from kt_predictive.space import ValueGrid, space_size, value_grids
from kt_predictive.storage import read_json, write_json

TrialStatus = trial_module.TrialStatus

# The metric in which the tuner reports a trial's training time so far, next to the objective.
TRAIN_SECONDS = "train_seconds"

# Attempts at drawing a configuration not tried before, before the space counts as exhausted
# (keras-tuner's own oracles use 20).
MAX_COLLISIONS = 100

# With refit_predictor, the predictions of explored trials change during phase 4, so twice
# top_k candidates keep their early checkpoints to be re-ranked; otherwise top_k suffice.
REFIT_CANDIDATE_FACTOR = 2

# Settings that give recorded results their meaning: a project can only be continued with
# the same ones.
_FIXED_SETTINGS = (
    "full_steps",
    "early_steps",
    "window",
    "final_window",
    "initial_trials",
    "reward",
    "beta",
    "objective",
)


class SearchProgress:
    """Prints one line per finished trial: phase, outcome, best real loss, fixed values.

    Takes the place of keras-tuner's display, which prints a table of every hyperparameter
    for every trial; with hundreds of short exploration trials one line each reads better.
    ``oracle.verbose = 0`` silences it.
    """

    def __init__(self, oracle: PredictiveOracle, verbose: int = 1):
        self.oracle = oracle
        self.verbose = verbose

    def on_trial_begin(self, trial) -> None:
        del trial  # nothing to say until the trial has settled

    def on_trial_end(self, trial) -> None:
        # keras-tuner calls this before the oracle has settled the record (failures,
        # probabilities, fixed values); the oracle calls trial_settled afterwards instead.
        del trial

    def trial_settled(self, record: dict) -> None:
        """Prints the line of a trial whose outcome the oracle has recorded."""
        if self.verbose < 1:
            return
        oracle = self.oracle
        if record["phase"] == "initial":
            position = f"phase 1 {sum(r['phase'] == 'initial' for r in oracle._records.values())}/{oracle.initial_trials}"
        elif record["phase"] == "explore":
            position = f"explore {record['iteration']}/{oracle.max_iterations}"
        else:
            position = f"finalize {len(oracle._continued)}/{oracle.top_k}"
        if record["status"] == "failed":
            outcome = f"failed ({'diverged at step ' + str(record['diverged_at']) if record['diverged_at'] else 'crashed'})"
        elif record["source"] == "predicted":
            outcome = f"predicted final loss {record['final']:.5g}"
        else:
            outcome = f"final loss {record['final']:.5g}"
            if record["predicted"] is not None:
                outcome += f" (predicted {record['predicted']:.5g})"
        best = oracle.get_best_trials()
        line = f"[{position}] trial {record['trial_id']}: {outcome}, {record['steps']} steps in {record['seconds']:.1f} s"
        if best:
            line += f" | best {best[0].score:.5g}"
        if oracle._fixed:
            line += " | fixed " + ", ".join(f"{name}={fixed.value}" for name, fixed in oracle._fixed.items())
        print(line, flush=True)

    def get_state(self) -> dict:
        return {}

    def set_state(self, state: dict) -> None:
        del state  # nothing is kept between runs


def report_test_size(n_networks: int) -> int:
    """Test networks per split of the predictor report made from ``n_networks`` phase-1 trials.

    A fifth of them, as the paper's 20 of 100, capped at 20; at least two, as R² needs.
    """
    return max(2, min(20, n_networks // 5))


class PredictiveOracle(keras_tuner.Oracle):
    """Predictor-guided search with probability allocation (Lombardi et al.).

    Args:
        objective: The training metric to minimise (default ``"loss"``). A trial's score is
            the mean of this metric over its last ``final_window`` steps, not its best value.
        initial_trials: Configurations trained to the full budget in phase 1 (paper: 100).
        max_iterations: Exploration trials in phase 3 at most (paper: 400, then 800).
        top_k: Explored configurations trained on to the full budget in phase 4 (paper: 20).
        full_steps: Full training budget in optimizer steps (paper: 40000).
        early_steps: Budget of an exploration trial (paper: 6000).
        window: Steps per early window whose mean loss feeds the predictor (paper: 1000).
        final_window: Steps at the end whose mean loss is the trial's score (paper: 500).
        reward: ``"exp"`` for the paper's g(x) = exp(-beta (x - m)/(M - m)), ``"linear"``
            for the original framework's f(x) = M - x.
        beta: Steepness of the exponential reward (paper: 5).
        thresholds: Probability at which a value gets fixed: ``None`` for 2/|V_i|, one
            float for all hyperparameters, or ``{name: float}`` for some.
        predictor: A scikit-learn regressor on :class:`FeatureEncoder` rows (default
            :class:`HybridPredictor`). If it has ``tune``, it is tuned once on 80% of the
            phase-1 trials; if it has ``evaluate_splits``, its report is kept.
        refit_predictor: Refit the predictor with every real result of phase 4 and re-rank
            the remaining candidates (the paper's future work).
        tuning_trials: Optuna trials per model when tuning the predictor.
        report_splits: Random splits of the predictor report (the paper's Table 2 uses 1000).
        worker_timeout: Distributed searches: seconds without news of a running trial (its
            window reports) after which its worker counts as dead and the trial goes to
            another worker, resuming from its last checkpoint. Make it longer than the
            training time of one window. ``None`` (default) waits forever, as keras-tuner
            does.
        hyperparameters: Optional search space, as for every keras-tuner oracle.
        seed: Random seed.
        **kwargs: Further ``keras_tuner.Oracle`` arguments (``allow_new_entries``,
            ``tune_new_entries``, ``max_retries_per_trial``,
            ``max_consecutive_failed_trials``).
    """

    def __init__(
        self,
        objective: str | keras_tuner.Objective = "loss",
        initial_trials: int = 100,
        max_iterations: int = 400,
        top_k: int = 20,
        full_steps: int = 40000,
        early_steps: int = 6000,
        window: int = 1000,
        final_window: int = 500,
        reward: str = "exp",
        beta: float = 5.0,
        thresholds: float | Mapping[str, float] | None = None,
        predictor=None,
        refit_predictor: bool = False,
        tuning_trials: int = 30,
        report_splits: int = 100,
        worker_timeout: float | None = None,
        hyperparameters: keras_tuner.HyperParameters | None = None,
        seed: int | None = None,
        **kwargs,
    ):
        for name, value, minimum in (
            ("initial_trials", initial_trials, 2),
            ("max_iterations", max_iterations, 0),
            ("top_k", top_k, 0),
            ("tuning_trials", tuning_trials, 1),
            ("report_splits", report_splits, 0),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum} (got {value!r})")
        self.budget = StepBudget(full_steps, early_steps, window, final_window)
        self._reward = make_reward(reward, beta)
        if not beta > 0:
            raise ValueError(f"beta must be > 0 (got {beta}); the paper uses beta=5")
        super().__init__(
            objective=objective,
            max_trials=initial_trials + max_iterations,
            hyperparameters=hyperparameters,
            seed=seed,
            **kwargs,
        )
        if isinstance(objective, list | tuple):
            raise ValueError("PredictiveOracle needs a single objective, e.g. objective='loss'")
        if self.objective.direction != "min":
            raise ValueError(
                f"the objective {self.objective.name!r} is maximised, but the method ranks "
                "trials by a final mean loss to minimise; pass a loss-like training metric"
            )
        if self.objective.name.startswith("val_"):
            raise ValueError(
                f"objective {self.objective.name!r} is a validation metric, but trials are "
                "scored by windows of training steps; use a training metric such as 'loss'"
            )
        self.initial_trials = initial_trials
        self.max_iterations = max_iterations
        self.top_k = top_k
        self.reward = reward
        self.beta = float(beta)
        self.thresholds = thresholds
        self.predictor = predictor if predictor is not None else HybridPredictor(random_state=self.seed)
        self.refit_predictor = refit_predictor
        self.tuning_trials = tuning_trials
        self.report_splits = report_splits
        if worker_timeout is not None and not worker_timeout > 0:
            raise ValueError(f"worker_timeout must be a positive number of seconds or None (got {worker_timeout!r})")
        self.worker_timeout = worker_timeout
        # Monotonic times of the last news of each running trial and each worker; not saved,
        # since a reloaded search sends its running trials to be run again anyway.
        self._trial_contact: dict[str, float] = {}
        self._worker_contact: dict[str, float] = {}

        self._phase = "initial"
        self._records: dict[str, dict] = {}
        self._bounds: tuple[float, float] | None = None
        self._probabilities: dict[str, list[float]] = {}
        self._history: list[dict] = []
        self._fixed: dict[str, FixedValue] = {}
        self._exhausted = False
        self._candidates: list[str] = []
        self._continued: list[str] = []
        self._predictor_trials: list[str] = []
        self._predictor_params: dict | None = None
        self._predictor_report: dict | None = None
        self._predictor_fitted = False
        self._rng = np.random.default_rng(self.seed)
        self._grids: list[ValueGrid] | None = None
        self._display = SearchProgress(self)

    # ------------------------------------------------------------------ inspection

    @property
    def phase(self) -> str:
        """``"initial"``, ``"explore"``, ``"finalize"`` or ``"done"``."""
        return self._phase

    def probabilities(self) -> dict[str, dict]:
        """The current probability of every value of every hyperparameter."""
        return {
            grid.name: dict(zip(grid.values, self._probabilities[grid.name], strict=True))
            for grid in self.grids
            if grid.name in self._probabilities
        }

    def probability_history(self) -> list[dict]:
        """``[{"iteration": t, "probabilities": {hp: [p per value]}}]``, t = 0 after phase 1."""
        return copy.deepcopy(self._history)

    @property
    def fixed_values(self) -> dict:
        """``{hp: value}`` for every hyperparameter whose value is fixed."""
        return {name: fixed.value for name, fixed in self._fixed.items()}

    @property
    def fixed_iterations(self) -> dict[str, int]:
        """``{hp: iteration}``: the exploration iteration at which each value got fixed."""
        return {name: fixed.iteration for name, fixed in self._fixed.items()}

    def records(self) -> list[dict]:
        """Every trial's record, in creation order.

        Each is ``{trial_id, values, early, final, predicted, source, phase, status, steps,
        seconds, iteration, diverged_at}`` (``seconds``: training time so far): ``early`` holds the window means, ``final`` the real final
        mean (``source="real"``) or the predicted one (``source="predicted"``); a failed
        trial (diverged or crashed) has ``status="failed"`` and the worst loss M.
        """
        return copy.deepcopy(list(self._records.values()))

    @property
    def predictor_report(self) -> dict | None:
        """MAE, its std and R² of SVR, RF and HYB over random splits of phase 1."""
        return copy.deepcopy(self._predictor_report)

    @property
    def loss_bounds(self) -> tuple[float, float] | None:
        """(m, M): the lowest and highest final losses of phase 1."""
        return self._bounds

    @property
    def grids(self) -> list[ValueGrid]:
        if self._grids is None:
            self._grids = value_grids(self.hyperparameters)
            resolve_thresholds(self._grids, self.thresholds)
        return self._grids

    # ------------------------------------------------------------------ keras-tuner API

    def update_space(self, hyperparameters):
        super().update_space(hyperparameters)
        if self.hyperparameters.space:
            grids = value_grids(self.hyperparameters)
            # Hyperparameters declared in HyperModel.fit() appear only once a trial ran
            # (keras-tuner's own behaviour); that is fine while phase 1 samples uniformly,
            # but the predictor and the probabilities need a settled space.
            if self._phase != "initial" and self._grids is not None and grids != self._grids:
                raise errors.FatalValueError(
                    "the search space changed after phase 1: "
                    f"{[g.name for g in self._grids]} -> {[g.name for g in grids]}; declare "
                    "every hyperparameter before the first trial ends, or start over with a "
                    "new project_name or overwrite=True"
                )
            resolve_thresholds(grids, self.thresholds)
            if space_size(grids) < self.initial_trials:
                raise errors.FatalValueError(
                    f"the search space has {space_size(grids)} configurations, fewer than "
                    f"initial_trials={self.initial_trials}; lower initial_trials or widen the space"
                )
            self._grids = grids

    @keras_tuner.synchronized
    def create_trial(self, tuner_id):
        self._worker_contact[tuner_id] = time.monotonic()
        self._requeue_silent_trials()
        if tuner_id in self.ongoing_trials or self._retry_queue:
            trial = super().create_trial(tuner_id)
            self._trial_contact[trial.trial_id] = time.monotonic()
            return trial
        self._advance()
        if self._phase in ("initial", "explore") and self._can_start_trial():
            trial = super().create_trial(tuner_id)
            self._trial_contact[trial.trial_id] = time.monotonic()
            return trial
        if self._phase == "finalize":
            trial_id = self._next_continuation()
            if trial_id is not None:
                return self._start_continuation(tuner_id, trial_id)
        if self._phase == "done":
            self.tuner_ids.discard(tuner_id)
            return trial_module.Trial(self.get_space(), status=TrialStatus.STOPPED)
        # Waiting for running trials to end before the next phase can start.
        return trial_module.Trial(self.get_space(), status=TrialStatus.IDLE)

    def _requeue_silent_trials(self) -> None:
        """Sends the trials of workers silent for longer than worker_timeout to others."""
        if self.worker_timeout is None:
            return
        now = time.monotonic()
        silent_workers = [
            (tuner_id, trial, now - self._trial_contact.get(trial.trial_id, now))
            for tuner_id, trial in self.ongoing_trials.items()
        ]
        for tuner_id, trial, silent in silent_workers:
            if silent > self.worker_timeout:
                print(
                    f"worker {tuner_id} sent nothing about trial {trial.trial_id} for {silent:.0f} s "
                    f"(worker_timeout {self.worker_timeout:g} s); the trial goes to another worker",
                    flush=True,
                )
                del self.ongoing_trials[tuner_id]
                self._tuner_ids.discard(tuner_id)
                self._retry_queue.append(trial.trial_id)
                self.save()

    @property
    def tuner_ids(self) -> set:
        """The workers that have not been told to stop.

        keras-tuner's chief exits when this is empty; a worker that died between trials
        would keep it waiting forever, so once the search is done, workers silent for longer
        than worker_timeout are dropped.
        """
        if self.worker_timeout is not None and self._phase == "done":
            now = time.monotonic()
            stale = {t for t in self._tuner_ids if now - self._worker_contact.get(t, now) > self.worker_timeout}
            self._tuner_ids -= stale
        return self._tuner_ids

    @tuner_ids.setter
    def tuner_ids(self, value: set) -> None:
        self._tuner_ids = value

    def populate_space(self, trial_id):
        if self._phase == "initial":
            values = self._sample(uniform=True)
            if values is None:
                raise errors.FatalValueError(
                    f"could not draw a configuration not tried before after {MAX_COLLISIONS} "
                    "attempts; the search space is too small for initial_trials="
                    f"{self.initial_trials}"
                )
        else:
            values = self._sample(uniform=False)
            if values is None:
                self._exhausted = True
                return {"status": TrialStatus.IDLE}
        n_explore = len(self._explore_records())
        self._records[trial_id] = {
            "trial_id": trial_id,
            "values": values,
            "phase": self._phase,
            "iteration": None if self._phase == "initial" else n_explore + 1,
            "early": [None] * self.budget.n_windows,
            "final": None,
            "predicted": None,
            "source": None,
            "status": "running",
            "steps": 0,
            "seconds": 0.0,
            "diverged_at": None,
        }
        return {"status": TrialStatus.RUNNING, "values": values}

    @keras_tuner.synchronized
    def update_trial(self, trial_id, metrics, step=0):
        now = time.monotonic()
        self._trial_contact[trial_id] = now
        for tuner_id, ongoing in self.ongoing_trials.items():
            if ongoing.trial_id == trial_id:
                self._worker_contact[tuner_id] = now
        trial = super().update_trial(trial_id, metrics, step)
        record = self._records.get(trial_id)
        if record is None:
            return trial
        value, step = float(metrics[self.objective.name]), int(step)
        stop = False
        if not math.isfinite(value):
            record["diverged_at"] = step
            stop = True
        elif step == self.budget.full_steps:
            record["final"] = value
            record["source"] = "real"
        elif step <= self.budget.early_steps and step % self.budget.window == 0:
            record["early"][step // self.budget.window - 1] = value
            stop = record["phase"] == "explore" and step >= self.budget.early_steps
        record["steps"] = max(record["steps"], step)
        if TRAIN_SECONDS in metrics:
            record["seconds"] = float(metrics[TRAIN_SECONDS])
        self.save()
        if stop:
            trial = copy.copy(trial)
            trial.status = TrialStatus.STOPPED
        return trial

    @keras_tuner.synchronized
    def end_trial(self, trial):
        record = self._records.get(trial.trial_id)
        if record is not None and trial.status == TrialStatus.COMPLETED:
            self._conclude(record)
        super().end_trial(trial)
        if record is None:
            return
        ended = self.trials[trial.trial_id]
        # keras-tuner filled in the values of hyperparameters first declared during the run.
        record["values"] = dict(ended.hyperparameters.values)
        if ended.status == TrialStatus.FAILED:
            self._mark_failed(record)
            ended.score = record["final"] if record["final"] is not None else math.inf
        if record["status"] == "running":
            return  # sent for retry
        if record["phase"] == "explore":
            self._allocate()
            self._prune_checkpoints()
        elif record["phase"] == "finalize" and self.refit_predictor and record["status"] == "complete":
            self._refit_with_real_results()
        self._display.trial_settled(record)
        self._advance()
        self._save_trial(ended)
        self.save()

    def score_trial(self, trial):
        record = self._records.get(trial.trial_id)
        if record is None:
            return super().score_trial(trial)
        trial.score = record["final"] if record["final"] is not None else math.inf
        trial.best_step = record["steps"]

    def get_best_trials(self, num_trials=1):
        """The best trials by **real** final loss (predicted losses never count)."""
        real = [
            r for r in self._records.values() if r["status"] == "complete" and r["source"] == "real"
        ]
        real.sort(key=lambda r: r["final"])
        return [self.trials[r["trial_id"]] for r in real[:num_trials]]

    # ------------------------------------------------------------------ phases

    def _running(self, phase: str | None = None) -> bool:
        return any(
            r["status"] == "running" and (phase is None or r["phase"] == phase)
            for r in self._records.values()
        )

    def _explore_records(self) -> list[dict]:
        return [r for r in self._records.values() if r["iteration"] is not None]

    def _can_start_trial(self) -> bool:
        if self._phase == "initial":
            return len(self._records) < self.initial_trials
        return not self._exploration_over()

    def _exploration_over(self) -> bool:
        return (
            self._exhausted
            or len(self._explore_records()) >= self.max_iterations
            or all(grid.name in self._fixed for grid in self.grids)
        )

    def _advance(self) -> None:
        """Moves to the next phase when the current one has finished."""
        if self._phase == "initial" and len(self._records) >= self.initial_trials and not self._running():
            self._start_exploration()
        if self._phase == "explore" and self._exploration_over() and not self._running():
            self._start_finalize()
        if self._phase == "finalize" and self._next_continuation() is None and not self._running():
            self._phase = "done"
            self.save()

    def _start_exploration(self) -> None:
        """Phase 2: m and M, the predictor (tuned once), then the first allocation."""
        initial = [r for r in self._records.values() if r["phase"] == "initial"]
        finals = sorted({r["final"] for r in initial if r["status"] == "complete"})
        if len(finals) < 2:
            failed = sum(r["status"] == "failed" for r in initial)
            raise errors.FatalError(
                f"phase 1 produced {len(finals)} distinct finite final losses ({failed} of "
                f"{len(initial)} trials failed or diverged); the reward needs the lowest and "
                "highest to differ. Increase initial_trials or narrow the search space to "
                "values that train (e.g. smaller learning rates)"
            )
        self._bounds = (finals[0], finals[-1])
        for record in initial:
            if record["status"] == "failed":
                self._mark_failed(record)
                self.trials[record["trial_id"]].score = record["final"]
        self._predictor_trials = [
            r["trial_id"] for r in initial if None not in r["early"] and r["final"] is not None
        ]
        X, y = self._training_set()
        if len(y) < 2:
            raise errors.FatalError(
                f"only {len(y)} phase-1 trials have a complete early curve; the predictor needs "
                "at least 2. Increase initial_trials"
            )
        if hasattr(self.predictor, "tune"):
            order = self._rng.permutation(len(y))
            train = order[: max(2, round(0.8 * len(y)))]
            self.predictor.tune(X[train], y[train], n_trials=self.tuning_trials)
            self._predictor_params = self.predictor.get_params(deep=False)
        test_size = report_test_size(len(y))
        if hasattr(self.predictor, "evaluate_splits") and self.report_splits and len(y) >= test_size + 3:
            self._predictor_report = self.predictor.evaluate_splits(
                X, y, n_splits=self.report_splits, test_size=test_size
            )
        self._fit_predictor()
        self._phase = "explore"
        self._allocate()
        self.save()

    def _start_finalize(self) -> None:
        explored = [
            r for r in self._explore_records() if r["status"] == "complete" and r["source"] == "predicted"
        ]
        explored.sort(key=lambda r: r["predicted"])
        self._candidates = [r["trial_id"] for r in explored[: self._candidate_pool()]]
        self._phase = "finalize"
        self._prune_checkpoints()
        self.save()

    def _candidate_pool(self) -> int:
        return self.top_k * (REFIT_CANDIDATE_FACTOR if self.refit_predictor else 1)

    def _next_continuation(self) -> str | None:
        if len(self._continued) >= self.top_k:
            return None
        waiting = [t for t in self._candidates if t not in self._continued]
        if not waiting:
            return None
        return min(waiting, key=lambda t: self._records[t]["predicted"])

    def _start_continuation(self, tuner_id: str, trial_id: str):
        self._trial_contact[trial_id] = time.monotonic()
        self._continued.append(trial_id)
        record = self._records[trial_id]
        record.update(phase="finalize", status="running", source=None, final=None)
        trial = self.trials[trial_id]
        trial.status = TrialStatus.RUNNING
        self.tuner_ids.add(tuner_id)
        self.ongoing_trials[tuner_id] = trial
        self._save_trial(trial)
        self.save()
        self._display.on_trial_begin(trial)
        return trial

    # ------------------------------------------------------------------ records

    def _conclude(self, record: dict) -> None:
        """Settles a record whose run completed: real, predicted or diverged."""
        if record["diverged_at"] is not None:
            self._mark_failed(record)
        elif record["source"] == "real" and record["final"] is not None:
            record["status"] = "complete"
        elif record["phase"] == "explore" and None not in record["early"]:
            self._ensure_predictor()
            (predicted,) = self.predictor.predict(self._encoder().encode_many([(record["values"], record["early"])]))
            record.update(final=float(predicted), predicted=float(predicted), source="predicted", status="complete")
        else:
            raise errors.FatalError(
                f"trial {record['trial_id']} ended after {record['steps']} steps without the "
                "reports its phase needs; was the trial run by a PredictiveTuner?"
            )

    def _mark_failed(self, record: dict) -> None:
        record["status"] = "failed"
        record["source"] = "real"
        record["final"] = self._bounds[1] if self._bounds else None

    def _entries(self) -> list[tuple[dict, float]]:
        return [
            (r["values"], r["final"])
            for r in self._records.values()
            if r["status"] != "running" and r["final"] is not None
        ]

    def _allocate(self) -> None:
        """Algorithm 2.2 on every settled record, then fixing of values at their threshold."""
        low, high = self._bounds
        probabilities = allocate(self.grids, self._entries(), self._reward, low, high)
        self._probabilities = {name: [float(p) for p in ps] for name, ps in probabilities.items()}
        iteration = sum(r["status"] != "running" for r in self._explore_records())
        self._history.append({"iteration": iteration, "probabilities": copy.deepcopy(self._probabilities)})
        thresholds = resolve_thresholds(self.grids, self.thresholds)
        fixed_now = newly_fixed(self.grids, probabilities, thresholds, self._fixed, iteration)
        for name, fixed in fixed_now.items():
            if self.verbose:
                print(f"{name} fixed to {fixed.value} at iteration {iteration}", flush=True)
        self._fixed.update(fixed_now)

    def _sample(self, uniform: bool) -> dict | None:
        """A configuration not tried before, or None after MAX_COLLISIONS attempts."""
        for _ in range(MAX_COLLISIONS):
            hps = keras_tuner.HyperParameters()
            for hp in self.hyperparameters.space:
                hps.merge([hp])
                if not hps.is_active(hp):
                    continue
                grid = next(g for g in self.grids if g.name == hp.name)
                if not uniform and grid.name in self._fixed:
                    value = self._fixed[grid.name].value
                else:
                    p = None if uniform else self._probabilities[grid.name]
                    value = grid.values[int(self._rng.choice(len(grid), p=p))]
                hps.values[hp.name] = value
            if not self._duplicate(hps.values):
                return dict(hps.values)
        return None

    # ------------------------------------------------------------------ predictor

    def _encoder(self) -> FeatureEncoder:
        return FeatureEncoder(self.grids, self.budget.n_windows)

    def _training_set(self) -> tuple[np.ndarray, np.ndarray]:
        records = [self._records[t] for t in self._predictor_trials]
        X = self._encoder().encode_many([(r["values"], r["early"]) for r in records])
        return X, np.array([r["final"] for r in records], dtype=np.float64)

    def _fit_predictor(self) -> None:
        if self._predictor_params is not None:
            self.predictor.set_params(**self._predictor_params)
        self.predictor.fit(*self._training_set())
        self._predictor_fitted = True

    def _ensure_predictor(self) -> None:
        # After a reload the predictor is refitted from the stored records and parameters.
        if not self._predictor_fitted:
            self._fit_predictor()

    def _refit_with_real_results(self) -> None:
        self._predictor_trials = self._predictor_trials + [
            t for t in self._continued if self._records[t]["status"] == "complete" and t not in self._predictor_trials
        ]
        self._fit_predictor()
        waiting = [t for t in self._candidates if t not in self._continued]
        if waiting:
            rows = [(self._records[t]["values"], self._records[t]["early"]) for t in waiting]
            for trial_id, predicted in zip(waiting, self.predictor.predict(self._encoder().encode_many(rows)), strict=True):
                self._records[trial_id].update(predicted=float(predicted), final=float(predicted))

    def _prune_checkpoints(self) -> None:
        """Deletes early checkpoints of explored trials that can no longer be continued."""
        explored = [r for r in self._explore_records() if r["status"] == "complete" and r["source"] == "predicted"]
        explored.sort(key=lambda r: r["predicted"])
        keep = {r["trial_id"] for r in explored[: self._candidate_pool()]}
        if self._phase == "finalize":
            keep = set(self._candidates)
        for record in explored:
            if record["trial_id"] not in keep:
                training_state_path(self._get_trial_dir(record["trial_id"])).unlink(missing_ok=True)

    # ------------------------------------------------------------------ state

    def _settings(self) -> dict:
        return {
            "full_steps": self.budget.full_steps,
            "early_steps": self.budget.early_steps,
            "window": self.budget.window,
            "final_window": self.budget.final_window,
            "initial_trials": self.initial_trials,
            "reward": self.reward,
            "beta": self.beta,
            "objective": self.objective.name,
        }

    def get_state(self):
        state = super().get_state()
        # keras-tuner keeps these hashes in a set, whose order changes from process to process
        # (string hashing is salted): sorted, an unchanged search writes the same file again.
        state["tried_so_far"] = sorted(state["tried_so_far"])
        grids = self.grids if self.hyperparameters.space else []
        state["predictive"] = {
            "settings": self._settings(),
            # The values behind each probability vector, for reports that read this file.
            "grids": {grid.name: list(grid.values) for grid in grids},
            "thresholds": resolve_thresholds(grids, self.thresholds) if grids else {},
            "top_k": self.top_k,
            "phase": self._phase,
            "records": self._records,
            "bounds": list(self._bounds) if self._bounds else None,
            "probabilities": self._probabilities,
            "history": self._history,
            "fixed": {name: [fixed.value, fixed.iteration] for name, fixed in self._fixed.items()},
            "exhausted": self._exhausted,
            "candidates": self._candidates,
            "continued": self._continued,
            "predictor_trials": self._predictor_trials,
            "predictor_params": self._predictor_params,
            "predictor_report": self._predictor_report,
            "rng": self._rng.bit_generator.state,
        }
        return state

    def set_state(self, state):
        super().set_state(state)
        saved = state["predictive"]
        current = self._settings()
        changed = [
            f"{key}: saved {saved['settings'].get(key)!r}, now {current[key]!r}"
            for key in _FIXED_SETTINGS
            if saved["settings"].get(key) != current[key]
        ]
        if changed:
            raise errors.FatalValueError(
                f"the project in {self._project_dir} was searched with other settings ("
                + "; ".join(changed)
                + "). Continue it with the same settings, or start over with a new "
                "project_name or overwrite=True"
            )
        self._phase = saved["phase"]
        self._records = saved["records"]
        self._bounds = tuple(saved["bounds"]) if saved["bounds"] else None
        self._probabilities = saved["probabilities"]
        self._history = saved["history"]
        self._fixed = {name: FixedValue(value, iteration) for name, (value, iteration) in saved["fixed"].items()}
        self._exhausted = saved["exhausted"]
        self._candidates = saved["candidates"]
        self._continued = saved["continued"]
        self._predictor_trials = saved["predictor_trials"]
        self._predictor_params = saved["predictor_params"]
        self._predictor_report = saved["predictor_report"]
        self._predictor_fitted = False
        self._rng.bit_generator.state = saved["rng"]

    def save(self):
        write_json(self._get_oracle_fname(), self.get_state())

    def _save_trial(self, trial):
        write_json(os.path.join(self._get_trial_dir(trial.trial_id), "trial.json"), trial.get_state())

    def reload(self):
        # keras-tuner's own reload, with one clear error for a file a kill or a full disk
        # left unreadable, instead of a bare JSONDecodeError.
        recovery = (
            "Restore it from a backup, or start over with overwrite=True (which discards "
            "this search)"
        )
        for fname in sorted(glob.glob(os.path.join(self._project_dir, "trial_*", "trial.json"))):
            trial = trial_module.Trial.from_state(read_json(fname, recovery))
            self.trials[trial.trial_id] = trial
        state = read_json(self._get_oracle_fname(), recovery)
        if "predictive" not in state:
            raise errors.FatalValueError(
                f"{self._project_dir} holds a search by another keras-tuner oracle; use a new "
                "project_name or overwrite=True"
            )
        self.set_state(state)
        # Trials that were running when the search stopped run again (and resume from
        # their last checkpoint). keras-tuner saves a trial that just ended while it is still
        # listed as ongoing; a kill at that moment must not run a finished trial again.
        self._retry_queue.extend(
            trial.trial_id
            for trial in self.ongoing_trials.values()
            if self._records.get(trial.trial_id, {}).get("status", "running") == "running"
        )
        self.ongoing_trials = {}

"""PredictiveOracle: the paper's search method as a keras-tuner Oracle.

Four phases (``oracle.phase``):

- ``"initial"`` (dataset generation): ``initial_trials`` distinct configurations, sampled
  uniformly, are trained to ``full_steps``;
- between phases 1 and 3 the performance predictor is tuned once and fitted on them, and the
  probabilities are allocated;
- ``"explore"``: Algorithms 2.1/2.2: each trial samples a configuration from the current
  probabilities (fixed values stay fixed), trains to ``early_steps`` only and gets a predicted
  final loss; the probabilities are recomputed after every record, and a value whose
  probability reaches its threshold is fixed. It ends after ``max_iterations`` trials, when
  every hyperparameter is fixed, or when no untried configuration is left
  (``oracle.exploration_end`` says which);
- ``"finalize"``: the ``top_k`` explored configurations with the lowest predicted loss are
  continued: each gets a new trial that points at its parent (``values["tuner/trial_id"]``,
  as keras-tuner's Hyperband does), resumes from the parent's early checkpoint and trains on
  to ``full_steps``;
- ``"done"``. Raising ``max_iterations`` and rerunning takes a finished search back to
  exploration (the paper's 400 → 800 of Table 5).

The tuner reports through ``update_trial``: the objective's mean over each early window at
steps ``window, 2·window, …, early_steps``, the final mean at ``full_steps``, a non-finite
value at the step where training diverged, and heartbeats in between. The oracle answers with
a trial whose status is ``"STOPPED"`` when the trial must stop (an exploration trial at
``early_steps``).

Records are :class:`~kt_predictive.records.TrialRecord` objects, each saved in its trial's
folder (``record.json``) when it changes, so a report costs the same however large the search;
the decisions (phase, probabilities, fixed values, the random generator, the predictor's
tuned parameters) are in ``oracle.json``, written when a trial starts or settles. All writes
are atomic, so a killed search continues where it stopped.
"""

from __future__ import annotations

import copy
import dataclasses
import glob
import math
import os
from collections.abc import Mapping

import keras_tuner
import numpy as np
from keras_tuner import errors
from keras_tuner.engine import trial as trial_module

from kt_predictive.allocation import (
    AllocationRule,
    FixedValue,
    newly_fixed,
    resolve_thresholds,
    value_counts,
)
from kt_predictive.budget import StepBudget
from kt_predictive.checkpoint import remove_training_states
from kt_predictive.liveness import WorkerLiveness
from kt_predictive.predictor import FeatureEncoder, HybridPredictor
from kt_predictive.progress import Position, SearchProgress, progress_line
from kt_predictive.records import (
    PARENT_VALUE,
    RECORD_FILE,
    STATE_VERSION,
    RecordBook,
    TrialRecord,
    configuration,
    training_steps,
)
from kt_predictive.reporting import TRAIN_SECONDS
from kt_predictive.schedule import FINAL_SHARE, PAPER_SIZES, PAPER_STEPS, size_phases
from kt_predictive.space import ValueGrid, space_size, value_grids
from kt_predictive.storage import read_json, write_json

TrialStatus = trial_module.TrialStatus

# The metric that marks an explored trial's score as a prediction (issue: users reading
# oracle.trials could not tell a predicted score from a measured one).
PREDICTED_METRIC = "predicted_final"

# Attempts at drawing a configuration not tried before, before the space counts as exhausted
# (keras-tuner's own oracles use 20).
MAX_COLLISIONS = 100

# With refit_predictor, the predictions of explored trials change during phase 4, so twice
# top_k candidates keep their early checkpoints to be re-ranked; otherwise top_k suffice.
REFIT_CANDIDATE_FACTOR = 2

# Why exploration ended (oracle.exploration_end).
END_MAX_ITERATIONS = "max_iterations reached"
END_ALL_FIXED = "every hyperparameter fixed"
END_EXHAUSTED = "no untried configuration left"

# Settings that give recorded results their meaning: a project can only be continued with
# the same ones (max_iterations and top_k may grow: that extends the search).
_FIXED_SETTINGS = (
    "full_steps",
    "early_steps",
    "window",
    "final_window",
    "initial_trials",
    "allocation",
    "objective",
)


def report_test_size(n_networks: int) -> int:
    """Test networks per split of the predictor report made from ``n_networks`` phase-1 trials.

    A fifth of them, as the paper's 20 of 100, capped at 20; at least two, as R² needs.
    """
    return max(2, min(20, n_networks // 5))


class PredictiveOracle(keras_tuner.Oracle):
    """Predictor-guided search with probability allocation (Lombardi et al.).

    The default allocation (:meth:`AllocationRule.evidence`) keeps the paper's algorithm and
    exponential reward but normalises losses by rank, gives every value a prior and fixes a
    value only on evidence, so small searches explore instead of fixing every value at
    iteration 0; :meth:`paper` reproduces the paper exactly.

    Args:
        objective: The training metric to minimise (default ``"loss"``). A trial's score is
            the mean of this metric over its last ``final_window`` steps, not its best value.
        search_budget: Total training in full-training equivalents (networks trained for
            ``full_steps``); sizes ``initial_trials``, ``max_iterations`` and ``top_k``
            (:func:`~kt_predictive.schedule.size_phases`). Give either this or the three counts.
        final_share: With ``search_budget``, the share of it that continues candidates.
        initial_trials: Configurations trained to the full budget in phase 1 (paper: 100).
        max_iterations: Exploration trials in phase 3 at most (paper: 400, then 800).
        top_k: Explored configurations trained on to the full budget in phase 4 (paper: 20).
        full_steps: Full training budget in optimizer steps (paper: 40000).
        early_steps: Budget of an exploration trial (paper: 6000).
        window: Steps per early window whose mean loss feeds the predictor (paper: 1000).
        final_window: Steps at the end whose mean loss is the trial's score (paper: 500).
        allocation: An :class:`AllocationRule` (default :meth:`AllocationRule.evidence`).
        reward, beta: Shorthands that replace the allocation rule's reward (``"exp"`` or
            ``"linear"``) and beta.
        thresholds: Probability at which a value gets fixed: ``None`` for the rule's default,
            one float for all hyperparameters, or ``{name: float}`` for some.
        predictor: A scikit-learn regressor on :class:`FeatureEncoder` rows (default
            :class:`HybridPredictor`). If it has ``tune``, it is tuned once on 80% of the
            phase-1 trials (``tuning_trials`` Optuna trials per model: ~1 s each for 100
            networks on one core, while every worker waits); if it has ``evaluate_splits``,
            ``predictor_report`` evaluates it on demand.
        refit_predictor: Refit the predictor with every real result of phase 4 and re-rank
            the remaining candidates (default; the paper's future work).
        tuning_trials: Optuna trials per model when tuning the predictor.
        min_tuning_networks: Fewer phase-1 networks than this are too few to tune the
            predictor by 5-fold cross-validation (folds of one or two networks measure
            noise); it keeps its defaults then. The paper tuned on 80.
        report_splits: Random splits of the predictor report (the paper's Table 2 uses 1000).
        worker_timeout: Distributed searches: seconds without news of a running trial after
            which its worker counts as dead and the trial goes to another worker, resuming
            from its last checkpoint. Tuners send news at every checkpoint and at least every
            ``heartbeat_seconds`` (PredictiveTuner's argument, default 30 s): make it longer
            than that. ``None`` (default) waits forever, as keras-tuner does.
        hyperparameters: Optional search space, as for every keras-tuner oracle.
        seed: Random seed.
        max_retries_per_trial, max_consecutive_failed_trials, allow_new_entries,
        tune_new_entries: as for every keras-tuner oracle.

    Example:
        >>> oracle = PredictiveOracle(search_budget=30, full_steps=400, early_steps=80,
        ...                           window=20, final_window=80, seed=1)
        >>> (oracle.initial_trials, oracle.max_iterations, oracle.top_k)
        (6, 44, 19)
    """

    def __init__(
        self,
        objective: str | keras_tuner.Objective = "loss",
        search_budget: float | None = None,
        final_share: float = FINAL_SHARE,
        initial_trials: int | None = None,
        max_iterations: int | None = None,
        top_k: int | None = None,
        full_steps: int = 40000,
        early_steps: int = 6000,
        window: int = 1000,
        final_window: int = 500,
        allocation: AllocationRule | None = None,
        reward: str | None = None,
        beta: float | None = None,
        thresholds: float | Mapping[str, float] | None = None,
        predictor=None,
        refit_predictor: bool = True,
        tuning_trials: int = 30,
        min_tuning_networks: int = 20,
        report_splits: int = 100,
        worker_timeout: float | None = None,
        hyperparameters: keras_tuner.HyperParameters | None = None,
        seed: int | None = None,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int = 3,
        allow_new_entries: bool = True,
        tune_new_entries: bool = True,
    ):
        self.budget = StepBudget(full_steps, early_steps, window, final_window)
        counts = (initial_trials, max_iterations, top_k)
        if search_budget is not None:
            if any(c is not None for c in counts):
                raise ValueError(
                    "give either search_budget (the oracle sizes its phases) or initial_trials, "
                    "max_iterations and top_k, not both"
                )
            sizes = size_phases(search_budget, self.budget, final_share=final_share)
            initial_trials, max_iterations, top_k = (
                sizes.initial_trials,
                sizes.max_iterations,
                sizes.top_k,
            )
        elif None in counts:
            defaults = PAPER_SIZES
            initial_trials = defaults.initial_trials if initial_trials is None else initial_trials
            max_iterations = defaults.max_iterations if max_iterations is None else max_iterations
            top_k = defaults.top_k if top_k is None else top_k
        for name, value, minimum in (
            ("initial_trials", initial_trials, 2),
            ("max_iterations", max_iterations, 0),
            ("top_k", top_k, 0),
            ("tuning_trials", tuning_trials, 1),
            ("min_tuning_networks", min_tuning_networks, 2),
            ("report_splits", report_splits, 0),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum} (got {value!r})")
        rule = allocation if allocation is not None else AllocationRule.evidence()
        if reward is not None or beta is not None:
            rule = dataclasses.replace(
                rule,
                reward=reward if reward is not None else rule.reward,
                beta=float(beta) if beta is not None else rule.beta,
            )
        if isinstance(objective, list | tuple):
            raise ValueError("PredictiveOracle needs a single objective, e.g. objective='loss'")
        super().__init__(
            objective=objective,
            max_trials=None,  # the phases decide; continuations are trials of their own
            hyperparameters=hyperparameters,
            seed=seed,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
            allow_new_entries=allow_new_entries,
            tune_new_entries=tune_new_entries,
        )
        # Records keep "lower is better" values: a maximised objective (accuracy) is
        # negated there, and trial scores show it as measured.
        self._sign = 1.0 if self.objective.direction == "min" else -1.0
        self.initial_trials = initial_trials
        self.max_iterations = max_iterations
        self.top_k = top_k
        self.allocation = rule
        self.thresholds = thresholds
        # The default predictor learns the improvement over the last early window: with few
        # phase-1 networks it then ranks like the early loss itself (held-out seeds:
        # bench/RESULTS.md, section default-selection); paper() uses the paper's target.
        self.predictor = (
            predictor
            if predictor is not None
            else HybridPredictor(random_state=self.seed, target="improvement")
        )
        self.refit_predictor = refit_predictor
        self.tuning_trials = tuning_trials
        self.min_tuning_networks = min_tuning_networks
        self.report_splits = report_splits
        self.liveness = WorkerLiveness(worker_timeout)

        self._phase = "initial"
        self._records = RecordBook()
        self._bounds: tuple[float, float] | None = None
        self._probabilities: dict[str, list[float]] = {}
        self._history: list[dict] = []
        self._fixed: dict[str, FixedValue] = {}
        self._exploration_end: str | None = None
        self._targets: list[str] = []
        self._pruned: set[str] = set()  # explored trials whose early checkpoint was deleted
        self._predictor_trials: list[str] = []
        self._predictor_params: dict | None = None
        self._predictor_report: dict | None = None
        self._predictor_fitted = False
        self._rng = np.random.default_rng(self.seed)
        self._grids: list[ValueGrid] | None = None
        self._display = SearchProgress()

    @classmethod
    def paper(cls, reward: str = "exp", **kwargs) -> PredictiveOracle:
        """The paper's schedule exactly: 100 / 400 / 20 networks, 40000 / 6000 / 1000 / 500
        steps, Algorithm 2.2 with s_i = 2/|V_i| and m, M from phase 1, HYB fitted on phase 1
        only, the winner among the finalized candidates (:meth:`best_finalized_trial`).

        Keyword arguments override any of it (e.g. ``max_iterations=800`` for Table 5).
        """
        settings = {
            **vars(PAPER_SIZES),
            **{
                f: getattr(PAPER_STEPS, f)
                for f in ("full_steps", "early_steps", "window", "final_window")
            },
            "allocation": AllocationRule.paper(reward),
            "refit_predictor": False,
            "predictor": HybridPredictor(random_state=kwargs.get("seed"), target="final"),
            **kwargs,
        }
        return cls(**settings)

    # ------------------------------------------------------------------ inspection

    @property
    def phase(self) -> str:
        """``"initial"``, ``"explore"``, ``"finalize"`` or ``"done"``."""
        return self._phase

    @property
    def worker_timeout(self) -> float | None:
        return self.liveness.timeout

    @property
    def exploration_end(self) -> str | None:
        """Why exploration ended (max_iterations, every value fixed, space exhausted)."""
        return self._exploration_end

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

    def records(self) -> list[TrialRecord]:
        """Every trial's :class:`TrialRecord`, in creation order (copies)."""
        return [copy.deepcopy(r) for r in self._records]

    @property
    def predictor_report(self) -> dict | None:
        """MAE, its std and R² of each predictor part over random splits of phase 1.

        Computed on first access (outside the search's critical path), then kept.
        """
        if self._predictor_report is None and self._predictor_trials:
            X, y = self._training_set(self._initial_predictor_trials())
            test_size = report_test_size(len(y))
            if (
                hasattr(self.predictor, "evaluate_splits")
                and self.report_splits
                and len(y) >= test_size + 3
            ):
                self._predictor_report = self.predictor.evaluate_splits(
                    X, y, n_splits=self.report_splits, test_size=test_size
                )
        return copy.deepcopy(self._predictor_report)

    @property
    def loss_bounds(self) -> tuple[float, float] | None:
        """(m, M): the lowest and highest final losses of phase 1."""
        return self._bounds

    @property
    def grids(self) -> list[ValueGrid]:
        if self._grids is None:
            self._grids = value_grids(self.hyperparameters)
            resolve_thresholds(self._grids, self.thresholds, self.allocation)
        return self._grids

    def training_steps(self) -> int:
        """Optimizer steps this search trained, over all its trials (a continuation's own
        steps only, not its parent's again)."""
        return training_steps(self._records)

    def best_finalized_trial(self):
        """The continued candidate with the lowest real final loss: the paper's winner."""
        finalized = [r for r in self._records.real() if r.role == "continuation"]
        return self.trials[finalized[0].trial_id] if finalized else None

    def get_best_trials(self, num_trials=1):
        """The best trials by **real** final loss, from any phase (predictions never count)."""
        return [self.trials[r.trial_id] for r in self._records.real()[:num_trials]]

    # ------------------------------------------------------------------ keras-tuner API

    def update_space(self, hyperparameters):
        if self._grids is not None and hyperparameters.space:
            # keras-tuner keeps an existing hyperparameter's old values silently; a search
            # whose records and probabilities refer to the old grid cannot continue on a new one.
            known = {g.name: g for g in self._grids}
            incoming = [
                g for g in value_grids(hyperparameters) if g.name in known and g != known[g.name]
            ]
            if incoming:
                raise errors.FatalValueError(
                    "the search space changed: "
                    + _describe_change(
                        self._grids,
                        [
                            *(known[n] for n in known if n not in {g.name for g in incoming}),
                            *incoming,
                        ],
                    )
                    + "; continue with the same space, or start over with a new project_name or "
                    "overwrite=True"
                )
        super().update_space(hyperparameters)
        if self.hyperparameters.space:
            grids = value_grids(self.hyperparameters)
            # Hyperparameters declared in HyperModel.fit() appear only once a trial ran
            # (keras-tuner's own behaviour); that is fine while phase 1 samples uniformly,
            # but the predictor and the probabilities need a settled space.
            if self._phase != "initial" and self._grids is not None and grids != self._grids:
                raise errors.FatalValueError(
                    "the search space changed after phase 1: "
                    + _describe_change(self._grids, grids)
                    + "; declare every hyperparameter before the first trial ends, or start "
                    "over with a new project_name or overwrite=True"
                )
            resolve_thresholds(grids, self.thresholds, self.allocation)
            if space_size(grids) < self.initial_trials:
                raise errors.FatalValueError(
                    f"the search space has {space_size(grids)} configurations, fewer than "
                    f"initial_trials={self.initial_trials}; lower initial_trials or widen the space"
                )
            self._grids = grids

    @keras_tuner.synchronized
    def create_trial(self, tuner_id):
        self.liveness.heard_from_worker(tuner_id)
        self._requeue_silent_trials()
        if self._phase == "done":
            self.tuner_ids -= self.liveness.stale_workers(self.tuner_ids - {tuner_id})
        trial = super().create_trial(tuner_id)
        if trial.status == TrialStatus.RUNNING:
            self.liveness.heard_about_trial(trial.trial_id)
        elif trial.status == TrialStatus.IDLE and not self.ongoing_trials and not self._retry_queue:
            # Waiting, with nothing running anywhere, would wait forever.
            raise errors.FatalError(
                f"the search cannot go on: phase {self._phase!r}, no trial running or queued, "
                f"and no new trial to start ({len(self._records)} records; exploration "
                f"end: {self._exploration_end}). This is a bug; please report it with "
                f"{self._get_oracle_fname()}"
            )
        return trial

    def populate_space(self, trial_id):
        self._advance()
        if self._phase == "initial":
            if len(self._records.by_role("initial")) >= self.initial_trials:
                return {"status": TrialStatus.IDLE}  # the last phase-1 trials are running
            values = self._sample(uniform=True)
            if values is None:
                raise errors.FatalValueError(
                    f"could not draw a configuration not tried before after {MAX_COLLISIONS} "
                    "attempts; the search space is too small for initial_trials="
                    f"{self.initial_trials}"
                )
            self._new_record(trial_id, values, "initial")
            return {"status": TrialStatus.RUNNING, "values": values}
        if self._phase == "explore":
            if self._exploration_end is None:
                values = self._sample(uniform=False)
                if values is None and self.allocation.relax_fixed:
                    values = self._sample(uniform=False, keep_fixed=False)
                if values is not None:
                    iteration = len(self._records.by_role("explore")) + 1
                    self._new_record(trial_id, values, "explore", iteration=iteration)
                    return {"status": TrialStatus.RUNNING, "values": values}
                self._end_exploration(END_EXHAUSTED)
                self._advance()
                if self._phase != "explore":
                    return self.populate_space(trial_id)  # phase 4 can start right away
            return {"status": TrialStatus.IDLE}  # waiting for running trials
        if self._phase == "finalize":
            parent = self._next_continuation()
            if parent is None:
                return {"status": TrialStatus.IDLE}
            record = self._new_record(trial_id, parent.values, "continuation", parent=parent)
            return {
                "status": TrialStatus.RUNNING,
                "values": {**record.values, PARENT_VALUE: parent.trial_id},
            }
        return {"status": TrialStatus.STOPPED}

    def _new_record(
        self, trial_id, values, role, iteration=None, parent: TrialRecord | None = None
    ):
        record = TrialRecord(
            trial_id=trial_id,
            values=dict(values),
            role=role,
            early=list(parent.early) if parent else [None] * self.budget.n_windows,
            predicted=parent.predicted if parent else None,
            iteration=iteration,
            parent_id=parent.trial_id if parent else None,
        )
        # Written before keras-tuner saves oracle.json, which lists it.
        self._save_record(record)
        return self._records.add(record)

    def _requeue_silent_trials(self) -> None:
        """Sends the trials of workers silent for longer than worker_timeout to others."""
        for tuner_id, trial in list(self.ongoing_trials.items()):
            if self.liveness.trial_is_silent(trial.trial_id):
                self._display.say(
                    f"worker {tuner_id} sent nothing about trial {trial.trial_id} for "
                    f"{self.liveness.silent_for(trial.trial_id):.0f} s (worker_timeout "
                    f"{self.worker_timeout:g} s); the trial goes to another worker"
                )
                del self.ongoing_trials[tuner_id]
                self.tuner_ids.discard(tuner_id)
                self._retry_queue.append(trial.trial_id)
                self.save()

    @keras_tuner.synchronized
    def update_trial(self, trial_id, metrics, step=0):
        workers = [t for t, ongoing in self.ongoing_trials.items() if ongoing.trial_id == trial_id]
        self.liveness.heard_about_trial(trial_id, workers)
        record = self._records.get(trial_id)
        if record is None:
            return super().update_trial(trial_id, metrics, step)
        if self.objective.name not in metrics:
            raise errors.FatalValueError(
                f"trial {trial_id} reported {sorted(metrics)} without the objective "
                f"{self.objective.name!r}"
            )
        value, step = self._sign * float(metrics[self.objective.name]), int(step)
        is_window_end = step <= self.budget.early_steps and step % self.budget.window == 0
        heartbeat = math.isfinite(value) and not is_window_end and step != self.budget.full_steps
        trial = (
            self.trials[trial_id] if heartbeat else super().update_trial(trial_id, metrics, step)
        )
        stop = False
        if not math.isfinite(value):
            record.diverged_at = step
            stop = True
        elif step == self.budget.full_steps:
            record.real_final = value
        elif is_window_end:
            record.early[step // self.budget.window - 1] = value
            stop = record.role == "explore" and step >= self.budget.early_steps
        record.steps = max(record.steps, step)
        if TRAIN_SECONDS in metrics:
            record.seconds = float(metrics[TRAIN_SECONDS])
        self._save_record(record)
        if stop:
            trial = copy.copy(trial)
            trial.status = TrialStatus.STOPPED
        return trial

    @keras_tuner.synchronized
    def end_trial(self, trial):
        record = self._records.get(trial.trial_id)
        if trial.status == TrialStatus.STOPPED:
            # A driver that ends a trial with the object update_trial returned: the oracle
            # stopped it, so it completed its part (keras-tuner only retries INVALID trials).
            trial = copy.copy(trial)
            trial.status = TrialStatus.COMPLETED
        if record is not None and trial.status == TrialStatus.COMPLETED:
            self._conclude(record)
        try:
            super().end_trial(trial)
        except BaseException:
            # keras-tuner raises here when too many trials failed in a row; the record of
            # the last one is settled and shown all the same.
            if record is not None and self._settle_failure(record, self.trials[trial.trial_id]):
                self._show(record)
            raise
        if record is None:
            return
        self._settle_failure(record, self.trials[trial.trial_id])
        ended = self.trials[trial.trial_id]
        # keras-tuner filled in the values of hyperparameters first declared during the run.
        record.values = configuration(ended.hyperparameters.values)
        if record.running:
            self._save_record(record)
            return  # sent for retry
        if record.role == "explore":
            self._allocate()
            self._prune_checkpoints()
        elif record.role == "continuation":
            if self.refit_predictor and record.is_real:
                self._refit_with_real_results()
            remove_training_states([self._get_trial_dir(record.parent_id)])
        self._show(record)
        self._save_record(record)
        self._advance()
        self._save_trial(ended)
        self.save()
        self.liveness.oracle_was_busy(t.trial_id for t in self.ongoing_trials.values())

    def _settle_failure(self, record: TrialRecord, ended) -> bool:
        """Records a trial keras-tuner failed for good; returns whether it did."""
        if ended.status != TrialStatus.FAILED or not record.running:
            return False
        record.status = "failed"
        record.failure = record.failure or _first_line(ended.message)
        ended.score = self._sign * math.inf
        self._save_record(record)
        return True

    def _show(self, record: TrialRecord) -> None:
        line = progress_line(
            record,
            self._position(record),
            self.objective.name,
            self._best_real(),
            self.fixed_values,
            sign=self._sign,
        )
        self._display.trial_settled(line)

    def score_trial(self, trial):
        record = self._records.get(trial.trial_id)
        if record is None:
            return super().score_trial(trial)
        if record.is_real:
            trial.score = self._sign * record.real_final
        elif record.is_predicted_only:
            trial.score = self._sign * record.predicted
            if not trial.metrics.exists(PREDICTED_METRIC):
                trial.metrics.register(PREDICTED_METRIC, direction=self.objective.direction)
            trial.metrics.update(PREDICTED_METRIC, trial.score, step=record.steps)
        else:
            trial.score = self._sign * math.inf
        trial.best_step = record.steps

    # ------------------------------------------------------------------ phases

    def _best_real(self) -> float | None:
        real = self._records.real()
        return real[0].real_final if real else None

    def _position(self, record: TrialRecord) -> Position:
        if record.role == "initial":
            return Position("phase 1", len(self._records.by_role("initial")), self.initial_trials)
        if record.role == "explore":
            return Position("explore", record.iteration, self.max_iterations)
        return Position("finalize", len(self._records.by_role("continuation")), self.top_k)

    def _exploration_over(self) -> bool:
        if self._exploration_end is None:
            if len(self._records.by_role("explore")) >= self.max_iterations:
                self._end_exploration(END_MAX_ITERATIONS)
            elif self.grids and all(grid.name in self._fixed for grid in self.grids):
                self._end_exploration(END_ALL_FIXED)
        return self._exploration_end is not None

    def _end_exploration(self, reason: str) -> None:
        self._exploration_end = reason
        explored = len(self._records.by_role("explore"))
        self._display.say(f"exploration ends after {explored} iterations: {reason}")

    def _advance(self) -> None:
        """Moves to the next phase when the current one has finished."""
        if (
            self._phase == "initial"
            and len(self._records.by_role("initial")) >= self.initial_trials
            and not self._records.running()
        ):
            self._start_exploration()
        if self._phase == "explore" and self._exploration_over() and not self._records.running():
            self._start_finalize()
        if (
            self._phase == "finalize"
            and self._next_continuation() is None
            and not self._records.running()
        ):
            self._phase = "done"
            self._prune_checkpoints()
            self.save()

    def _initial_predictor_trials(self) -> list[str]:
        return [
            r.trial_id for r in self._records.by_role("initial") if r.is_real and r.early_complete
        ]

    def _start_exploration(self) -> None:
        """Phase 2: m and M, the predictor (tuned once), then the first allocation."""
        initial = self._records.by_role("initial")
        finals = sorted({r.real_final for r in initial if r.is_real})
        if len(finals) < 2:
            failed = sum(r.failed for r in initial)
            raise errors.FatalError(
                f"phase 1 produced {len(finals)} distinct finite final losses ({failed} of "
                f"{len(initial)} trials failed or diverged); the reward needs the lowest and "
                "highest to differ. Increase initial_trials or narrow the search space to "
                "values that train (e.g. smaller learning rates)"
            )
        self._bounds = (finals[0], finals[-1])
        # Failed trials never train the predictor: their final loss is unknown.
        self._predictor_trials = self._initial_predictor_trials()
        X, y = self._training_set(self._predictor_trials)
        if len(y) < 2:
            raise errors.FatalError(
                f"only {len(y)} phase-1 trials have a complete early curve; the predictor needs "
                "at least 2. Increase initial_trials"
            )
        if hasattr(self.predictor, "tune") and len(y) < self.min_tuning_networks:
            self._display.say(
                f"phase 2: {len(y)} phase-1 networks are too few to tune the predictor by "
                f"cross-validation (min_tuning_networks={self.min_tuning_networks}); it keeps "
                "its default settings"
            )
        elif hasattr(self.predictor, "tune"):
            self._display.say(
                f"phase 2: tuning the predictor on {len(y)} phase-1 networks "
                f"({self.tuning_trials} Optuna trials per model; workers wait meanwhile)"
            )
            order = self._rng.permutation(len(y))
            train = order[: max(2, round(0.8 * len(y)))]
            self.predictor.tune(X[train], y[train], n_trials=self.tuning_trials)
            self._predictor_params = self.predictor.get_params(deep=False)
        self._fit_predictor()
        self._phase = "explore"
        self._allocate()
        self.save()

    def _ranked_explored(self) -> list[TrialRecord]:
        """Explored configurations known by a prediction, best predicted first."""
        explored = [
            r
            for r in self._records.by_role("explore")
            if r.status == "complete" and r.predicted is not None
        ]
        return sorted(explored, key=lambda r: r.predicted)

    def _candidate_pool(self) -> int:
        return self.top_k * (REFIT_CANDIDATE_FACTOR if self.refit_predictor else 1)

    def _start_finalize(self) -> None:
        """Phase 4 begins: the best-predicted explored configurations become the targets."""
        # A search extended after it was done deleted the checkpoints of its old candidates
        # that were never continued; those can no longer be targets.
        resumable = [
            r
            for r in self._ranked_explored()
            if self._records.continuation_of(r.trial_id) is not None
            or r.trial_id not in self._pruned
        ]
        self._targets = [r.trial_id for r in resumable[: self._candidate_pool()]]
        self._phase = "finalize"
        self._prune_checkpoints()
        self.save()

    def _next_continuation(self) -> TrialRecord | None:
        """The best-predicted target not continued yet, until top_k targets are continued.

        With refit_predictor the targets' predictions change as real results arrive, so the
        order is decided anew each time, among the targets chosen when phase 4 began.
        """
        targets = [self._records[t] for t in self._targets]
        waiting = [r for r in targets if self._records.continuation_of(r.trial_id) is None]
        if not waiting or len(targets) - len(waiting) >= self.top_k:
            return None
        return min(waiting, key=lambda r: r.predicted)

    # ------------------------------------------------------------------ records

    def _conclude(self, record: TrialRecord) -> None:
        """Settles a record whose run completed: real, predicted or diverged."""
        if record.diverged_at is not None:
            record.status = "failed"
            record.failure = f"diverged at step {record.diverged_at}"
        elif record.real_final is not None:
            record.status = "complete"
        elif record.role == "explore" and record.early_complete:
            self._ensure_predictor()
            (predicted,) = self.predictor.predict(
                self._encoder().encode_many([(record.values, record.early)])
            )
            record.predicted = float(predicted)
            record.status = "complete"
        else:
            record.status = "failed"
            record.failure = (
                f"ended after {record.steps} steps without the reports its phase needs (was it "
                "run by a PredictiveTuner, or did its data run out?)"
            )

    def _entries(self) -> list[tuple[dict, float]]:
        """(configuration, loss) of every settled phase-1 and explored record.

        An explored configuration that was continued counts with its measured loss; a failed
        one with the worst loss (M for the paper's range normalisation, the worst rank else).
        """
        worst = self._bounds[1] if self.allocation.normalisation == "range" else math.inf
        entries = []
        for record in self._records:
            if record.role == "continuation" or record.running:
                continue
            continuation = self._records.continuation_of(record.trial_id)
            if continuation is not None and continuation.is_real:
                loss = continuation.real_final
            else:
                loss = record.loss() if not record.failed else worst
            entries.append((record.values, loss if loss is not None else worst))
        return entries

    def _allocate(self) -> None:
        """Algorithm 2.2 on every settled record, then fixing of values at their threshold."""
        low, high = self._bounds
        entries = self._entries()
        probabilities = self.allocation.probabilities(self.grids, entries, low, high)
        self._probabilities = {name: [float(p) for p in ps] for name, ps in probabilities.items()}
        iteration = sum(r.settled for r in self._records.by_role("explore"))
        self._history.append(
            {"iteration": iteration, "probabilities": copy.deepcopy(self._probabilities)}
        )
        thresholds = resolve_thresholds(self.grids, self.thresholds, self.allocation)
        fixed_now = newly_fixed(
            self.grids,
            probabilities,
            thresholds,
            self._fixed,
            iteration,
            counts=value_counts(self.grids, entries),
            min_evidence=self.allocation.min_evidence,
        )
        for name, fixed in fixed_now.items():
            self._display.say(f"{name} fixed to {fixed.value} at iteration {iteration}")
        self._fixed.update(fixed_now)

    def _sample(self, uniform: bool, keep_fixed: bool = True) -> dict | None:
        """A configuration not tried before, or None after MAX_COLLISIONS attempts.

        ``uniform``: every value equally likely (phase 1); else from the probabilities, with
        fixed values kept unless ``keep_fixed`` is False.
        """
        grids = {g.name: g for g in self.grids}
        for _ in range(MAX_COLLISIONS):
            hps = keras_tuner.HyperParameters()
            for hp in self.hyperparameters.space:
                hps.merge([hp])
                if not hps.is_active(hp):
                    continue
                grid = grids[hp.name]
                if not uniform and keep_fixed and grid.name in self._fixed:
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

    def _training_set(self, trial_ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
        records = [self._records[t] for t in trial_ids]
        X = self._encoder().encode_many([(r.values, r.early) for r in records])
        return X, np.array([r.real_final for r in records], dtype=np.float64)

    def _fit_predictor(self) -> None:
        if self._predictor_params is not None:
            self.predictor.set_params(**self._predictor_params)
        self.predictor.fit(*self._training_set(self._predictor_trials))
        self._predictor_fitted = True

    def _ensure_predictor(self) -> None:
        # After a reload the predictor is refitted from the stored records and parameters.
        if not self._predictor_fitted:
            self._fit_predictor()

    def _refit_with_real_results(self) -> None:
        """Adds every measured continuation to the predictor's data and re-predicts the
        explored configurations not continued yet."""
        continued = [
            r.trial_id
            for r in self._records.by_role("continuation")
            if r.is_real and r.early_complete
        ]
        self._predictor_trials = self._predictor_trials + [
            t for t in continued if t not in self._predictor_trials
        ]
        self._fit_predictor()
        waiting = [
            r
            for r in self._records.by_role("explore")
            if r.status == "complete" and self._records.continuation_of(r.trial_id) is None
        ]
        if waiting:
            rows = [(r.values, r.early) for r in waiting]
            for record, predicted in zip(
                waiting, self.predictor.predict(self._encoder().encode_many(rows)), strict=True
            ):
                record.predicted = float(predicted)
                self._save_record(record)

    def checkpoints_needed(self) -> set[str]:
        """Explored trials whose early checkpoint may still be continued."""
        if self._phase == "done":
            return set()
        if self._phase == "explore":
            pool = [r.trial_id for r in self._ranked_explored()[: self._candidate_pool()]]
        elif self._next_continuation() is not None:
            pool = self._targets
        else:
            pool = []  # every target has started: only running continuations need a parent
        keep = {t for t in pool if self._records.continuation_of(t) is None}
        keep |= {r.parent_id for r in self._records.running("continuation")}
        return keep

    def _prune_checkpoints(self) -> None:
        """Deletes the early checkpoints of explored trials that can no longer be continued."""
        keep = self.checkpoints_needed()
        doomed = [
            r.trial_id
            for r in self._records.by_role("explore")
            if r.settled and r.trial_id not in keep and r.trial_id not in self._pruned
        ]
        remove_training_states(self._get_trial_dir(t) for t in doomed)
        self._pruned.update(doomed)

    # ------------------------------------------------------------------ state

    def _settings(self) -> dict:
        return {
            "full_steps": self.budget.full_steps,
            "early_steps": self.budget.early_steps,
            "window": self.budget.window,
            "final_window": self.budget.final_window,
            "initial_trials": self.initial_trials,
            "allocation": self.allocation.to_json(),
            "objective": self.objective.name,
        }

    def get_state(self):
        state = super().get_state()
        # keras-tuner keeps these hashes in a set, whose order changes from process to process
        # (string hashing is salted): sorted, an unchanged search writes the same file again.
        state["tried_so_far"] = sorted(state["tried_so_far"])
        grids = self.grids if self.hyperparameters.space else []
        state["predictive"] = {
            "version": STATE_VERSION,
            "settings": self._settings(),
            "max_iterations": self.max_iterations,
            "top_k": self.top_k,
            # The values behind each probability vector, for reports that read this file.
            "grids": {grid.name: list(grid.values) for grid in grids},
            "thresholds": resolve_thresholds(grids, self.thresholds, self.allocation)
            if grids
            else {},
            "phase": self._phase,
            # Records live in their trial folders; this list says which belong to the search.
            "trial_ids": list(self._records.records),
            "bounds": list(self._bounds) if self._bounds else None,
            "probabilities": self._probabilities,
            "history": self._history,
            "fixed": {name: [fixed.value, fixed.iteration] for name, fixed in self._fixed.items()},
            "exploration_end": self._exploration_end,
            "targets": self._targets,
            "pruned": sorted(self._pruned),
            "predictor_trials": self._predictor_trials,
            "predictor_params": self._predictor_params,
            "predictor_report": self._predictor_report,
            "rng": self._rng.bit_generator.state,
        }
        return state

    def set_state(self, state):
        # keras-tuner replaces the space with the saved one: compare the one given first.
        given = (
            {g.name: list(g.values) for g in value_grids(self.hyperparameters)}
            if self.hyperparameters.space
            else None
        )
        super().set_state(state)
        saved = state["predictive"]
        if saved.get("version") != STATE_VERSION:
            raise errors.FatalValueError(
                f"{self._project_dir} holds a search saved by an older kt_predictive (state "
                f"version {saved.get('version', 1)}, this one reads {STATE_VERSION}); finish it "
                "with kt-predictive 0.1, or start over with a new project_name or overwrite=True"
            )
        current = self._settings()
        # A setting added to the allocation rule after the search was saved: the search
        # continues with its value (nothing recorded depends on it yet).
        saved_rule = saved["settings"].get("allocation")
        if isinstance(saved_rule, dict):
            saved["settings"]["allocation"] = {**current["allocation"], **saved_rule}
        changed = [
            f"{key}: saved {saved['settings'].get(key)!r}, now {current[key]!r}"
            for key in _FIXED_SETTINGS
            if saved["settings"].get(key) != current[key]
        ]
        if given is not None and saved["grids"] and given != saved["grids"]:
            changed.append("search space: " + _describe_change(saved["grids"], given))
        if changed:
            raise errors.FatalValueError(
                f"the project in {self._project_dir} was searched with other settings ("
                + "; ".join(changed)
                + "). Continue it with the same settings, or start over with a new "
                "project_name or overwrite=True"
            )
        self._phase = saved["phase"]
        self._records = RecordBook()
        recovery = "Restore it from a backup, or start over with overwrite=True (which discards this search)"
        for trial_id in saved["trial_ids"]:
            path = os.path.join(self._get_trial_dir(trial_id), RECORD_FILE)
            self._records.add(TrialRecord.from_json(read_json(path, recovery)))
        self._bounds = tuple(saved["bounds"]) if saved["bounds"] else None
        self._probabilities = saved["probabilities"]
        self._history = saved["history"]
        self._fixed = {
            name: FixedValue(value, iteration)
            for name, (value, iteration) in saved["fixed"].items()
        }
        self._exploration_end = saved["exploration_end"]
        self._targets = saved["targets"]
        self._pruned = set(saved["pruned"])
        self._predictor_trials = saved["predictor_trials"]
        self._predictor_params = saved["predictor_params"]
        self._predictor_report = saved["predictor_report"]
        self._predictor_fitted = False
        self._rng.bit_generator.state = saved["rng"]
        self._extend(saved)

    def _extend(self, saved: dict) -> None:
        """A finished search rerun with a larger max_iterations or top_k goes on."""
        more_iterations = self.max_iterations > saved["max_iterations"]
        if more_iterations and self._exploration_end == END_MAX_ITERATIONS:
            self._exploration_end = None
            if self._phase in ("finalize", "done"):
                self._phase = "explore"
        if self._phase == "done" and (more_iterations or self.top_k > saved["top_k"]):
            self._start_finalize()

    def save(self):
        write_json(self._get_oracle_fname(), self.get_state())

    def _save_record(self, record: TrialRecord) -> None:
        write_json(
            os.path.join(self._get_trial_dir(record.trial_id), RECORD_FILE), record.to_json()
        )

    def _save_trial(self, trial):
        write_json(
            os.path.join(self._get_trial_dir(trial.trial_id), "trial.json"), trial.get_state()
        )

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
            if (record := self._records.get(trial.trial_id)) is None or record.running
        )
        self.ongoing_trials = {}


def _first_line(message: str | None) -> str | None:
    if not message:
        return None
    lines = [line for line in str(message).strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else None


def _describe_change(before, after) -> str:
    """Which hyperparameters or values differ between two spaces (grids or {name: values})."""

    def as_dict(grids):
        return grids if isinstance(grids, dict) else {g.name: list(g.values) for g in grids}

    before, after = as_dict(before), as_dict(after)
    parts = [f"{name} added" for name in after if name not in before]
    parts += [f"{name} removed" for name in before if name not in after]
    parts += [
        f"{name} values {before[name]} -> {after[name]}"
        for name in before
        if name in after and list(before[name]) != list(after[name])
    ]
    return ", ".join(parts) or "order of hyperparameters changed"

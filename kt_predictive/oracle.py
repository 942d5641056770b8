"""PredictiveOracle: the paper's search method as a keras-tuner Oracle.

The method's decisions (what to train next, what results mean) are
:class:`~kt_predictive.decisions.SearchDecisions`'; this module speaks keras-tuner's protocol
and drives the phases ``"initial"`` → ``"explore"`` → ``"finalize"`` → ``"done"``
(``oracle.phase``). Tuners report window means, final means, divergence and heartbeats through
``update_trial``, which answers ``"STOPPED"`` when a trial must stop. Each
:class:`~kt_predictive.records.TrialRecord` is saved in its trial folder (``record.json``)
when it changes, the decisions in ``oracle.json`` when a trial starts or settles; all writes
are atomic, so a killed search continues where it stopped.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable

import keras_tuner
from keras_tuner import errors
from keras_tuner.engine import trial as trial_module

from kt_predictive.allocation import AllocationRule
from kt_predictive.budget import TrainingSteps
from kt_predictive.decisions import MAX_COLLISIONS, SearchDecisions
from kt_predictive.errors import FatalSearchError, SearchError
from kt_predictive.inspection import SearchView
from kt_predictive.liveness import WorkerLiveness
from kt_predictive.persistence import RECOVERY, SearchFiles
from kt_predictive.progress import SearchProgress, settled_line
from kt_predictive.records import (
    INITIAL_STEP_VALUE,
    PARENT_VALUE,
    STATE_VERSION,
    TrialRecord,
    configuration,
    read_records,
)
from kt_predictive.reporting import TRAIN_SECONDS
from kt_predictive.settings import PredictorSettings, Schedule, Screening
from kt_predictive.space import ValueGrid, check_settled, check_values_kept, value_grids

TrialStatus = trial_module.TrialStatus

# The metric that marks an explored trial's score as a prediction (issue: users reading
# oracle.trials could not tell a predicted score from a measured one).
PREDICTED_METRIC = "predicted_final"


class PredictiveOracle(SearchView, SearchFiles, keras_tuner.Oracle):
    """Predictor-guided search with probability allocation (Lombardi et al.).

    The default allocation (:meth:`AllocationRule.evidence`) keeps the paper's algorithm and
    exponential reward but normalises losses by rank, gives every value a prior and fixes a
    value only on evidence, so small searches explore instead of fixing every value at
    iteration 0, and draws a third of exploration uniformly, so a value fixed on misleading
    records stays reachable; :meth:`paper` reproduces the paper exactly.

    Args:
        objective: The training metric to minimise (default ``"loss"``). A trial's score is
            the mean of this metric over its last ``final_window`` steps, not its best value.
        search_budget: Total training in full-training equivalents: the shorthand for
            ``schedule=Schedule(search_budget=...)`` (give one of the two).
        steps: How long trials train (:class:`~kt_predictive.budget.TrainingSteps`; default:
            the paper's 40000 / 6000 / 1000 / 500).
        schedule: How many trials each phase gets (:class:`~kt_predictive.settings.Schedule`;
            default: the paper's 100 / 400 / 20 without ``search_budget``).
        screening: Rungs in exploration and a screened phase 1
            (:class:`~kt_predictive.settings.Screening`; default ``"auto"`` for both).
        allocation: An :class:`AllocationRule` (default :meth:`AllocationRule.evidence`),
            with the fixing thresholds.
        predictor: A :class:`~kt_predictive.settings.PredictorSettings`, or a scikit-learn
            regressor for ``PredictorSettings(predictor=...)`` (default: a
            :class:`HybridPredictor`, tuned on phase 1, refitted in phase 4).
        hyperparameters: Optional search space, as for every keras-tuner oracle.
        seed: Random seed.
        worker_timeout: Distributed searches: seconds without news of a running trial after
            which its worker counts as dead and the trial goes to another worker, resuming
            from its last checkpoint. Tuners send news at every checkpoint and at least every
            ``heartbeat_seconds`` (PredictiveTuner's argument: by default a third of this
            timeout, at most 30 s). ``None`` (default) waits forever, as keras-tuner does.
        max_retries_per_trial, max_consecutive_failed_trials: as for every keras-tuner oracle.

    A search continues only with the settings it was saved with (``max_iterations`` and
    ``top_k`` may grow: that extends it); other settings are refused with the list of what
    changed.

    Attributes:
        release_checkpoints: Called with the ids of explored trials whose early checkpoint
            will never be continued (:class:`PredictiveTuner` deletes their training states);
            ``None`` keeps them.
        trial_settled: Called after each trial has settled and the search state is saved
            (:class:`PredictiveTuner` deletes the weights of fully trained networks that can
            no longer be among its ``keep_models``); ``None`` does nothing.

    Example:
        >>> steps = TrainingSteps(full_steps=400, early_steps=80, window=20, final_window=80)
        >>> oracle = PredictiveOracle(search_budget=30, steps=steps, seed=1)
        >>> (oracle.initial_screen, oracle.initial_trials, oracle.max_iterations, oracle.top_k)
        (18, 6, 56, 13)
        >>> paper = PredictiveOracle(
        ...     steps=steps, schedule=Schedule(initial_trials=10, max_iterations=40, top_k=5),
        ...     screening=Screening.paper(), allocation=AllocationRule(thresholds=0.8))
        >>> (paper.initial_screen, paper.reduction_factor, paper.allocation.thresholds)
        (0, None, 0.8)
    """

    def __init__(
        self,
        objective: str | keras_tuner.Objective = "loss",
        search_budget: float | None = None,
        *,
        steps: TrainingSteps | None = None,
        schedule: Schedule | None = None,
        screening: Screening | None = None,
        allocation: AllocationRule | None = None,
        predictor: PredictorSettings | object | None = None,
        hyperparameters: keras_tuner.HyperParameters | None = None,
        seed: int | None = None,
        worker_timeout: float | None = None,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int = 3,
    ):
        steps = TrainingSteps() if steps is None else steps
        schedule = _schedule(search_budget, schedule)
        for name, value, kind in (
            ("steps", steps, TrainingSteps),
            ("screening", screening, Screening),
            ("allocation", allocation, AllocationRule),
        ):
            if value is not None and not isinstance(value, kind):
                raise SearchError(
                    f"{name} must be a {kind.__name__} (got {type(value).__name__}), e.g. "
                    f"{name}={kind.__name__}()"
                )
        if predictor is not None and not isinstance(predictor, PredictorSettings):
            predictor = PredictorSettings(predictor=predictor)
        if isinstance(objective, list | tuple):
            raise SearchError("PredictiveOracle needs a single objective, e.g. objective='loss'")
        super().__init__(
            objective=objective,
            max_trials=None,  # the phases decide; continuations are trials of their own
            hyperparameters=hyperparameters,
            seed=seed,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
        )
        if seed is not None:
            # keras-tuner's `seed or random.randint(...)` takes seed=0 for "no seed".
            self.seed = self._seed_state = seed
        # The seed as given (keras-tuner draws one for None): a resumed search compares it.
        self._given_seed = seed
        self._decisions = SearchDecisions(
            steps,
            schedule,
            screening,
            allocation,
            predictor,
            seed=self.seed,
            grids=lambda: self.grids,
            say=lambda message: self._display.say(message),
            record_changed=self._save_record,
        )
        # Records keep "lower is better" values: a maximised objective (accuracy) is
        # negated there, and trial scores show it as measured.
        self._sign = 1.0 if self.objective.direction == "min" else -1.0
        self.liveness = WorkerLiveness(worker_timeout)
        self.release_checkpoints: Callable[[list[str]], None] | None = None
        self.trial_settled: Callable[[], None] | None = None
        self._grids: list[ValueGrid] | None = None
        self._display = SearchProgress()
        # Reloaded trials whose reports already ended their run (see end_runs_over).
        self._runs_over: list[str] = []

    @classmethod
    def paper(cls, reward: str = "exp", **kwargs) -> PredictiveOracle:
        """The paper's schedule exactly: 100 / 400 / 20 networks, 40000 / 6000 / 1000 / 500
        steps, Algorithm 2.2 with s_i = 2/|V_i| and m, M from phase 1, HYB fitted on phase 1
        only, the winner among the finalized candidates (:meth:`best_finalized_trial`).

        Keyword arguments are the oracle's and replace any of it (e.g.
        ``schedule=Schedule.paper(max_iterations=800)`` for Table 5).

        Example:
            >>> oracle = PredictiveOracle.paper(schedule=Schedule.paper(max_iterations=800))
            >>> (oracle.initial_trials, oracle.max_iterations, oracle.refit_predictor)
            (100, 800, False)
        """
        preset = {
            "steps": TrainingSteps.paper(),
            "schedule": Schedule.paper(),
            "screening": Screening.paper(),
            "allocation": AllocationRule.paper(reward),
            "predictor": PredictorSettings.paper(kwargs.get("seed")),
        }
        return cls(**{**preset, **kwargs})

    # ------------------------------------------------------------------ keras-tuner API

    @property
    def verbose(self) -> int:
        """What the oracle prints: ``1`` (default) one line per settled trial and a message
        at each phase change and fixed value; ``0`` nothing. Set ``oracle.verbose = 0`` in a
        loop of your own; ``search(..., verbose=0)`` sets it for a tuner's search."""
        return self._display.verbose

    @verbose.setter
    def verbose(self, value: int) -> None:
        self._display.verbose = value

    def update_space(self, hyperparameters):
        if self._grids is not None and hyperparameters.space:
            check_values_kept(self._grids, value_grids(hyperparameters))
        super().update_space(hyperparameters)
        if self.hyperparameters.space:
            grids = value_grids(self.hyperparameters)
            if self.phase != "initial" and self._grids is not None:
                check_settled(self._grids, grids)
            self._decisions.check_space(grids)
            self._grids = grids

    @keras_tuner.synchronized
    def create_trial(self, tuner_id):
        self.end_runs_over()
        with self._transition():
            return self._create_trial(tuner_id)

    def end_runs_over(self, end: Callable | None = None) -> None:
        """Ends the trials a killed search had finished training but not ended: their
        reports had already ended their run (the final mean of a full training, a
        screening decision, the early budget of an explored trial, a divergence), so they
        are settled, not trained again. ``end(trial)`` ends each (default ``end_trial``;
        :class:`PredictiveTuner` passes its ``on_trial_end``, so an override sees them)."""
        end = end or self.end_trial
        while self._runs_over:
            trial = self.trials[self._runs_over.pop(0)]
            trial.status = TrialStatus.COMPLETED
            end(trial)

    def _create_trial(self, tuner_id):
        self.liveness.heard_from_worker(tuner_id)
        self._requeue_silent_trials()
        if self.phase == "done":
            self.tuner_ids -= self.liveness.stale_workers(self.tuner_ids - {tuner_id})
        trial = super().create_trial(tuner_id)
        if trial.status == TrialStatus.RUNNING:
            self.liveness.heard_about_trial(trial.trial_id)
        elif trial.status == TrialStatus.IDLE and not self.ongoing_trials and not self._retry_queue:
            # Waiting, with nothing running anywhere, would wait forever.
            raise errors.FatalError(
                f"the search cannot go on: phase {self.phase!r}, no trial running or queued, "
                f"and no new trial to start ({len(self._decisions.records)} records; exploration "
                f"end: {self.exploration_end}). This is a bug; please report it with "
                f"{self._get_oracle_fname()}"
            )
        return trial

    def populate_space(self, trial_id):
        self._advance()
        if self.phase == "done":
            return {"status": TrialStatus.STOPPED}
        phase = self.phase
        record = self._decisions.next_trial(trial_id, self._sample)
        if record is None:  # waiting for running trials, or the phase just ended
            self._advance()
            if self.phase != phase:
                return self.populate_space(trial_id)  # phase 4 can start right away
            return {"status": TrialStatus.IDLE}
        values = dict(record.values)
        if record.parent_id is not None:
            values[PARENT_VALUE] = record.parent_id
            values[INITIAL_STEP_VALUE] = self._decisions.records[record.parent_id].steps
        return {"status": TrialStatus.RUNNING, "values": values}

    def _sample(self, uniform: bool, keep_fixed: bool = True) -> dict | None:
        """A configuration not tried before (values from the decisions, for the active
        hyperparameters of the space), or None after MAX_COLLISIONS attempts."""
        grids = {g.name: g for g in self.grids}
        for _ in range(MAX_COLLISIONS):
            hps = keras_tuner.HyperParameters()
            for hp in self.hyperparameters.space:
                hps.merge([hp])
                if hps.is_active(hp):
                    grid = grids[hp.name]
                    hps.values[hp.name] = self._decisions.draw_value(grid, uniform, keep_fixed)
            if not self._duplicate(hps.values):
                return dict(hps.values)
        return None

    def _requeue_silent_trials(self) -> None:
        """Sends the trials of workers silent for longer than worker_timeout to others."""
        for tuner_id, trial in list(self.ongoing_trials.items()):
            if self.liveness.trial_is_silent(trial.trial_id):
                self._display.say(self.liveness.requeue_message(tuner_id, trial.trial_id))
                del self.ongoing_trials[tuner_id]
                self.tuner_ids.discard(tuner_id)
                self._retry_queue.append(trial.trial_id)
                self.save()

    @keras_tuner.synchronized
    def update_trial(self, trial_id, metrics, step=0):
        with self._transition():
            return self._update_trial(trial_id, metrics, step)

    def _update_trial(self, trial_id, metrics, step):
        workers = [t for t, ongoing in self.ongoing_trials.items() if ongoing.trial_id == trial_id]
        self.liveness.heard_about_trial(trial_id, workers)
        record = self._decisions.records.get(trial_id)
        if record is None:
            return super().update_trial(trial_id, metrics, step)
        if record.settled:
            # A worker that went on after its trial settled (given to another worker, or
            # told to stop): its report changes nothing, and it is told to stop.
            trial = copy.copy(self.trials[trial_id])
            trial.status = TrialStatus.STOPPED
            return trial
        if self.objective.name not in metrics:
            raise FatalSearchError(
                f"trial {trial_id} reported {sorted(metrics)} without the objective "
                f"{self.objective.name!r}"
            )
        value, step = self._sign * float(metrics[self.objective.name]), int(step)
        lengths = self.steps
        heartbeat = (
            math.isfinite(value) and not lengths.is_window_end(step) and step != lengths.full_steps
        )
        trial = (
            self.trials[trial_id] if heartbeat else super().update_trial(trial_id, metrics, step)
        )
        stop = self._decisions.report(record, value, step)
        if TRAIN_SECONDS in metrics:
            record.seconds = float(metrics[TRAIN_SECONDS])
        self._save_record(record)
        if stop:
            trial = copy.copy(trial)
            trial.status = TrialStatus.STOPPED
        return trial

    @keras_tuner.synchronized
    def end_trial(self, trial):
        with self._transition():
            settled = self._end_trial(trial)
        if settled:
            self.liveness.oracle_was_busy(t.trial_id for t in self.ongoing_trials.values())
            if self.trial_settled is not None:
                self.trial_settled()

    def _end_trial(self, trial) -> bool:
        """Ends the trial; returns whether its record settled now."""
        record = self._decisions.records.get(trial.trial_id)
        if record is not None and record.settled:
            return False  # settled already (by another worker): a trial settles once
        if trial.status == TrialStatus.STOPPED:
            # A driver that ends a trial with the object update_trial returned: the oracle
            # stopped it, so it completed its part (keras-tuner only retries INVALID trials).
            trial = copy.copy(trial)
            trial.status = TrialStatus.COMPLETED
        if record is not None and trial.status == TrialStatus.COMPLETED:
            self._decisions.conclude(record)
        try:
            super().end_trial(trial)
        except BaseException:
            # keras-tuner raises here when too many trials failed in a row; the record of
            # the last one is settled and shown all the same.
            if record is not None and self._settle_failure(record, self.trials[trial.trial_id]):
                self._show(record)
            raise
        if record is None:
            return False
        ended = self.trials[trial.trial_id]
        self._settle_failure(record, ended)
        # keras-tuner filled in the values of hyperparameters first declared during the run.
        record.values = configuration(ended.hyperparameters.values)
        if record.running:
            self._save_record(record)
            return False  # sent for retry
        self._decisions.settled(record)
        if record.role == "explore":
            self._release(self._decisions.release_checkpoints())
        elif record.role == "continuation":
            self._release(self._decisions.release_parent(record))
        self._show(record)
        self._save_record(record)
        self._advance()
        self._save_trial(ended)
        self.save()
        return True

    def _settle_failure(self, record: TrialRecord, ended) -> bool:
        """Records a trial keras-tuner failed for good; returns whether it did."""
        failed = ended.status == TrialStatus.FAILED and self._decisions.fail(record, ended.message)
        if failed:
            ended.score = self._sign * math.inf
        return failed

    def _show(self, record: TrialRecord) -> None:
        sizes = (self.initial_trials, self.max_iterations, self.top_k)
        records, objective = self._decisions.records, self.objective.name
        line = settled_line(
            record,
            records,
            sizes,
            objective,
            self.fixed_values,
            self._sign,
            initial_screen=self.initial_screen,
        )
        self._display.trial_settled(line)

    def score_trial(self, trial):
        record = self._decisions.records.get(trial.trial_id)
        if record is None:
            return super().score_trial(trial)
        trial.score = self._sign * record.score
        trial.best_step = record.steps
        if record.is_predicted_only:
            if not trial.metrics.exists(PREDICTED_METRIC):
                trial.metrics.register(PREDICTED_METRIC, direction=self.objective.direction)
            trial.metrics.update(PREDICTED_METRIC, trial.score, step=record.steps)

    # ------------------------------------------------------------------ phases

    def _advance(self) -> None:
        """Moves to the next phase when the current one has finished."""
        decisions = self._decisions
        running = bool(decisions.records.running())
        if self.phase == "initial" and decisions.initial_started() and not running:
            decisions.start_exploration()
            self._release(decisions.release_checkpoints())
            self.save()
        if self.phase == "explore" and decisions.exploration_over() and not running:
            self._start_finalize()
        if self.phase == "finalize" and decisions.next_continuation() is None and not running:
            decisions.phase = "done"
            self._release(decisions.release_checkpoints())
            self.save()

    def _start_finalize(self) -> None:
        self._decisions.start_finalize()
        self._release(self._decisions.release_checkpoints())
        self.save()

    # ------------------------------------------------------------------ state

    def _settings(self) -> dict:
        return {
            **self._decisions.settings(),
            "seed": self._given_seed,
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
            **self._decisions.state(grids),
        }
        return state

    def set_state(self, state):
        # keras-tuner replaces the space with the saved one: compare the one given first.
        given = value_grids(self.hyperparameters) if self.hyperparameters.space else None
        super().set_state(state)
        saved = state["predictive"]
        self._decisions.check_saved(saved, self._settings(), given, self._project_dir)
        records = read_records(self._project_dir, saved["trial_ids"], RECOVERY)
        self._decisions.restore(saved, records)
        if self._decisions.extend(saved["max_iterations"], saved["top_k"]):
            self._start_finalize()


def _schedule(search_budget: float | None, schedule: Schedule | None) -> Schedule:
    """The schedule of ``search_budget`` (the shorthand) and ``schedule``, which conflict."""
    if schedule is not None and not isinstance(schedule, Schedule):
        raise SearchError(
            f"schedule must be a Schedule (got {type(schedule).__name__}), e.g. "
            "schedule=Schedule(initial_trials=10, max_iterations=40, top_k=5)"
        )
    if search_budget is None:
        return Schedule() if schedule is None else schedule
    if schedule is None:
        return Schedule(search_budget=search_budget)
    if schedule.search_budget is not None or any(c is not None for c in schedule.counts):
        raise SearchError(
            f"search_budget={search_budget!r} and schedule={schedule!r} both size the phases: "
            "give one (Schedule(search_budget=...) or the counts), not both"
        )
    return dataclasses.replace(schedule, search_budget=search_budget)

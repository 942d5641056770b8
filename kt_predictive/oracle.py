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
import math
from collections.abc import Callable, Mapping

import keras_tuner
from keras_tuner import errors
from keras_tuner.engine import trial as trial_module

from kt_predictive.allocation import AllocationRule
from kt_predictive.budget import StepBudget
from kt_predictive.decisions import MAX_COLLISIONS, METHOD_SETTINGS, SearchDecisions, paper_settings
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
from kt_predictive.schedule import FINAL_SHARE
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
        search_budget: Total training in full-training equivalents (networks trained for
            ``full_steps``); sizes ``initial_trials``, ``max_iterations`` and ``top_k``
            (:func:`~kt_predictive.schedule.size_phases`). Give either this or the three counts.
        final_share: With ``search_budget``, the share of it that continues candidates.
        initial_trials: Configurations trained to the full budget in phase 1 (paper: 100).
        max_iterations: Exploration trials in phase 3 at most (paper: 400, then 800).
        top_k: Explored configurations trained on to the full budget in phase 4 (paper: 20).
            With ``search_budget``, more are continued while the budget allows.
        reduction_factor: Screening's η (:mod:`kt_predictive.screening`): an explored
            trial goes on at the early windows ``window·η^j`` below ``early_steps`` only if
            its window mean is among the best 1/η recorded there, so more configurations are
            screened for the same training. ``None`` trains every explored trial to
            ``early_steps`` (the paper). ``"auto"`` (default): η = 3 for a ``search_budget``
            below 20 full trainings, where it measured better on held-out seeds, else None.
        initial_screen: A screened phase 1: draw this many uniform configurations, screen
            them as explored ones are (to ``early_steps`` at most), and continue the best
            ``initial_trials`` of them (by their last early window) to ``full_steps``, so
            phase 1's full trainings are good candidates instead of random ones. ``None``:
            phase 1 trains ``initial_trials`` random configurations fully (the paper).
            ``"auto"`` (default): with a ``search_budget`` (sized by
            :func:`~kt_predictive.schedule.size_phases`: initial_trials·η^r configurations,
            3·initial_trials without rungs), where it measured better on held-out seeds;
            None without one. With a ``search_budget``, ``True``/``False`` turn it on/off.
        screen_within_initial_share: With a ``search_budget`` and a screened phase 1, size
            phase 1 so that its screen and its full trainings together cost the share of the
            budget phase 1 has (a fifth), leaving ``final_share`` to continuations of explored
            candidates; ``False``: phase 1 keeps a fifth of the budget in networks and its
            continuations are paid from ``final_share``.
        initial_screen_halvings: With a ``search_budget`` and a screened phase 1, it screens
            ``initial_trials·η^h`` configurations for h halvings; None: as many as
            exploration has rungs (at least one).
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
            ``heartbeat_seconds`` (PredictiveTuner's argument: by default a third of this
            timeout, at most 30 s). ``None`` (default) waits forever, as keras-tuner does.
        hyperparameters: Optional search space, as for every keras-tuner oracle.
        seed: Random seed.
        max_retries_per_trial, max_consecutive_failed_trials, allow_new_entries,
        tune_new_entries: as for every keras-tuner oracle.

    Attributes:
        release_checkpoints: Called with the ids of explored trials whose early checkpoint
            will never be continued (:class:`PredictiveTuner` deletes their training states);
            ``None`` keeps them.
        trial_settled: Called after each trial has settled and the search state is saved
            (:class:`PredictiveTuner` deletes the weights of fully trained networks that can
            no longer be among its ``keep_models``); ``None`` does nothing.

    Example:
        >>> oracle = PredictiveOracle(search_budget=30, full_steps=400, early_steps=80,
        ...                           window=20, final_window=80, seed=1)
        >>> (oracle.initial_screen, oracle.initial_trials, oracle.max_iterations, oracle.top_k)
        (18, 6, 56, 13)
    """

    def __init__(
        self,
        objective: str | keras_tuner.Objective = "loss",
        search_budget: float | None = None,
        final_share: float = FINAL_SHARE,
        initial_trials: int | None = None,
        max_iterations: int | None = None,
        top_k: int | None = None,
        reduction_factor: int | str | None = "auto",
        initial_screen: bool | int | str | None = "auto",
        screen_within_initial_share: bool = False,
        initial_screen_halvings: int | None = None,
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
        budget = StepBudget(full_steps, early_steps, window, final_window)
        if isinstance(objective, list | tuple):
            raise SearchError("PredictiveOracle needs a single objective, e.g. objective='loss'")
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
        if seed is not None:
            # keras-tuner's `seed or random.randint(...)` takes seed=0 for "no seed".
            self.seed = self._seed_state = seed
        # The method's own settings (explicit above, for readers and IDEs) go to its decisions.
        method = {name: value for name, value in locals().items() if name in METHOD_SETTINGS}
        self._decisions = SearchDecisions(
            budget,
            **method,
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

    @classmethod
    def paper(cls, reward: str = "exp", **kwargs) -> PredictiveOracle:
        """The paper's schedule exactly: 100 / 400 / 20 networks, 40000 / 6000 / 1000 / 500
        steps, Algorithm 2.2 with s_i = 2/|V_i| and m, M from phase 1, HYB fitted on phase 1
        only, the winner among the finalized candidates (:meth:`best_finalized_trial`).

        Keyword arguments override any of it (e.g. ``max_iterations=800`` for Table 5).
        """
        return cls(**{**paper_settings(reward, kwargs.get("seed")), **kwargs})

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
        budget = self.budget
        heartbeat = (
            math.isfinite(value) and not budget.is_window_end(step) and step != budget.full_steps
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
        record = self._decisions.records.get(trial.trial_id)
        if record is not None and record.settled:
            return  # settled already (by another worker): a trial settles once
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
            return
        ended = self.trials[trial.trial_id]
        self._settle_failure(record, ended)
        # keras-tuner filled in the values of hyperparameters first declared during the run.
        record.values = configuration(ended.hyperparameters.values)
        if record.running:
            self._save_record(record)
            return  # sent for retry
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
        self.liveness.oracle_was_busy(t.trial_id for t in self.ongoing_trials.values())
        if self.trial_settled is not None:
            self.trial_settled()

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

    def _release(self, trial_ids: list[str]) -> None:
        if trial_ids and self.release_checkpoints is not None:
            self.release_checkpoints(trial_ids)

    # ------------------------------------------------------------------ state

    def _settings(self) -> dict:
        return {**self._decisions.settings(), "objective": self.objective.name}

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

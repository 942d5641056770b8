"""The search method's decisions: what to train next, and what the results mean.

:class:`SearchDecisions` is the method of Lombardi et al. on a :class:`RecordBook`, without
keras-tuner's protocol. Its phases (``phase``):

- ``"initial"`` (dataset generation): ``initial_trials`` distinct configurations, drawn
  uniformly, train to ``full_steps``. A *screened* phase 1 (``initial_screen``; by default
  for every ``search_budget``) draws ``initial_screen`` configurations, screens them as
  exploration does (to ``early_steps`` at most), and continues the best ``initial_trials``
  of them by their last early window to ``full_steps``: the predictor learns from good
  networks, and the networks phase 1 pays for fully are candidates, not random draws;
- between phases 1 and 3 (:meth:`~SearchDecisions.start_exploration`) m and M are set, the
  performance predictor is tuned once and fitted on them, and the probabilities allocated;
- ``"explore"``: Algorithms 2.1/2.2: each trial draws a configuration from the current
  probabilities (fixed values stay fixed), trains to ``early_steps`` only and gets a
  predicted final loss; the probabilities are recomputed after every record, and a value
  whose probability reaches its threshold is fixed. With ``reduction_factor`` (by default
  for a ``search_budget`` below 20 full trainings) a trial is screened on the way
  (:mod:`kt_predictive.screening`): at each rung it goes on only if it is among the best
  1/η there. It ends after ``max_iterations`` trials (with ``search_budget`` and
  screening, whose trials' cost varies, the budget decides instead), when
  every hyperparameter is fixed, when no untried configuration is left, or, with
  ``search_budget``, when the budget left is what the continuations need
  (``exploration_end`` says which);
- ``"finalize"``: the ``top_k`` explored configurations with the lowest predicted loss are
  continued, each by a new trial that resumes from its parent's early checkpoint and trains
  on to ``full_steps`` (with ``refit_predictor``, each real result refits the predictor and
  re-ranks the candidates); with ``search_budget``, candidates beyond ``top_k`` are continued
  while the budget allows;
- ``"done"``. Raising ``max_iterations`` (or ``top_k``) and rerunning takes a finished search
  back to exploration (or phase 4): the paper's 400 → 800 of Table 5 (:meth:`extend`).

It also says which early checkpoints can no longer be continued
(:meth:`~SearchDecisions.release_checkpoints`).
:class:`~kt_predictive.oracle.PredictiveOracle` adapts it to keras-tuner: it turns trial
requests and reports into calls here, moves between the phases when one is over, and saves
what changed. Changing the search method means changing this class.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping

import numpy as np

from kt_predictive.allocation import AllocationRule, FixedValue, newly_fixed, value_counts
from kt_predictive.budget import TrainingSteps
from kt_predictive.errors import FatalSearchError
from kt_predictive.predictor import FeatureEncoder, HybridPredictor, keep_sign
from kt_predictive.records import (
    STATE_VERSION,
    RecordBook,
    TrialRecord,
    first_line,
    training_steps,
)
from kt_predictive.schedule import MIN_INITIAL_TRIALS
from kt_predictive.screening import promoted, rung_estimate, screening_rungs
from kt_predictive.settings import PredictorSettings, Schedule, Screening, plan
from kt_predictive.space import Value, ValueGrid, describe_change, space_size

# With refit_predictor, the predictions of explored trials change during phase 4, so twice
# top_k candidates keep their early checkpoints to be re-ranked; otherwise top_k suffice.
REFIT_CANDIDATE_FACTOR = 2

# Why exploration ended (oracle.exploration_end).
END_MAX_ITERATIONS = "max_iterations reached"
END_ALL_FIXED = "every hyperparameter fixed"
END_EXHAUSTED = "no untried configuration left"
END_BUDGET = "search budget reached"

PHASES = ("initial", "explore", "finalize", "done")

# The largest loss the predictor can learn from (scikit-learn's forests compute in float32).
FLOAT32_MAX = float(np.finfo(np.float32).max)

# Attempts at drawing a configuration not tried before, before the space counts as exhausted
# (keras-tuner's own oracles use 20).
MAX_COLLISIONS = 100

# Settings that give recorded results their meaning: a search can only be continued with
# the same ones (max_iterations and top_k may grow: that extends the search).
FIXED_SETTINGS = (
    "full_steps",
    "early_steps",
    "window",
    "final_window",
    "initial_trials",
    "initial_screen",
    "allocation",
    "objective",
)
# Settings that decide which trials a search trains, saved with them since this version
# (refused when changed, as FIXED_SETTINGS; a folder saved before does not have them).
SEARCH_SETTINGS = (
    "reduction_factor",
    "final_share",
    "screen_within_initial_share",
    "initial_screen_halvings",
    "seed",
    "predictor",
    "refit_predictor",
)

# draw(uniform, keep_fixed): a configuration not tried before, or None if none was found.
Draw = Callable[..., "dict | None"]


def report_test_size(n_networks: int) -> int:
    """Test networks per split of the predictor report made from ``n_networks`` phase-1 trials.

    A fifth of them, as the paper's 20 of 100, capped at 20; at least two, as R² needs.
    """
    return max(2, min(20, n_networks // 5))


def _ignore(*_args) -> None:
    return None


class SearchDecisions:
    """The decisions of a predictive search, and the state they depend on.

    The settings are :class:`~kt_predictive.PredictiveOracle`'s (see there and
    :mod:`kt_predictive.settings`); :func:`~kt_predictive.settings.plan` turns them into the
    phase sizes.

    Args:
        steps: How long trials train.
        schedule, screening, allocation, predictor: The settings groups (defaults for None).
        seed: Seeds the draws and the default predictor.
        grids: Returns the search space's value grids (the space can grow during phase 1).
        say: Shows a one-off message about the search (a phase change, a fixed value).
        record_changed: Called with a record this class created or changed outside a
            report (so that it can be saved).
    """

    def __init__(
        self,
        steps: TrainingSteps,
        schedule: Schedule | None = None,
        screening: Screening | None = None,
        allocation: AllocationRule | None = None,
        predictor: PredictorSettings | None = None,
        *,
        seed: int | None = None,
        grids: Callable[[], list[ValueGrid]] = list,
        say: Callable[[str], None] = _ignore,
        record_changed: Callable[[TrialRecord], None] = _ignore,
    ):
        self.steps = steps
        self.schedule = Schedule() if schedule is None else schedule
        self.screening = Screening() if screening is None else screening
        self.allocation = AllocationRule.evidence() if allocation is None else allocation
        self.predictor_settings = PredictorSettings() if predictor is None else predictor
        self.seed = seed
        sizes = plan(steps, self.schedule, self.screening)
        self.reduction_factor = sizes.reduction_factor
        self.rungs = screening_rungs(steps, sizes.reduction_factor)
        # With search_budget, the most steps the search may train (None: the counts decide).
        self.budget_steps = sizes.budget_steps
        self.initial_trials = sizes.initial_trials
        self.max_iterations = sizes.max_iterations
        self.top_k = sizes.top_k
        # Phase 1 screens this many uniform configurations (0: it trains initial_trials fully).
        self.initial_screen = sizes.initial_screen
        chosen = self.predictor_settings
        self.predictor = (
            chosen.predictor
            if chosen.predictor is not None
            else HybridPredictor(random_state=seed, target="improvement")
        )
        self.refit_predictor = chosen.refit_predictor
        self.tuning_trials = chosen.tuning_trials
        self.min_tuning_networks = chosen.min_tuning_networks
        self.report_splits = chosen.report_splits
        self._grids = grids
        self._say = say
        self._record_changed = record_changed

        self.phase = "initial"
        self.records = RecordBook()
        self.bounds: tuple[float, float] | None = None
        self.probabilities: dict[str, list[float]] = {}
        self.history: list[dict] = []
        self.fixed: dict[str, FixedValue] = {}
        self.exploration_end: str | None = None
        # A screened phase 1 found no untried configuration before drawing initial_screen:
        # the space is smaller than its screen, which is then every configuration drawn.
        self.screen_exhausted = False
        # A screened phase 1 stopped drawing because the budget left is what it still needs.
        self.screen_budget_end = False
        self.targets: list[str] = []
        self.pruned: set[str] = set()  # explored trials whose early checkpoint was released
        self.predictor_trials: list[str] = []
        self.predictor_params: dict | None = None
        self._predictor_report: dict | None = None
        self._predictor_fitted = False
        self.rng = np.random.default_rng(seed)

    @property
    def grids(self) -> list[ValueGrid]:
        return self._grids()

    def resolve_thresholds(self, grids: list[ValueGrid]) -> dict[str, float]:
        """The fixing threshold of every hyperparameter of ``grids`` (checks the given ones)."""
        return self.allocation.threshold_of(grids)

    def check_space(self, grids: list[ValueGrid]) -> None:
        """Refuses a search space the settings cannot search (thresholds, size)."""
        self.resolve_thresholds(grids)
        if space_size(grids) < self.initial_trials:
            fix = (
                "lower initial_trials or widen the space"
                if self.budget_steps is None
                else "widen the space, or lower search_budget (phase 1 trains a fifth of it, "
                f"at least {MIN_INITIAL_TRIALS} networks)"
            )
            raise FatalSearchError(
                f"the search space has {space_size(grids)} configurations, fewer than the "
                f"initial_trials={self.initial_trials} networks phase 1 trains; {fix}"
            )

    # ------------------------------------------------------------------ new trials

    def new_record(
        self,
        trial_id: str,
        values: Mapping[str, Value],
        role: str,
        iteration: int | None = None,
        parent: TrialRecord | None = None,
    ) -> TrialRecord:
        record = TrialRecord(
            trial_id=trial_id,
            values=dict(values),
            role=role,
            early=list(parent.early) if parent else [None] * self.steps.n_windows,
            predicted=parent.predicted if parent else None,
            iteration=iteration,
            parent_id=parent.trial_id if parent else None,
        )
        # Saved before the oracle's state, which lists it.
        self._record_changed(record)
        return self.records.add(record)

    def next_trial(self, trial_id: str, draw: Draw) -> TrialRecord | None:
        """The record of the trial to start now in the current phase, or None to wait.

        ``draw(uniform=..., keep_fixed=...)`` turns :meth:`draw_value` into a configuration
        of the search space not tried before, or None when it finds none.
        """
        if self.phase == "initial":
            if self.initial_drawn():
                parent = self.next_initial_continuation()
                if parent is None:
                    return None  # the last phase-1 trials are running
                return self.new_record(trial_id, parent.values, "continuation", parent=parent)
            drawn = len(self.records.by_role("initial"))
            if (
                self.initial_screen
                and drawn >= self.initial_trials
                and not self.affords(self.steps.early_steps + self.initial_reserve(1))
            ):
                # The screen cost more than expected (most trials passed every rung): the
                # budget left pays for its continuations and one explored, continued trial.
                self.screen_budget_end = True
                self._say(
                    f"phase 1 screens {drawn} configurations, not {self.initial_screen}: the "
                    "search budget left is what its continuations need"
                )
                return self.next_trial(trial_id, draw)  # a continuation, or wait
            values = draw(uniform=True)
            if values is None and self.initial_screen and drawn >= self.initial_trials:
                self.screen_exhausted = True
                self._say(
                    f"phase 1 screens {drawn} configurations, not {self.initial_screen}: no "
                    "untried configuration is left"
                )
                return self.next_trial(trial_id, draw)  # a continuation, or wait
            if values is None:
                raise FatalSearchError(
                    f"could not draw a configuration not tried before after {MAX_COLLISIONS} "
                    "attempts; the search space is too small for initial_trials="
                    f"{self.initial_trials}"
                )
            return self.new_record(trial_id, values, "initial")
        if self.phase == "explore":
            if self.exploration_end is not None:
                return None  # waiting for running trials
            if not self.affords(self.steps.early_steps + self.continuation_reserve(1)):
                self.end_exploration(END_BUDGET)
                return None
            # No random number is drawn for a rule without uniform draws (the paper's), so
            # its searches draw exactly as they did before uniform draws existed.
            uniform = bool(self.allocation.uniform_share) and (
                self.rng.random() < self.allocation.uniform_share
            )
            values = draw(uniform=True) if uniform else None
            if values is None:
                values = draw(uniform=False)
            if values is None and self.allocation.relax_fixed:
                values = draw(uniform=False, keep_fixed=False)
            if values is None:
                self.end_exploration(END_EXHAUSTED)
                return None
            iteration = self.next_iteration()
            return self.new_record(trial_id, values, "explore", iteration=iteration)
        if self.phase == "finalize":
            parent = self.next_continuation()
            if parent is None:
                return None
            return self.new_record(trial_id, parent.values, "continuation", parent=parent)
        return None

    def report(self, record: TrialRecord, value: float, step: int) -> bool:
        """Records a report of the objective ("lower is better") at ``step``; returns
        whether the trial must stop (it diverged, or an explored trial reached the early
        budget)."""
        lengths = self.steps
        stop = False
        parent = self.records.get(record.parent_id) if record.parent_id else None
        if parent is not None and step <= parent.steps:
            # Its windows up to there are the parent's: a loop that trained them again would
            # train steps the budget does not count.
            raise FatalSearchError(
                f"trial {record.trial_id} continues trial {parent.trial_id} after its step "
                f"{parent.steps} (values['tuner/initial_step'] = {parent.steps}) but "
                f"reported step {step}: a continuation resumes its parent's state and curve "
                "and reports only the steps after it (TrialReporter(..., losses=the parent's "
                "curve)); a loop that cannot resume a trial's state cannot continue one"
            )
        if not math.isfinite(value) or abs(value) > FLOAT32_MAX:
            # Beyond float32, the predictor's forest sees inf: diverged as well.
            record.diverged_at = step
            stop = True
        elif step == lengths.full_steps:
            record.real_final = value
        elif lengths.is_window_end(step):
            record.early[step // lengths.window - 1] = value
            screened = self.stops_early(record)
            stop = screened and step >= lengths.early_steps
            # Decided once, when the trial first gets there: a resumed trial that reports
            # its windows again keeps the decision it got (reports stay idempotent).
            first_time = step > record.steps
            at_rung = screened and step in self.rungs and first_time
            if at_rung and not self.passes_rung(record, step):
                record.screened_at = step
            stop = stop or (record.screened_at is not None and step >= record.screened_at)
        record.steps = max(record.steps, step)
        return stop

    def run_is_over(self, record: TrialRecord) -> bool:
        """Whether a running record's reports already ended its run (a process killed
        before ``end_trial`` leaves such a record): it diverged, reported its final mean,
        was screened out, or is a screened trial that reached ``early_steps``."""
        if record.diverged_at is not None or record.real_final is not None:
            return True
        return self.stops_early(record) and (
            record.screened_at is not None or record.steps >= self.steps.early_steps
        )

    def stops_early(self, record: TrialRecord) -> bool:
        """Whether ``record``'s trial trains to ``early_steps`` at most, screened on the way:
        an explored trial, or a phase-1 one of a screened phase 1."""
        return record.role == "explore" or (record.role == "initial" and self.initial_screen > 0)

    def passes_rung(self, record: TrialRecord, step: int) -> bool:
        """Whether a screened trial's window mean at rung ``step`` is among the best 1/η of
        every window mean recorded there (its own, phase-1 trials', explored ones')."""
        index = step // self.steps.window - 1
        reference = [
            r.early[index]
            for r in self.records
            if r.role != "continuation" and r.early[index] is not None and r.diverged_at is None
        ]
        return promoted(record.early[index], reference, self.reduction_factor)

    # ------------------------------------------------------------------ budget

    def committed_steps(self) -> int:
        """Steps trained so far plus the most the running trials can still train."""
        lengths, total = self.steps, training_steps(self.records)
        for record in self.records.running():
            parent = self.records.get(record.parent_id) if record.parent_id else None
            steps = max(record.steps, parent.steps if parent is not None else 0)
            goal = lengths.early_steps if self.stops_early(record) else lengths.full_steps
            total += max(0, goal - steps)
        return total

    def affords(self, steps: int) -> bool:
        """Whether ``steps`` more fit in the search budget (always, without one)."""
        return self.budget_steps is None or self.committed_steps() + steps <= self.budget_steps

    def continuation_reserve(self, new_trials: int = 0) -> int:
        """Steps of the continuations still to come: at most ``top_k`` in all, and no more
        than the explored trials that are candidates or may become one (running ones, and
        ``new_trials`` about to start): screening stops most trials before they can be one."""
        started = sum(not self.records.in_phase1(r) for r in self.records.by_role("continuation"))
        possible = new_trials + sum(
            r.running or (r.is_predicted_only and self.records.continuation_of(r.trial_id) is None)
            for r in self.records.by_role("explore")
        )
        continuation = self.steps.full_steps - self.steps.early_steps
        return max(0, min(self.top_k - started, possible)) * continuation

    @property
    def iterations_by_budget(self) -> bool:
        """Whether the search budget, not ``max_iterations``, ends exploration: with
        ``search_budget`` and screening, whose trials' cost varies (``max_iterations`` is then
        the expected count); without screening every explored trial costs ``early_steps`` and
        ``max_iterations`` is exactly what the budget pays for."""
        return self.budget_steps is not None and self.reduction_factor is not None

    def initial_reserve(self, new_trials: int = 0) -> int:
        """With a screened phase 1 still drawing: the steps its continuations will need, and
        one explored trial continued to ``full_steps`` after it, if ``new_trials`` more are
        drawn (running and new ones counted at ``early_steps``)."""
        lengths = self.steps
        reached = [lengths.early_steps] * new_trials + [
            lengths.early_steps if r.running else min(r.steps, lengths.early_steps)
            for r in self.records.by_role("initial")
            if r.running or r.status == "complete"
        ]
        chosen = sorted(reached, reverse=True)[: self.initial_trials]
        return sum(lengths.full_steps - steps for steps in chosen) + lengths.full_steps

    def initial_drawn(self) -> bool:
        """Every phase-1 configuration has been drawn (some may still be training)."""
        drawn = len(self.records.by_role("initial"))
        if self.screen_exhausted or self.screen_budget_end:
            return True
        return drawn >= (self.initial_screen or self.initial_trials)

    def initial_started(self) -> bool:
        """Every phase-1 trial has started (some may still be training): with a screened
        phase 1, the continuations of its best too."""
        return self.initial_drawn() and self.next_initial_continuation() is None

    def initial_chosen(self) -> list[TrialRecord]:
        """A screened phase 1's trials to train fully, once all have settled (none before,
        or without one): the ``initial_trials`` that trained furthest, lowest window mean
        there first. Usually those are the best that reached ``early_steps``; screening is
        asynchronous, so when each trial did worse than all before it only the first gets
        there, and the best screened out at the last rung fill in."""
        initial = self.records.by_role("initial")
        if not self.initial_screen or any(r.running for r in initial):
            return []

        def furthest_best(record: TrialRecord) -> tuple[int, float]:
            # A report past early_steps (a loop that did not stop) names no early window.
            steps = min(record.steps, self.steps.early_steps)
            return -steps, record.early[steps // self.steps.window - 1]

        complete = [r for r in initial if r.status == "complete"]
        # A screen that holds the whole space leaves nothing to explore: its other trials
        # are the candidates phase 4 would have continued (top_k more, budget allowing).
        kept = self.initial_trials + (self.top_k if self.screen_covers_space() else 0)
        return sorted(complete, key=furthest_best)[:kept]

    def screen_covers_space(self) -> bool:
        """A screened phase 1 drew every configuration of the search space."""
        drawn = len(self.records.by_role("initial"))
        grids = self.grids
        return bool(self.initial_screen) and (
            self.screen_exhausted or (bool(grids) and drawn >= space_size(grids))
        )

    def next_initial_continuation(self) -> TrialRecord | None:
        """The next chosen phase-1 trial (:meth:`initial_chosen`) to continue, if any: beyond
        ``initial_trials`` only while the search budget pays for it."""
        chosen = self.initial_chosen()
        for index, record in enumerate(chosen):
            if self.records.continuation_of(record.trial_id) is not None:
                continue
            steps = self.steps.full_steps - min(record.steps, self.steps.early_steps)
            if index >= self.initial_trials and not self.affords(steps):
                return None
            return record
        return None

    def next_iteration(self) -> int:
        """The exploration iteration of the next explored configuration (1-based)."""
        return len(self.records.by_role("explore")) + 1

    def draw_value(self, grid: ValueGrid, uniform: bool, keep_fixed: bool = True) -> Value:
        """One hyperparameter's value for a new configuration.

        ``uniform``: every value equally likely (phase 1); else from the probabilities, with
        a fixed value kept unless ``keep_fixed`` is False.
        """
        if not uniform and keep_fixed and grid.name in self.fixed:
            return self.fixed[grid.name].value
        p = None if uniform else self.probabilities[grid.name]
        return grid.values[int(self.rng.choice(len(grid), p=p))]

    def next_continuation(self) -> TrialRecord | None:
        """The best-predicted target not continued yet, until top_k targets are continued.

        With refit_predictor the targets' predictions change as real results arrive, so the
        order is decided anew each time, among the targets chosen when phase 4 began.
        """
        targets = [self.records[t] for t in self.targets]
        waiting = [r for r in targets if self.records.continuation_of(r.trial_id) is None]
        if not waiting:
            return None
        if len(targets) - len(waiting) >= self.top_k and (
            self.budget_steps is None
            or not self.affords(self.steps.full_steps - self.steps.early_steps)
        ):
            return None
        return min(waiting, key=lambda r: r.predicted)

    # ------------------------------------------------------------------ phases

    def exploration_over(self) -> bool:
        if self.exploration_end is None:
            explored = len(self.records.by_role("explore"))
            if explored >= self.max_iterations and not self.iterations_by_budget:
                self.end_exploration(END_MAX_ITERATIONS)
            elif self.grids and all(grid.name in self.fixed for grid in self.grids):
                self.end_exploration(END_ALL_FIXED)
        return self.exploration_end is not None

    def end_exploration(self, reason: str) -> None:
        self.exploration_end = reason
        explored = len(self.records.by_role("explore"))
        self._say(f"exploration ends after {explored} iterations: {reason}")

    def start_exploration(self) -> None:
        """Phase 2: m and M, the predictor (tuned once), then the first allocation."""
        phase1 = [r for r in self.records if self.records.in_phase1(r)]
        finals = sorted({r.real_final for r in self.records.phase1_networks()})
        failed = sum(r.failed for r in phase1)
        # Only the paper's range normalisation uses m and M: the rank rule takes equal ones.
        needed = 2 if self.allocation.normalisation == "range" else 1
        if len(finals) < needed:
            raise FatalSearchError(
                f"phase 1 produced {len(finals)} distinct finite final losses ({failed} of "
                f"{len(phase1)} trials failed or diverged); the reward needs the lowest and "
                f"highest to differ. {self._more_phase1_networks()}, or narrow the search "
                "space to values that train (e.g. smaller learning rates)"
            )
        self.bounds = (finals[0], finals[-1])
        # Failed trials never train the predictor: their final loss is unknown.
        self.predictor_trials = self.initial_predictor_trials()
        X, y = self.training_set(self.predictor_trials)
        if len(y) < 2:
            raise FatalSearchError(
                f"only {len(y)} phase-1 trials have a final loss and a complete early curve "
                f"({failed} of {len(phase1)} failed or diverged); the predictor needs at "
                f"least 2. {self._more_phase1_networks()}, or narrow the search space to "
                "values that train"
            )
        if hasattr(self.predictor, "tune") and len(y) < self.min_tuning_networks:
            self._say(
                f"phase 2: {len(y)} phase-1 networks are too few to tune the predictor by "
                f"cross-validation (min_tuning_networks={self.min_tuning_networks}); it keeps "
                "its default settings"
            )
        elif hasattr(self.predictor, "tune"):
            self._say(
                f"phase 2: tuning the predictor on {len(y)} phase-1 networks "
                f"({self.tuning_trials} Optuna trials per model; workers wait meanwhile)"
            )
            order = self.rng.permutation(len(y))
            train = order[: max(2, round(0.8 * len(y)))]
            self.predictor.tune(X[train], y[train], n_trials=self.tuning_trials)
            self.predictor_params = self.predictor.get_params(deep=False)
        self.fit_predictor()
        self.predict_waiting(self.records.by_role("initial"))
        self.phase = "explore"
        self.allocate()

    def _more_phase1_networks(self) -> str:
        """How the user gets more phase-1 networks, with the arguments this search takes."""
        if self.budget_steps is None:
            return "Increase initial_trials"
        return (
            f"Raise search_budget (phase 1 trains a fifth of it, here {self.initial_trials} "
            "networks)"
        )

    def ranked_explored(self) -> list[TrialRecord]:
        """Explored configurations known by a prediction, best predicted first."""
        explored = [
            r
            for r in self.records.by_role("explore")
            if r.status == "complete" and r.predicted is not None
        ]
        return sorted(explored, key=lambda r: r.predicted)

    def candidate_pool(self) -> int:
        return self.top_k * (REFIT_CANDIDATE_FACTOR if self.refit_predictor else 1)

    def start_finalize(self) -> None:
        """Phase 4 begins: the best-predicted explored configurations become the targets."""
        # A search extended after it was done released the checkpoints of its old candidates
        # that were never continued; those can no longer be targets.
        resumable = [
            r
            for r in self.ranked_explored()
            if self.records.continuation_of(r.trial_id) is not None or r.trial_id not in self.pruned
        ]
        # In an extended search, continuations the new ranking puts outside the top_k do
        # not hold places of it: the best-predicted top_k are continued.
        ranked = [
            r
            for i, r in enumerate(resumable)
            if i < self.top_k or self.records.continuation_of(r.trial_id) is None
        ]
        self.targets = [r.trial_id for r in ranked[: self.candidate_pool()]]
        continued = sum(self.records.continuation_of(t) is not None for t in self.targets)
        waiting = len(self.targets) - continued
        released = [r for r in self.ranked_explored() if r.trial_id in self.pruned]
        if continued + waiting < self.top_k and any(
            self.records.continuation_of(r.trial_id) is None for r in released
        ):
            self._say(
                f"phase 4 can continue {waiting} more candidates, not the {self.top_k - continued} "
                f"top_k={self.top_k} asks for: the early checkpoints of the others were "
                "released before; raise max_iterations to explore new candidates"
            )
        self.phase = "finalize"

    def extend(self, saved_max_iterations: int, saved_top_k: int) -> bool:
        """A finished search rerun with a larger max_iterations or top_k goes on; returns
        whether phase 4 must choose its targets again."""
        more_iterations = self.max_iterations > saved_max_iterations
        if more_iterations and self.exploration_end in (END_MAX_ITERATIONS, END_BUDGET):
            self.exploration_end = None
            if self.phase in ("finalize", "done"):
                self.phase = "explore"
        return self.phase == "done" and (more_iterations or self.top_k > saved_top_k)

    # ------------------------------------------------------------------ results

    def conclude(self, record: TrialRecord) -> None:
        """Settles a record whose run completed: real, predicted or diverged."""
        if record.diverged_at is not None:
            record.status = "failed"
            record.failure = f"diverged at step {record.diverged_at}"
        elif record.real_final is not None:
            record.status = "complete"
        elif self.stops_early(record) and record.screened_at is not None:
            record.status = "complete"  # screened out: known by its rung's window mean
        elif record.role == "initial" and self.initial_screen and record.early_complete:
            record.status = "complete"  # predicted once phase 2 has fitted the predictor
        elif record.role == "explore" and record.early_complete:
            self.ensure_predictor()
            (predicted,) = self.predict_finals([(record.values, record.early)])
            record.predicted = float(predicted)
            record.status = "complete"
        else:
            record.status = "failed"
            record.failure = (
                f"ended after {record.steps} steps without the reports its phase needs (was it "
                "run by a PredictiveTuner, or did its data run out?)"
            )

    def fail(self, record: TrialRecord, message: str | None) -> bool:
        """Settles a running record whose trial failed for good (``message``: the error);
        returns whether it did."""
        if not record.running:
            return False
        record.status = "failed"
        record.failure = record.failure or first_line(message)
        self._record_changed(record)
        return True

    def settled(self, record: TrialRecord) -> None:
        """What a settled record changes: explored ones re-allocate the probabilities, real
        continuations refit the predictor (with refit_predictor)."""
        if record.role == "explore":
            self.allocate()
        elif (
            record.role == "continuation"
            and self.refit_predictor
            and record.is_real
            and self.phase != "initial"  # phase 1's own continuations: no predictor yet
        ):
            self.refit_with_real_results()

    def entries(self) -> list[tuple[dict, float]]:
        """(configuration, loss) of every settled phase-1 and explored record.

        An explored configuration that was continued counts with its measured loss; a failed
        one, or one whose continuation failed, with the worst loss (M for the paper's range
        normalisation, the worst rank else); a screened-out one with
        :func:`~kt_predictive.screening.rung_estimate` from the fully trained networks' curves.
        """
        worst = self.bounds[1] if self.allocation.normalisation == "range" else math.inf
        curves = [(r.early, r.real_final) for r in self.records if r.is_real]
        entries = []
        for record in self.records:
            if record.role == "continuation" or record.running:
                continue
            continuation = self.records.continuation_of(record.trial_id)
            if continuation is not None and continuation.is_real:
                loss = continuation.real_final
            elif continuation is not None and continuation.failed:
                loss = worst  # it diverged when trained on: its prediction no longer counts
            elif record.screened_out:
                index = record.screened_at // self.steps.window - 1
                loss = rung_estimate(record.early[index], curves, index)
            else:
                loss = record.loss() if not record.failed else worst
            entries.append((record.values, loss if loss is not None else worst))
        return entries

    def allocate(self) -> None:
        """Algorithm 2.2 on every settled record, then fixing of values at their threshold."""
        low, high = self.bounds
        entries = self.entries()
        probabilities = self.allocation.probabilities(self.grids, entries, low, high)
        self.probabilities = {name: [float(p) for p in ps] for name, ps in probabilities.items()}
        iteration = sum(r.settled for r in self.records.by_role("explore"))
        self.history.append(
            {"iteration": iteration, "probabilities": copy.deepcopy(self.probabilities)}
        )
        thresholds = self.resolve_thresholds(self.grids)
        fixed_now = newly_fixed(
            self.grids,
            probabilities,
            thresholds,
            self.fixed,
            iteration,
            counts=value_counts(self.grids, entries),
            min_evidence=self.allocation.min_evidence,
            evidence_of=self.allocation.evidence_of,
        )
        for name, fixed in fixed_now.items():
            self._say(f"{name} fixed to {fixed.value} at iteration {iteration}")
        self.fixed.update(fixed_now)

    # ------------------------------------------------------------------ predictor

    def encoder(self) -> FeatureEncoder:
        return FeatureEncoder(self.grids, self.steps.n_windows)

    def training_set(self, trial_ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
        records = [self.records[t] for t in trial_ids]
        X = self.encoder().encode_many([(r.values, r.early) for r in records])
        return X, np.array([r.real_final for r in records], dtype=np.float64)

    def initial_predictor_trials(self) -> list[str]:
        return [r.trial_id for r in self.records.phase1_networks() if r.early_complete]

    def fit_predictor(self) -> None:
        if self.predictor_params is not None:
            self.predictor.set_params(**self.predictor_params)
        self.predictor.fit(*self.training_set(self.predictor_trials))
        self._predictor_fitted = True

    def ensure_predictor(self) -> None:
        # After a reload the predictor is refitted from the stored records and parameters.
        if not self._predictor_fitted:
            self.fit_predictor()

    def refit_with_real_results(self) -> None:
        """Adds every measured continuation to the predictor's data and re-predicts the
        explored configurations not continued yet."""
        continued = [
            r.trial_id
            for r in self.records.by_role("continuation")
            if r.is_real and r.early_complete
        ]
        self.predictor_trials = self.predictor_trials + [
            t for t in continued if t not in self.predictor_trials
        ]
        self.fit_predictor()
        self.predict_waiting(self.records.by_role("explore"))

    def predict_finals(self, rows: list[tuple[dict, list[float]]]) -> np.ndarray:
        """Predicted final losses of ``(values, early window means)`` rows, on the side of 0
        that every final the predictor learnt from is on, in the same order
        (:func:`~kt_predictive.predictor.keep_sign`): a regressor extrapolates past what a
        loss can take."""
        predicted = np.asarray(self.predictor.predict(self.encoder().encode_many(rows)), float)
        finals = [self.records[t].real_final for t in self.predictor_trials]
        return keep_sign(predicted, finals)

    def predict_waiting(self, records: list[TrialRecord]) -> None:
        """(Re-)predicts those of ``records`` that reached ``early_steps``, are settled with
        no real final loss and no continuation (a screened phase 1's other trials, explored
        ones waiting for phase 4)."""
        waiting = [
            r
            for r in records
            if r.status == "complete"
            and r.real_final is None
            and r.early_complete
            and self.records.continuation_of(r.trial_id) is None
        ]
        if waiting:
            rows = [(r.values, r.early) for r in waiting]
            for record, predicted in zip(waiting, self.predict_finals(rows), strict=True):
                record.predicted = float(predicted)
                self._record_changed(record)

    @property
    def predictor_report(self) -> dict | None:
        """MAE, its std and R² of each predictor part over random splits of phase 1.

        Computed on first access (outside the search's critical path), then kept.
        """
        if self._predictor_report is None and self.predictor_trials:
            X, y = self.training_set(self.initial_predictor_trials())
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

    def why_no_predictor_report(self) -> str | None:
        """Why :attr:`predictor_report` is ``None``, in one sentence (``None`` if it is not)."""
        if self.predictor_report is not None:
            return None
        if not self.predictor_trials:
            return (
                "the predictor report is computed once the predictor is fitted, between "
                f"phases 1 and 3; this search is in phase {self.phase!r} and has not fitted it"
            )
        if not hasattr(self.predictor, "evaluate_splits"):
            return (
                f"the predictor report needs a predictor with evaluate_splits (such as "
                f"HybridPredictor); {type(self.predictor).__name__} has none"
            )
        if not self.report_splits:
            return "report_splits=0 turns the predictor report off; give it a number of splits"
        networks = len(self.initial_predictor_trials())
        return (
            f"the predictor report needs at least {report_test_size(networks) + 3} phase-1 "
            f"networks (a test split and three to fit on); this search has {networks}"
        )

    # ------------------------------------------------------------------ checkpoints

    def checkpoints_needed(self) -> set[str]:
        """Explored trials whose early checkpoint may still be continued (in a finished
        search, the targets not continued: raising top_k continues them)."""
        if self.phase == "done":
            pool = self.targets
        elif self.phase == "explore":
            pool = [r.trial_id for r in self.ranked_explored()[: self.candidate_pool()]]
        elif self.next_continuation() is not None:
            pool = self.targets
        else:
            pool = []  # every target has started: only running continuations need a parent
        keep = {t for t in pool if self.records.continuation_of(t) is None}
        keep |= {r.parent_id for r in self.records.running("continuation")}
        return keep

    def release_checkpoints(self) -> list[str]:
        """The explored (and screened phase-1) trials whose early checkpoint can no longer be
        continued, released now (each once): their training states may be deleted."""
        keep = self.checkpoints_needed()
        released = [
            r.trial_id
            for r in self.records
            if self.stops_early(r)
            # A screened phase 1 chooses which of its trials to continue when it is over.
            and (r.role == "explore" or self.phase != "initial")
            and r.settled
            and r.trial_id not in keep
            and r.trial_id not in self.pruned
        ]
        self.pruned.update(released)
        return released

    def release_parent(self, continuation: TrialRecord) -> list[str]:
        """A settled continuation's parent, released now (once): its early checkpoint has
        been continued."""
        parent = continuation.parent_id
        if parent is None or parent in self.pruned:
            return []
        self.pruned.add(parent)
        return [parent]

    # ------------------------------------------------------------------ state

    def settings(self) -> dict:
        """The settings that give recorded results their meaning (with the oracle's
        ``objective``: :data:`FIXED_SETTINGS` and :data:`SEARCH_SETTINGS`)."""
        lengths = self.steps
        return {
            "full_steps": lengths.full_steps,
            "early_steps": lengths.early_steps,
            "window": lengths.window,
            "final_window": lengths.final_window,
            "initial_trials": self.initial_trials,
            "initial_screen": self.initial_screen,
            "allocation": self.allocation.to_json(),
            "reduction_factor": self.reduction_factor,
            "final_share": self.schedule.final_share,
            "screen_within_initial_share": self.screening._screen_within_initial_share,
            "initial_screen_halvings": self.screening._initial_screen_halvings,
            **self.predictor_settings.to_json(),
        }

    def state(self, grids: list[ValueGrid]) -> dict:
        """The decisions, as saved in ``oracle.json`` (records are saved per trial); ``grids``
        is the search space (empty before it is known)."""
        return {
            "max_iterations": self.max_iterations,
            "top_k": self.top_k,
            # The values behind each probability vector, for reports that read this file.
            "grids": {grid.name: list(grid.values) for grid in grids},
            "thresholds": self.resolve_thresholds(grids) if grids else {},
            "phase": self.phase,
            # Records live in their trial folders; this list says which belong to the search.
            "trial_ids": list(self.records.records),
            "bounds": list(self.bounds) if self.bounds else None,
            "probabilities": self.probabilities,
            "history": self.history,
            "fixed": {name: [fixed.value, fixed.iteration] for name, fixed in self.fixed.items()},
            "exploration_end": self.exploration_end,
            "screen_exhausted": self.screen_exhausted,
            "screen_budget_end": self.screen_budget_end,
            "targets": self.targets,
            "pruned": sorted(self.pruned),
            "predictor_trials": self.predictor_trials,
            "predictor_params": self.predictor_params,
            "predictor_report": self._predictor_report,
            "rng": self.rng.bit_generator.state,
        }

    def check_saved(
        self, saved: dict, current: dict, declared: list[ValueGrid] | None, where: object
    ) -> None:
        """Refuses a saved :meth:`state` (in folder ``where``) of another state version, or
        saved with other settings or another search space than ``current`` and ``declared``."""
        if saved.get("version") != STATE_VERSION:
            raise FatalSearchError(
                f"{where} holds a search saved by an older kt_predictive (state "
                f"version {saved.get('version', 1)}, this one reads {STATE_VERSION}); finish it "
                "with kt-predictive 0.1, or start over with a new project_name or overwrite=True"
            )
        changed = self.changed_settings(saved, current, declared)
        if changed:
            raise FatalSearchError(
                f"the project in {where} was searched with other settings ("
                + "; ".join(changed)
                + "). Continue it with the same settings, or start over with a new "
                "project_name or overwrite=True"
            )

    @staticmethod
    def changed_settings(
        saved: dict, current: dict, declared: list[ValueGrid] | None = None
    ) -> list[str]:
        """What differs between a saved :meth:`state` (with its ``settings``) and the current
        settings and declared space, one item each."""
        settings = saved["settings"]
        # A setting added to the allocation rule after the search was saved: the search
        # continues with its value (nothing recorded depends on it yet).
        saved_rule = settings.get("allocation")
        if isinstance(saved_rule, dict):
            settings["allocation"] = {**current["allocation"], **saved_rule}
        # Searches saved before phase 1 could be screened had none.
        settings.setdefault("initial_screen", 0)
        changed = [
            f"{key}: saved {settings.get(key)!r}, now {current[key]!r}"
            for key in FIXED_SETTINGS
            if settings.get(key) != current[key]
        ]
        changed += [
            f"{key}: saved {settings[key]!r}, now {current[key]!r}"
            for key in SEARCH_SETTINGS
            if key in settings and settings[key] != current[key]
        ]
        if declared is not None and saved["grids"]:
            values = {g.name: list(g.values) for g in declared}
            if values != saved["grids"]:
                changed.append("search space: " + describe_change(saved["grids"], values))
        return changed

    def restore(self, saved: dict, records: RecordBook) -> None:
        """The decisions of :meth:`state`, with the records it lists."""
        self.phase = saved["phase"]
        self.records = records
        self.bounds = tuple(saved["bounds"]) if saved["bounds"] else None
        self.probabilities = saved["probabilities"]
        self.history = saved["history"]
        self.fixed = {
            name: FixedValue(value, iteration)
            for name, (value, iteration) in saved["fixed"].items()
        }
        self.exploration_end = saved["exploration_end"]
        self.screen_exhausted = saved.get("screen_exhausted", False)  # saved before it existed
        self.screen_budget_end = saved.get("screen_budget_end", False)
        self.targets = saved["targets"]
        self.pruned = set(saved["pruned"])
        self.predictor_trials = saved["predictor_trials"]
        self.predictor_params = saved["predictor_params"]
        self._predictor_report = saved["predictor_report"]
        self._predictor_fitted = False
        self.rng.bit_generator.state = saved["rng"]

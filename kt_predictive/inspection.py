"""What a user reads of a predictive search, whether it runs or has finished.

:class:`SearchView` is the read-only side of :class:`~kt_predictive.PredictiveOracle`: the
settings, the phase, the probabilities and fixed values, the records, the predictor report
and the best trials, all from the oracle's :class:`~kt_predictive.decisions.SearchDecisions`
(``self._decisions``) and keras-tuner's trials (``self.trials``).
"""

from __future__ import annotations

import copy
import warnings

from kt_predictive.records import TrialRecord, training_steps
from kt_predictive.space import ValueGrid, value_grids


def _decided(name: str, doc: str) -> property:
    return property(lambda self: getattr(self._decisions, name), doc=doc)


class SearchView:
    """The inspection methods of :class:`~kt_predictive.PredictiveOracle` (a mixin)."""

    steps = _decided("steps", "The :class:`TrainingSteps` of every trial.")
    schedule = _decided("schedule", "The :class:`Schedule` as given.")
    screening = _decided("screening", "The :class:`Screening` as given.")
    reduction_factor = _decided("reduction_factor", "Screening's η (None: no rungs).")
    initial_trials = _decided("initial_trials", "Phase-1 networks trained fully.")
    initial_screen = _decided(
        "initial_screen", "Configurations a screened phase 1 draws (0: phase 1 is not screened)."
    )
    max_iterations = _decided("max_iterations", "Exploration trials at most.")
    top_k = _decided("top_k", "Explored configurations continued in phase 4.")
    allocation = _decided("allocation", "The :class:`AllocationRule`.")
    predictor = _decided("predictor", "The performance predictor.")
    refit_predictor = _decided("refit_predictor", "Whether phase 4 refits the predictor.")
    tuning_trials = _decided("tuning_trials", "Optuna trials per model in phase 2.")
    min_tuning_networks = _decided("min_tuning_networks", "Fewest networks to tune on.")
    report_splits = _decided("report_splits", "Random splits of the predictor report.")
    phase = _decided("phase", '``"initial"``, ``"explore"``, ``"finalize"`` or ``"done"``.')
    exploration_end = _decided("exploration_end", "Why exploration ended, if it did.")
    loss_bounds = _decided("bounds", "(m, M): the lowest and highest final losses of phase 1.")

    @property
    def predictor_report(self) -> dict | None:
        """MAE, its std and R² of each predictor part over random splits of phase 1, computed
        when first read; ``None``, with a warning that says why, before phase 2 or when the
        settings leave it out."""
        report = self._decisions.predictor_report
        if report is None:
            warnings.warn(self._decisions.why_no_predictor_report(), stacklevel=2)
        return report

    @property
    def worker_timeout(self) -> float | None:
        return self.liveness.timeout

    def probabilities(self) -> dict[str, dict]:
        """The current probability of every value of every hyperparameter."""
        probabilities = self._decisions.probabilities
        return {
            grid.name: dict(zip(grid.values, probabilities[grid.name], strict=True))
            for grid in self.grids
            if grid.name in probabilities
        }

    def probability_history(self) -> list[dict]:
        """``[{"iteration": t, "probabilities": {hp: [p per value]}}]``, t = 0 after phase 1."""
        return copy.deepcopy(self._decisions.history)

    @property
    def fixed_values(self) -> dict:
        """``{hp: value}`` for every hyperparameter whose value is fixed."""
        return {name: fixed.value for name, fixed in self._decisions.fixed.items()}

    @property
    def fixed_iterations(self) -> dict[str, int]:
        """``{hp: iteration}``: the exploration iteration at which each value got fixed."""
        return {name: fixed.iteration for name, fixed in self._decisions.fixed.items()}

    def records(self) -> list[TrialRecord]:
        """Every trial's :class:`TrialRecord`, in creation order (copies)."""
        return [copy.deepcopy(r) for r in self._decisions.records]

    @property
    def grids(self) -> list[ValueGrid]:
        """The value grid of every hyperparameter of the search space."""
        if self._grids is None:
            self._grids = value_grids(self.hyperparameters)
            self._decisions.resolve_thresholds(self._grids)
        return self._grids

    def training_steps(self) -> int:
        """Optimizer steps this search trained, over all its trials (a continuation's own
        steps only, not its parent's again)."""
        return training_steps(self._decisions.records)

    def checkpoints_needed(self) -> set[str]:
        """Explored trials whose early checkpoint may still be continued."""
        return self._decisions.checkpoints_needed()

    def best_finalized_trial(self):
        """The phase-4 candidate (an explored configuration continued to the full budget)
        with the lowest real final loss: the paper's winner. ``None`` when none has one."""
        book = self._decisions.records
        finalized = [r for r in book.real() if r.role == "continuation" and not book.in_phase1(r)]
        return self.trials[finalized[0].trial_id] if finalized else None

    def get_best_trials(self, num_trials=1):
        """The best trials by **real** final loss, from any phase (predictions never count)."""
        return [self.trials[r.trial_id] for r in self._decisions.records.real()[:num_trials]]

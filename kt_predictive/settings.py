"""The settings of a predictive search, one frozen group per concept, each checked once.

- :class:`~kt_predictive.budget.TrainingSteps`: how long trials train (full, early, windows);
- :class:`Schedule`: how many trials each phase gets, from one ``search_budget`` or
  explicit counts;
- :class:`Screening`: successive-halving rungs in exploration (``reduction_factor``) and a
  screened phase 1 (``initial_screen``);
- :class:`~kt_predictive.allocation.AllocationRule`: how records become probabilities and
  when a value gets fixed;
- :class:`PredictorSettings`: the performance predictor and how it is tuned and refitted.

:func:`plan` resolves every ``"auto"`` and sizes the phases: the one place where the
settings become the numbers a search runs with (:class:`Plan`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from kt_predictive.budget import TrainingSteps
from kt_predictive.errors import SearchError
from kt_predictive.schedule import (
    FINAL_SHARE,
    PAPER_SIZES,
    resolve_initial_screen,
    size_phases,
)
from kt_predictive.screening import check_reduction_factor, resolve_reduction_factor


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Schedule:
    """How many trials each phase gets: sized from ``search_budget``, or given as counts.

    Attributes:
        search_budget: Total training in full-training equivalents (networks trained for
            ``full_steps``); sizes ``initial_trials``, ``max_iterations`` and ``top_k``
            (:func:`~kt_predictive.schedule.size_phases`), and with it, phase 4 continues
            more candidates while the budget allows. Give either this or the counts.
        initial_trials: Configurations trained to ``full_steps`` in phase 1 (paper: 100).
        max_iterations: Exploration trials in phase 3 at most (paper: 400, then 800).
        top_k: Explored configurations trained on to ``full_steps`` in phase 4 (paper: 20).
        final_share: With ``search_budget``, the share of it that continues candidates.

    Counts left out take the paper's (:meth:`paper`). Raising ``max_iterations`` or ``top_k``
    and rerunning extends a finished search.

    Example:
        >>> Schedule(search_budget=30).sized
        True
        >>> Schedule(initial_trials=10, max_iterations=40, top_k=5).sized
        False
    """

    search_budget: float | None = None
    initial_trials: int | None = None
    max_iterations: int | None = None
    top_k: int | None = None
    final_share: float = FINAL_SHARE

    def __post_init__(self) -> None:
        budget = self.search_budget
        if budget is not None:
            number = isinstance(budget, int | float) and not isinstance(budget, bool)
            if not (number and math.isfinite(budget) and budget > 0):
                raise SearchError(
                    f"search_budget must be a positive number of full trainings (got {budget!r})"
                )
            if any(c is not None for c in self.counts):
                raise SearchError(
                    "give either search_budget (the oracle sizes its phases) or initial_trials, "
                    "max_iterations, top_k (and a number for Screening's initial_screen), not both"
                )
        for name, minimum in (("initial_trials", 2), ("max_iterations", 0), ("top_k", 0)):
            value = getattr(self, name)
            if value is not None and not (_is_int(value) and value >= minimum):
                raise SearchError(f"{name} must be an integer >= {minimum} (got {value!r})")
        share = self.final_share
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share < 1:
            raise SearchError(
                f"final_share must be a number in (0, 1) (got {share!r}): the share of "
                "search_budget that continues candidates, e.g. 0.5"
            )

    @property
    def counts(self) -> tuple[int | None, int | None, int | None]:
        return (self.initial_trials, self.max_iterations, self.top_k)

    @property
    def sized(self) -> bool:
        """Whether ``search_budget`` sizes the phases."""
        return self.search_budget is not None

    @classmethod
    def paper(cls, max_iterations: int = PAPER_SIZES.max_iterations) -> Schedule:
        """The paper's 100 / 400 / 20 networks (800 explored for its Table 5)."""
        return cls(
            initial_trials=PAPER_SIZES.initial_trials,
            max_iterations=max_iterations,
            top_k=PAPER_SIZES.top_k,
        )


@dataclass(frozen=True)
class Screening:
    """Which trials are screened before they train on.

    Attributes:
        reduction_factor: Screening's η (:mod:`kt_predictive.screening`): an explored trial
            goes on at the early windows ``window·η^j`` below ``early_steps`` only if its
            window mean is among the best 1/η recorded there, so more configurations are
            screened for the same training. ``None`` trains every explored trial to
            ``early_steps`` (the paper). ``"auto"``: η = 3 for a ``search_budget`` below 20
            full trainings, else None.
        initial_screen: A screened phase 1: draw this many uniform configurations, screen
            them as explored ones are (to ``early_steps`` at most), and continue the best
            ``initial_trials`` of them (by their last early window) to ``full_steps``.
            ``None`` or ``False``: phase 1 trains ``initial_trials`` random configurations
            fully (the paper). ``"auto"``: screened with a ``search_budget`` (sized by
            :func:`~kt_predictive.schedule.size_phases`), not without one; ``True`` screens a
            budget-sized search; a number goes with explicit counts.

    Example:
        >>> Screening.paper()
        Screening(reduction_factor=None, initial_screen=None)
    """

    reduction_factor: int | str | None = "auto"
    initial_screen: bool | int | str | None = "auto"
    # Private sizing variants of a screened phase 1, for comparing schedules
    # (size_phases' screen_within_initial_share and initial_screen_halvings).
    _screen_within_initial_share: bool = dataclasses.field(default=False, repr=False)
    _initial_screen_halvings: int | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.reduction_factor != "auto":
            check_reduction_factor(self.reduction_factor)
        screen = self.initial_screen
        named = screen is None or screen == "auto" or isinstance(screen, bool)
        if not named and not (_is_int(screen) and screen >= 0):
            raise SearchError(
                "initial_screen must be a number of configurations, True or False (with "
                f"search_budget), 'auto' or None (got {screen!r})"
            )
        halvings = self._initial_screen_halvings
        if halvings is not None and not (_is_int(halvings) and halvings >= 1):
            raise SearchError(
                f"initial_screen_halvings must be an integer >= 1 or None (got {halvings!r})"
            )

    @classmethod
    def paper(cls) -> Screening:
        """No screening: every explored trial trains to ``early_steps``, phase 1 fully."""
        return cls(reduction_factor=None, initial_screen=None)


@dataclass(frozen=True)
class PredictorSettings:
    """The performance predictor, and how it is tuned and refitted.

    Attributes:
        predictor: A scikit-learn regressor on :class:`~kt_predictive.predictor.FeatureEncoder`
            rows; ``None``: a :class:`~kt_predictive.predictor.HybridPredictor` (SVR +
            Random Forest) that learns the improvement over the last early window, seeded
            with the search's seed. If it has ``tune``, it is tuned once on 80% of the
            phase-1 trials; if it has ``evaluate_splits``, ``predictor_report`` evaluates it.
        refit_predictor: Refit the predictor with every real result of phase 4 and re-rank
            the remaining candidates (the paper's future work).
        tuning_trials: Optuna trials per model when tuning the predictor (~1 s each for 100
            networks on one core, while every worker waits).
        min_tuning_networks: Fewer phase-1 networks than this are too few to tune the
            predictor by 5-fold cross-validation; it keeps its defaults then.
        report_splits: Random splits of the predictor report (the paper's Table 2 uses 1000).

    Example:
        >>> PredictorSettings(tuning_trials=5).refit_predictor
        True
    """

    predictor: Any = None
    refit_predictor: bool = True
    tuning_trials: int = 30
    min_tuning_networks: int = 20
    report_splits: int = 100

    def __post_init__(self) -> None:
        if not isinstance(self.refit_predictor, bool):
            raise SearchError(
                f"refit_predictor must be True or False (got {self.refit_predictor!r})"
            )
        for name, minimum in (
            ("tuning_trials", 1),
            ("min_tuning_networks", 2),
            ("report_splits", 0),
        ):
            value = getattr(self, name)
            if not (_is_int(value) and value >= minimum):
                raise SearchError(f"{name} must be an integer >= {minimum} (got {value!r})")
        if self.predictor is not None and not callable(getattr(self.predictor, "fit", None)):
            raise SearchError(
                f"predictor must be a scikit-learn regressor with fit and predict (got "
                f"{type(self.predictor).__name__})"
            )

    @classmethod
    def paper(cls, seed: int | None = None, **overrides) -> PredictorSettings:
        """HYB predicting the final loss, fitted on phase 1 only (no refit); ``overrides``
        replace any field (e.g. ``tuning_trials``)."""
        from kt_predictive.predictor import HybridPredictor

        paper = {
            "predictor": HybridPredictor(random_state=seed, target="final"),
            "refit_predictor": False,
        }
        return cls(**{**paper, **overrides})

    def to_json(self) -> dict:
        """What decides the trials of a search: the predictor's class (not the fitted object)
        and whether phase 4 refits it. The tuning effort and the report may change when a
        search is continued."""
        predictor = self.predictor
        return {
            "predictor": None if predictor is None else _predictor_name(predictor),
            "refit_predictor": self.refit_predictor,
        }


def _predictor_name(predictor) -> str:
    name = f"{type(predictor).__module__}.{type(predictor).__qualname__}"
    target = getattr(predictor, "target", None)
    return name if target is None else f"{name}(target={target!r})"


@dataclass(frozen=True)
class Plan:
    """The numbers a search runs with, from its settings (:func:`plan`).

    Attributes:
        initial_trials, max_iterations, top_k: The phase sizes.
        initial_screen: Configurations a screened phase 1 draws (0: not screened).
        reduction_factor: Screening's η, or None.
        budget_steps: With ``search_budget``, the most steps the search may train; None:
            the counts decide.
    """

    initial_trials: int
    max_iterations: int
    top_k: int
    initial_screen: int
    reduction_factor: int | None
    budget_steps: int | None


def plan(
    steps: TrainingSteps, schedule: Schedule | None = None, screening: Screening | None = None
) -> Plan:
    """Resolves every ``"auto"`` of ``screening`` and sizes the phases of ``schedule``.

    Example:
        >>> steps = TrainingSteps(full_steps=400, early_steps=80, window=20, final_window=80)
        >>> plan(steps, Schedule(search_budget=30))
        Plan(initial_trials=6, max_iterations=56, top_k=13, initial_screen=18, \
reduction_factor=None, budget_steps=12000)
    """
    schedule = Schedule() if schedule is None else schedule
    screening = Screening() if screening is None else screening
    budget = schedule.search_budget
    reduction_factor = resolve_reduction_factor(screening.reduction_factor, budget)
    initial_screen = resolve_initial_screen(screening.initial_screen, budget)
    within = screening._screen_within_initial_share
    halvings = screening._initial_screen_halvings
    if (within or halvings is not None) and not (budget is not None and initial_screen):
        raise SearchError(
            "screen_within_initial_share and initial_screen_halvings size a screened "
            "phase 1 from search_budget: give a search_budget with initial_screen "
            "'auto' or True, or leave them out"
        )
    if budget is not None:
        sizes = size_phases(
            budget,
            steps,
            final_share=schedule.final_share,
            reduction_factor=reduction_factor,
            initial_screen=bool(initial_screen),
            screen_within_initial_share=within,
            initial_screen_halvings=halvings,
        )
        budget_steps = math.floor(budget * steps.full_steps + 1e-9)
        counts = (sizes.initial_trials, sizes.max_iterations, sizes.top_k)
        initial_screen = sizes.initial_screen
    else:
        budget_steps = None
        counts = tuple(
            paper if given is None else given
            for given, paper in zip(
                schedule.counts,
                (PAPER_SIZES.initial_trials, PAPER_SIZES.max_iterations, PAPER_SIZES.top_k),
                strict=True,
            )
        )
    initial_trials, max_iterations, top_k = counts
    if initial_screen and initial_screen < initial_trials:
        raise SearchError(
            f"initial_screen ({initial_screen}) must be at least initial_trials "
            f"({initial_trials}): phase 1 trains the best initial_trials of the "
            "configurations it screens"
        )
    return Plan(
        initial_trials,
        max_iterations,
        top_k,
        int(initial_screen),
        reduction_factor,
        budget_steps,
    )

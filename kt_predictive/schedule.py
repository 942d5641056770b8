"""How many trials each phase gets: from explicit counts, the paper's, or one total budget.

The cost of a search in *full-training equivalents* (one network trained for ``full_steps``)
is ``initial_trials + max_iterations * e + top_k * (1 - e)``, with e = early_steps/full_steps:
phase-1 networks train fully, explored ones to the early budget, and continuations pay only the
steps after their parent's. :func:`size_phases` turns one total into the three counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from kt_predictive.budget import StepBudget
from kt_predictive.errors import SearchError
from kt_predictive.screening import expected_trial_steps, screening_rungs

# Shares of a total budget. Phase 1 gets a fifth (the predictor needs a few full curves, not a
# hundred), chosen before any benchmark ran. Continuations get half: on held-out seeds of the
# AAE surrogate (bench/select_default.py, section default-selection of bench/RESULTS.md) half
# beat 3/10, which beat 1/8; exploration screens configurations at the early budget with
# what is left.
INITIAL_SHARE = 0.2
FINAL_SHARE = 0.5
MIN_INITIAL_TRIALS = 3
MIN_TOP_K = 1


@dataclass(frozen=True)
class PhaseSizes:
    """Trial counts of the three phases that train networks.

    Attributes:
        initial_trials: Phase 1: networks trained fully from uniform draws.
        max_iterations: Phase 3: explored configurations (early budget).
        top_k: Phase 4: explored configurations continued to the full budget.
    """

    initial_trials: int
    max_iterations: int
    top_k: int

    def cost(self, steps: StepBudget, reduction_factor: int | None = None) -> float:
        """What this schedule trains, in full-training equivalents: the most without
        screening, the expected cost with it (:mod:`kt_predictive.screening`)."""
        early = steps.early_steps / steps.full_steps
        explore = expected_trial_steps(steps, reduction_factor) / steps.full_steps
        return self.initial_trials + self.max_iterations * explore + self.top_k * (1 - early)


PAPER_SIZES = PhaseSizes(initial_trials=100, max_iterations=400, top_k=20)
PAPER_STEPS = StepBudget(full_steps=40000, early_steps=6000, window=1000, final_window=500)


def size_phases(
    search_budget: float,
    steps: StepBudget,
    initial_share: float = INITIAL_SHARE,
    final_share: float = FINAL_SHARE,
    reduction_factor: int | None = None,
) -> PhaseSizes:
    """The phase sizes that spend ``search_budget`` full-training equivalents.

    With screening (``reduction_factor``), an explored trial costs its expected steps, and
    only a share η^-r of the explored trials reaches ``early_steps`` (r rungs): ``top_k`` is
    lowered until the explored trials expected to reach it are at least ``top_k``.

    Args:
        search_budget: Total training, in networks trained for ``full_steps``.
        steps: The per-trial step budget.
        initial_share: Share of the budget for phase 1.
        final_share: Share of the budget for phase 4's continuations.
        reduction_factor: Screening's η (:mod:`kt_predictive.screening`), or None.

    Raises:
        ValueError: when the budget cannot pay for the smallest schedule (MIN_INITIAL_TRIALS
            full trainings, MIN_TOP_K continuations and as many explored configurations).

    Example:
        >>> size_phases(30, StepBudget(400, 80, 20, 80))
        PhaseSizes(initial_trials=6, max_iterations=44, top_k=19)
        >>> size_phases(30, StepBudget(400, 80, 20, 80), reduction_factor=3)
        PhaseSizes(initial_trials=6, max_iterations=135, top_k=15)
    """
    early = steps.early_steps / steps.full_steps
    explore = expected_trial_steps(steps, reduction_factor) / steps.full_steps
    reach = (
        1.0
        if reduction_factor is None
        else reduction_factor ** -len(screening_rungs(steps, reduction_factor))
    )
    if not (initial_share > 0 and final_share > 0 and initial_share + final_share < 1):
        raise SearchError(
            f"initial_share ({initial_share}) and final_share ({final_share}) must be positive "
            "and leave a share of the budget for exploration"
        )
    initial = max(MIN_INITIAL_TRIALS, round(initial_share * search_budget))
    top_k = max(MIN_TOP_K, round(final_share * search_budget / (1 - early)))
    # A small budget cannot continue more candidates than it explored: fewer continuations.
    while True:
        left = search_budget - initial - top_k * (1 - early)
        iterations = math.floor(left / explore + 1e-9)
        if iterations * reach >= top_k or top_k == MIN_TOP_K:
            break
        top_k -= 1
    if iterations < top_k:
        smallest = PhaseSizes(MIN_INITIAL_TRIALS, MIN_TOP_K, MIN_TOP_K).cost(steps)
        raise SearchError(
            f"search_budget={search_budget:g} full trainings is too small for a search with "
            f"early_steps/full_steps = {early:.3g}: it needs at least {smallest:.3g} "
            f"({MIN_INITIAL_TRIALS} full trainings, {MIN_TOP_K} explored and continued)"
        )
    return PhaseSizes(initial, iterations, top_k)

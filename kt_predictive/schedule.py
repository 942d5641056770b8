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

    def cost(self, steps: StepBudget) -> float:
        """The most this schedule trains, in full-training equivalents."""
        early = steps.early_steps / steps.full_steps
        return self.initial_trials + self.max_iterations * early + self.top_k * (1 - early)


PAPER_SIZES = PhaseSizes(initial_trials=100, max_iterations=400, top_k=20)
PAPER_STEPS = StepBudget(full_steps=40000, early_steps=6000, window=1000, final_window=500)


def size_phases(
    search_budget: float,
    steps: StepBudget,
    initial_share: float = INITIAL_SHARE,
    final_share: float = FINAL_SHARE,
) -> PhaseSizes:
    """The phase sizes that spend ``search_budget`` full-training equivalents.

    Args:
        search_budget: Total training, in networks trained for ``full_steps``.
        steps: The per-trial step budget.
        initial_share: Share of the budget for phase 1.
        final_share: Share of the budget for phase 4's continuations.

    Raises:
        ValueError: when the budget cannot pay for the smallest schedule (MIN_INITIAL_TRIALS
            full trainings, MIN_TOP_K continuations and as many explored configurations).

    Example:
        >>> size_phases(30, StepBudget(400, 80, 20, 80))
        PhaseSizes(initial_trials=6, max_iterations=44, top_k=19)
    """
    early = steps.early_steps / steps.full_steps
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
        iterations = math.floor(left / early + 1e-9)
        if iterations >= top_k or top_k == MIN_TOP_K:
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

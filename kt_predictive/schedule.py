"""How many trials each phase gets: from explicit counts, the paper's, or one total budget.

The cost of a search in *full-training equivalents* (one network trained for ``full_steps``)
is ``initial_trials + max_iterations * e + top_k * (1 - e)``, with e = early_steps/full_steps:
phase-1 networks train fully, explored ones to the early budget, and continuations pay only the
steps after their parent's. A screened phase 1 (``initial_screen``) instead screens that many
uniform configurations as explored ones are, and continues the best ``initial_trials`` of
them. :func:`size_phases` turns one total into the counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from kt_predictive.budget import TrainingSteps
from kt_predictive.errors import SearchError
from kt_predictive.screening import expected_trial_steps, screening_rungs

# Shares of a total budget. Phase 1 gets a fifth (the predictor needs a few full curves, not a
# hundred), continuations half; exploration screens configurations at the early budget with
# what is left.
INITIAL_SHARE = 0.2
FINAL_SHARE = 0.5
MIN_INITIAL_TRIALS = 3
MIN_TOP_K = 1
# A screened phase 1 without rungs screens this many configurations per network it keeps.
INITIAL_SCREEN_FACTOR = 3


@dataclass(frozen=True)
class PhaseSizes:
    """Trial counts of the three phases that train networks.

    Attributes:
        initial_trials: Phase 1: networks trained fully from uniform draws.
        max_iterations: Phase 3: explored configurations (early budget).
        top_k: Phase 4: explored configurations continued to the full budget.
        initial_screen: With a screened phase 1, the uniform configurations it screens (the
            best ``initial_trials`` of them are continued to the full budget); 0 without.
    """

    initial_trials: int
    max_iterations: int
    top_k: int
    initial_screen: int = 0

    def cost(self, steps: TrainingSteps, reduction_factor: int | None = None) -> float:
        """What this schedule trains, in full-training equivalents: the most without
        screening, the expected cost with it (:mod:`kt_predictive.screening`)."""
        early = steps.early_steps / steps.full_steps
        explore = expected_trial_steps(steps, reduction_factor) / steps.full_steps
        if self.initial_screen:
            initial = self.initial_screen * explore + self.initial_trials * (1 - early)
        else:
            initial = self.initial_trials
        return initial + self.max_iterations * explore + self.top_k * (1 - early)


PAPER_SIZES = PhaseSizes(initial_trials=100, max_iterations=400, top_k=20)
PAPER_STEPS = TrainingSteps(full_steps=40000, early_steps=6000, window=1000, final_window=500)


# The largest budget size_phases tries when it says which budget a schedule needs.
MAX_PROBED_BUDGET = 1000


def size_phases(
    search_budget: float,
    steps: TrainingSteps,
    initial_share: float = INITIAL_SHARE,
    final_share: float = FINAL_SHARE,
    reduction_factor: int | None = None,
    initial_screen: bool = False,
    screen_within_initial_share: bool = False,
    initial_screen_halvings: int | None = None,
) -> PhaseSizes:
    """The phase sizes that spend ``search_budget`` full-training equivalents.

    With screening (``reduction_factor``), an explored trial costs its expected steps, and
    only a share η^-r of the explored trials reaches ``early_steps`` (r rungs): ``top_k`` is
    lowered until the explored trials expected to reach it are at least ``top_k``.

    With ``initial_screen``, phase 1 screens ``initial_trials·η^max(r, 1)`` uniform
    configurations (as successive halving would to keep ``initial_trials``; η = 3 without
    screening) and continues the best ``initial_trials``. Those continuations are paid from
    ``final_share`` (``top_k`` is that many fewer), or, with ``screen_within_initial_share``,
    the whole screened phase 1 costs ``initial_share`` (``initial_trials`` is that many
    fewer).

    Args:
        search_budget: Total training, in networks trained for ``full_steps``.
        steps: The per-trial step budget.
        initial_share: Share of the budget for phase 1.
        final_share: Share of the budget for phase 4's continuations.
        reduction_factor: Screening's η (:mod:`kt_predictive.screening`), or None.
        initial_screen: Whether phase 1 trains the best of a uniform screen fully, rather
            than ``initial_trials`` random configurations.
        screen_within_initial_share: With ``initial_screen``, size phase 1 so that its
            screen and its full trainings together cost ``initial_share``, leaving
            ``final_share`` to continue explored candidates only.
        initial_screen_halvings: With ``initial_screen``, phase 1 screens
            ``initial_trials·η^h`` configurations for h halvings (η = 3 without rungs);
            None: as many as exploration has rungs, at least one.

    Raises:
        ValueError: when the budget cannot pay for the smallest schedule (MIN_INITIAL_TRIALS
            full trainings, MIN_TOP_K continuations and as many explored configurations).

    Example:
        >>> size_phases(30, TrainingSteps(400, 80, 20, 80))
        PhaseSizes(initial_trials=6, max_iterations=44, top_k=19, initial_screen=0)
        >>> size_phases(30, TrainingSteps(400, 80, 20, 80), reduction_factor=3)
        PhaseSizes(initial_trials=6, max_iterations=135, top_k=15, initial_screen=0)
        >>> size_phases(10, TrainingSteps(400, 80, 20, 80), reduction_factor=3, initial_screen=True)
        PhaseSizes(initial_trials=3, max_iterations=31, top_k=3, initial_screen=27)
        >>> size_phases(100, TrainingSteps(400, 80, 20, 80), initial_screen=True,
        ...             screen_within_initial_share=True)
        PhaseSizes(initial_trials=14, max_iterations=154, top_k=62, initial_screen=42)
    """
    arguments = (
        initial_share,
        final_share,
        reduction_factor,
        initial_screen,
        screen_within_initial_share,
        initial_screen_halvings,
    )
    sizes = _sized_phases(search_budget, steps, *arguments)
    if sizes is not None:
        return sizes
    # The whole budgets nearest to it that these settings can size: phase sizes are whole
    # numbers of trials, so a smaller budget can sometimes be sized when this one cannot.
    sized = [b for b in range(1, MAX_PROBED_BUDGET + 1) if _sized_phases(b, steps, *arguments)]
    below = [b for b in sized if b < search_budget]
    above = [b for b in sized if b > search_budget]
    ratio = f"early_steps/full_steps = {steps.early_steps / steps.full_steps:.3g}"
    smallest = f"({MIN_INITIAL_TRIALS} full trainings, {MIN_TOP_K} explored and continued, and "
    smallest += "the screens that pick them)"
    if not sized:
        raise SearchError(
            f"no search_budget up to {MAX_PROBED_BUDGET} full trainings can pay for a search "
            f"with {ratio} and these screening settings {smallest}: its screens cost more "
            "than the budget they are sized from. Turn the phase-1 screen off "
            "(initial_screen=False), screen less (reduction_factor=None), or lower "
            "early_steps"
        )
    if not below:
        raise SearchError(
            f"search_budget={search_budget:g} full trainings is too small for a search with "
            f"{ratio} and these screening settings: it needs at least {above[0]} {smallest}"
        )
    nearest = f"{below[-1]}" + (f" or {above[0]}" if above else "")
    raise SearchError(
        f"search_budget={search_budget:g} full trainings cannot be split into phases with "
        f"{ratio} and these screening settings (their sizes are whole trials and the "
        f"screened explored trials must be able to fill top_k): give {nearest} instead"
    )


def _sized_phases(
    search_budget: float,
    steps: TrainingSteps,
    initial_share: float,
    final_share: float,
    reduction_factor: int | None,
    initial_screen: bool,
    screen_within_initial_share: bool,
    initial_screen_halvings: int | None,
) -> PhaseSizes | None:
    """:func:`size_phases`, or None when the budget cannot pay for the smallest schedule."""
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
    continued = round(final_share * search_budget / (1 - early))
    screen, initial_cost = 0, float(initial)
    if initial_screen:
        halvings = initial_screen_halvings
        if halvings is None:
            halvings = max(len(screening_rungs(steps, reduction_factor)), 1)
        elif not isinstance(halvings, int) or isinstance(halvings, bool) or halvings < 1:
            raise SearchError(
                f"initial_screen_halvings must be an integer >= 1 or None (got {halvings!r})"
            )
        factor = (reduction_factor or INITIAL_SCREEN_FACTOR) ** halvings
        if screen_within_initial_share:
            # Each network phase 1 keeps costs its screen's share and its own continuation.
            per_network = factor * explore + (1 - early)
            initial = max(MIN_INITIAL_TRIALS, round(initial_share * search_budget / per_network))
        else:
            continued -= initial
        screen = initial * factor
        initial_cost = screen * explore + initial * (1 - early)
    top_k = max(MIN_TOP_K, continued)
    # A small budget cannot continue more candidates than it explored: fewer continuations.
    while True:
        left = search_budget - initial_cost - top_k * (1 - early)
        iterations = math.floor(left / explore + 1e-9)
        if iterations * reach >= top_k or top_k == MIN_TOP_K:
            break
        top_k -= 1
    return PhaseSizes(initial, iterations, top_k, screen) if iterations >= top_k else None


def resolve_initial_screen(
    initial_screen: bool | int | str | None, search_budget: float | None
) -> bool | int:
    """What phase 1 screens: with a ``search_budget``, whether it is screened (sized by
    :func:`size_phases`); without one, how many configurations (0: not screened).

    ``"auto"`` screens phase 1 of every search sized by a budget (with rungs where
    exploration has them), and not a search of explicit counts. ``True`` and ``False`` say it
    for a budget-sized search; a number of configurations goes with explicit counts; None is
    False.

    Example:
        >>> resolve_initial_screen("auto", 10), resolve_initial_screen(False, 30)
        (True, False)
        >>> resolve_initial_screen("auto", None), resolve_initial_screen(40, None)
        (0, 40)
    """
    if initial_screen is None:
        initial_screen = False
    if initial_screen == "auto":
        return 0 if search_budget is None else True
    if isinstance(initial_screen, bool):
        if search_budget is None and initial_screen:
            raise SearchError(
                "initial_screen=True sizes a screened phase 1 from search_budget; without a "
                "search_budget give the number of configurations phase 1 screens"
            )
        return initial_screen if search_budget is not None else 0
    if not isinstance(initial_screen, int) or initial_screen < 0:
        raise SearchError(
            "initial_screen must be a number of configurations, True or False (with "
            f"search_budget), 'auto' or None (got {initial_screen!r})"
        )
    if search_budget is not None:
        raise SearchError(
            "give either search_budget (the oracle sizes its phases, initial_screen=True or "
            "False) or initial_trials, max_iterations, top_k and a number for initial_screen, "
            "not both"
        )
    return initial_screen

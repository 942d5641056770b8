"""Screening: explored trials climb rungs of the early budget, and only the best go on.

With a ``reduction_factor`` η, an exploration trial is judged at the end of the early windows
``window``, ``window·η``, ``window·η²``, … below ``early_steps`` (its *rungs*). At a rung it
trains on only if its window mean is among the best 1/η of every window mean recorded at that
rung so far: phase-1 networks (which pass every rung), earlier explored trials and itself.
A trial that reaches ``early_steps`` gets its predicted final loss as before; one stopped at a
rung is *screened out*: it is never a candidate, and the allocation counts it with the loss a
typical phase-1 network went on to reach from the same rung value (:func:`rung_estimate`).

This is successive halving (Jamieson & Talwalkar 2016; asynchronous, as in ASHA, Li et al.
2020) inside the paper's exploration: at the same budget it screens about
``early_steps / expected_trial_steps`` times as many configurations. ``reduction_factor=None``
is the paper's exploration: every trial trains to ``early_steps``.

The default, ``"auto"``, screens only searches sized by a ``search_budget`` below
``SCREENING_BELOW`` full trainings: a first rung of one window stops configurations that
start slowly and finish best, which a small budget must risk to explore enough
configurations and a larger one need not.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence

from kt_predictive.budget import TrainingSteps
from kt_predictive.errors import SearchError

#: The reduction factor of screening: Hyperband's and ASHA's usual η.
REDUCTION_FACTOR = 3
#: ``"auto"`` screens searches whose ``search_budget`` is below this many full trainings.
SCREENING_BELOW = 20


def resolve_reduction_factor(
    reduction_factor: int | str | None, search_budget: float | None
) -> int | None:
    """The η a search uses: ``"auto"`` is REDUCTION_FACTOR for a ``search_budget`` below
    SCREENING_BELOW full trainings and None otherwise (also without a search budget).

    Example:
        >>> resolve_reduction_factor("auto", 10), resolve_reduction_factor("auto", 30)
        (3, None)
        >>> resolve_reduction_factor("auto", None), resolve_reduction_factor(2, 30)
        (None, 2)
    """
    if reduction_factor == "auto":
        small = search_budget is not None and search_budget < SCREENING_BELOW
        return REDUCTION_FACTOR if small else None
    check_reduction_factor(reduction_factor)
    return reduction_factor


def check_reduction_factor(reduction_factor: int | None) -> None:
    """Refuses a reduction factor that is not None or an integer >= 2."""
    if reduction_factor is None:
        return
    if (
        not isinstance(reduction_factor, int)
        or isinstance(reduction_factor, bool)
        or reduction_factor < 2
    ):
        raise SearchError(
            f"reduction_factor must be an integer >= 2, 'auto' (screen budgets below "
            f"{SCREENING_BELOW} full trainings), or None to train every explored trial to "
            f"early_steps (got {reduction_factor!r})"
        )


def screening_rungs(budget: TrainingSteps, reduction_factor: int | None) -> list[int]:
    """The steps below ``early_steps`` at which an explored trial is screened.

    Example:
        >>> screening_rungs(TrainingSteps(400, 60, 10, 40), 3)
        [10, 30]
        >>> screening_rungs(TrainingSteps(400, 60, 10, 40), None)
        []
    """
    check_reduction_factor(reduction_factor)
    if reduction_factor is None:
        return []
    rungs, step = [], budget.window
    while step < budget.early_steps:
        rungs.append(step)
        step *= reduction_factor
    return rungs


def expected_trial_steps(budget: TrainingSteps, reduction_factor: int | None) -> float:
    """Steps an explored trial trains on average when 1/η of the trials pass each rung.

    Rung j (0-based) is reached by a share η^-j of the trials; the steps from one rung to the
    next are paid by those that reached it.

    Example:
        >>> expected_trial_steps(TrainingSteps(400, 60, 10, 40), 3)  # 10 + 20/3 + 30/9
        20.0
    """
    ends = [*screening_rungs(budget, reduction_factor), budget.early_steps]
    if reduction_factor is None:
        return float(budget.early_steps)
    steps, previous = 0.0, 0
    for j, end in enumerate(ends):
        steps += (end - previous) / reduction_factor**j
        previous = end
    return steps


def promoted(value: float, reference: Iterable[float], reduction_factor: int) -> bool:
    """Whether a window mean ``value`` is among the best 1/η of ``reference`` (which holds
    ``value`` itself and every other finite window mean recorded at the same rung).

    It is, when fewer than n/η of the n reference values are strictly lower.

    Example:
        >>> promoted(0.5, [0.5, 0.4, 0.9], 3)  # one of three is lower: 1 < 3/3 is False
        False
        >>> promoted(0.4, [0.5, 0.4, 0.9], 3)
        True
    """
    if not math.isfinite(value):
        return False
    finite = [v for v in reference if math.isfinite(v)]
    lower = sum(v < value for v in finite)
    return lower < len(finite) / reduction_factor


def rung_offset(curves: Sequence[tuple[Sequence[float | None], float]], window_index: int) -> float:
    """The median of (final loss - window mean at ``window_index``) over full curves.

    ``curves`` holds (early window means, real final loss) of fully trained networks; those
    without that window are left out. Returns 0.0 when none has it.
    """
    gaps = [
        final - early[window_index]
        for early, final in curves
        if len(early) > window_index and early[window_index] is not None
    ]
    return statistics.median(gaps) if gaps else 0.0


def rung_estimate(
    value: float, curves: Sequence[tuple[Sequence[float | None], float]], window_index: int
) -> float:
    """The final loss the allocation counts for a trial screened out with window mean
    ``value`` at early window ``window_index`` (0-based): ``value`` plus the median change
    from that window to the final loss among fully trained networks (:func:`rung_offset`).

    Example:
        >>> round(rung_estimate(0.8, [([1.0, 0.7], 0.5), ([0.9, 0.6], 0.3)], 0), 9)  # 0.8 - 0.55
        0.25
    """
    return value + rung_offset(curves, window_index)

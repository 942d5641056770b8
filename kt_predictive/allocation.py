"""Probability allocation (Algorithm 2.2 of the paper) and the performance functions.

For every hyperparameter i and value j, P_i[j] is the sum of the performance scores of all
dataset entries that use value j, normalised over the values of i. The performance score of
an entry is a reward of its final loss x, where m and M are the lowest and highest final
losses of the phase-1 dataset:

- option (a), the paper's: g(x) = exp(-beta (x - m) / (M - m));
- option (b), the original framework's: f(x) = M - x.

A value whose probability reaches the threshold s_i (default 2/|V_i|) is fixed for every later
sample.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from kt_predictive.space import Value, ValueGrid

Reward = Callable[[np.ndarray, float, float], np.ndarray]

THRESHOLD_TOLERANCE = 1e-12


def exponential_reward(loss, low: float, high: float, beta: float = 5.0) -> np.ndarray:
    """The paper's performance function g(x) = exp(-beta (x - m) / (M - m)), eq. (2.2).

    Args:
        loss: Final losses x (scalar or array).
        low: m, the lowest final loss of the phase-1 dataset.
        high: M, the highest final loss of the phase-1 dataset.
        beta: How sharply worse losses are penalised (the paper uses 5).
    """
    if not beta > 0:
        raise ValueError(f"beta must be > 0 (got {beta}); the paper uses beta=5")
    if not high > low:
        raise ValueError(f"the loss range needs M > m (got m={low}, M={high})")
    loss = np.asarray(loss, dtype=float)
    return np.exp(-beta * (loss - low) / (high - low))


def linear_reward(loss, low: float, high: float) -> np.ndarray:
    """The original framework's performance function f(x) = M - x, eq. (3.1).

    ``low`` is unused; it is accepted so both rewards share a signature. A predicted loss
    above M would give a negative score, which cannot be a probability mass, so scores are
    clipped at 0.
    """
    del low
    loss = np.asarray(loss, dtype=float)
    return np.maximum(high - loss, 0.0)


def make_reward(name: str, beta: float = 5.0) -> Reward:
    """The reward called ``name``: ``"exp"`` (option a) or ``"linear"`` (option b)."""
    if name == "exp":
        if not beta > 0:
            raise ValueError(f"beta must be > 0 (got {beta}); the paper uses beta=5")
        return lambda loss, low, high: exponential_reward(loss, low, high, beta)
    if name == "linear":
        return linear_reward
    raise ValueError(f"reward must be 'exp' or 'linear' (got {name!r})")


def allocate(
    grids: Sequence[ValueGrid],
    entries: Iterable[tuple[Mapping[str, Value], float]],
    reward: Reward,
    low: float,
    high: float,
) -> dict[str, np.ndarray]:
    """Algorithm 2.2: the probability vector of every hyperparameter.

    Args:
        grids: The value grids of the search space.
        entries: ``(values, final_loss)`` for every dataset entry; an entry without a value
            for some hyperparameter (an inactive conditional one) does not count for it.
        reward: The performance function, called as ``reward(losses, m, M)``.
        low: m. high: M.

    Returns:
        ``{name: P}`` with ``P`` summing to 1 over the grid. A hyperparameter whose values all
        score 0 (possible only with the linear reward) gets the uniform vector.
    """
    entries = list(entries)
    losses = np.array([loss for _, loss in entries], dtype=float)
    scores = reward(losses, low, high) if len(entries) else losses
    probabilities = {}
    for grid in grids:
        sums = np.zeros(len(grid))
        for (values, _), score in zip(entries, scores, strict=True):
            if grid.name in values:
                sums[grid.index(values[grid.name])] += score
        total = sums.sum()
        probabilities[grid.name] = sums / total if total > 0 else np.full(len(grid), 1 / len(grid))
    return probabilities


def resolve_thresholds(
    grids: Sequence[ValueGrid], thresholds: float | Mapping[str, float] | None
) -> dict[str, float]:
    """The fixing threshold s_i of every hyperparameter.

    ``None`` gives the paper's s_i = 2/|V_i|; a float applies to every hyperparameter; a
    mapping overrides the named ones and leaves the others at 2/|V_i|.
    """
    names = {grid.name for grid in grids}
    overrides: Mapping[str, float] = {}
    if isinstance(thresholds, Mapping):
        unknown = sorted(set(thresholds) - names)
        if unknown:
            raise ValueError(
                f"thresholds name hyperparameters that are not in the search space: {unknown}; "
                f"known: {sorted(names)}"
            )
        overrides = thresholds
    elif thresholds is not None:
        overrides = {name: float(thresholds) for name in names}
    for name, value in overrides.items():
        if not 0 < value <= 1:
            raise ValueError(
                f"threshold for {name!r} must be in (0, 1] (got {value}); a probability "
                "can never exceed 1, so a larger threshold would never fix a value"
            )
    return {grid.name: float(overrides.get(grid.name, 2 / len(grid))) for grid in grids}


@dataclass(frozen=True)
class FixedValue:
    """A hyperparameter value fixed for all later samples, and when it was fixed."""

    value: Value
    iteration: int


def newly_fixed(
    grids: Sequence[ValueGrid],
    probabilities: Mapping[str, np.ndarray],
    thresholds: Mapping[str, float],
    fixed: Mapping[str, FixedValue],
    iteration: int,
) -> dict[str, FixedValue]:
    """The values that reach their threshold now, for hyperparameters not fixed yet.

    A hyperparameter with a single value is fixed from the start (its probability is always
    1, and 2/|V| = 2 could never be reached).
    """
    result = {}
    for grid in grids:
        if grid.name in fixed:
            continue
        p = probabilities[grid.name]
        best = int(np.argmax(p))
        # The tolerance keeps 0.5 computed as 0.49999999999999994 from missing s_i = 0.5.
        if len(grid) == 1 or p[best] >= thresholds[grid.name] - THRESHOLD_TOLERANCE:
            result[grid.name] = FixedValue(grid.values[best], iteration)
    return result

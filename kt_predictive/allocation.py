"""Probability allocation (Algorithm 2.2 of the paper) and the performance functions.

For every hyperparameter i and value j, P_i[j] is the sum of the performance scores of all
dataset entries that use value j, normalised over the values of i. The performance score of
an entry is a reward of its final loss x, where m and M are the lowest and highest final
losses of the phase-1 dataset:

- option (a), the paper's: g(x) = exp(-beta (x - m) / (M - m));
- option (b), the original framework's: f(x) = M - x.

A value whose probability reaches the threshold s_i (default 2/|V_i|) is fixed for every later
sample.

That is the paper's rule (:meth:`AllocationRule.paper`). With 10-20 phase-1 networks it
degenerates in two opposite ways: one lucky network carries most of the reward mass, so 2/|V|
is crossed at iteration 0; or one diverging network makes M huge, g flat, and exploration
uniform. :meth:`AllocationRule.evidence` (the default) keeps the paper's algorithm and reward,
and changes three of its inputs:

- losses are normalised by their *rank* among the settled records (u in [0, 1]) instead of by
  (x - m)/(M - m), so no single outlier can flatten or sharpen the reward;
- every value starts with a pseudo-count ``prior`` of reward mass, so a value no phase-1 network
  used keeps a chance, and a few records cannot fix a value at once;
- a value is fixed only once at least ``min_evidence`` records used it, at the threshold
  (|V_i| + 1)/(2|V_i|) — half-way between uniform and certain — which a hyperparameter with two
  values can reach (2/|V_i| = 1 cannot be reached while any mass sits on the other value);

and it draws a third of exploration's configurations uniformly over the whole space
(``uniform_share``), so that a value fixed or starved on a few records at a bad partner value
(the marginals cannot see that Adam needs a small learning rate) stays reachable.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.stats import rankdata

from kt_predictive.errors import SearchError
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
        raise SearchError(f"beta must be > 0 (got {beta}); the paper uses beta=5")
    if not high > low:
        raise SearchError(f"the loss range needs M > m (got m={low}, M={high})")
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
            raise SearchError(f"beta must be > 0 (got {beta}); the paper uses beta=5")
        return lambda loss, low, high: exponential_reward(loss, low, high, beta)
    if name == "linear":
        return linear_reward
    raise SearchError(f"reward must be 'exp' or 'linear' (got {name!r})")


def rank_quantiles(losses) -> np.ndarray:
    """Each loss's rank among ``losses`` scaled to [0, 1]: 0 for the lowest, 1 for the highest.

    Ties share their mean rank; a single loss gets 0.
    """
    losses = np.asarray(losses, dtype=float)
    n = len(losses)
    if n < 2:
        return np.zeros(n)
    return (rankdata(losses, method="average") - 1) / (n - 1)


def allocate(
    grids: Sequence[ValueGrid],
    entries: Iterable[tuple[Mapping[str, Value], float]],
    reward: Reward,
    low: float,
    high: float,
    prior: float = 0.0,
) -> dict[str, np.ndarray]:
    """Algorithm 2.2: the probability vector of every hyperparameter.

    Args:
        grids: The value grids of the search space.
        entries: ``(values, final_loss)`` for every dataset entry; an entry without a value
            for some hyperparameter (an inactive conditional one) does not count for it.
        reward: The performance function, called as ``reward(losses, m, M)``.
        low: m. high: M.
        prior: Reward mass every value starts with (0 in the paper).

    Returns:
        ``{name: P}`` with ``P`` summing to 1 over the grid. A hyperparameter whose values all
        score 0 (possible only with the linear reward) gets the uniform vector.
    """
    entries = list(entries)
    losses = np.array([loss for _, loss in entries], dtype=float)
    scores = reward(losses, low, high) if len(entries) else losses
    probabilities = {}
    for grid in grids:
        sums = np.full(len(grid), float(prior))
        position = _positions_of(grid)
        for (values, _), score in zip(entries, scores, strict=True):
            if grid.name in values:
                sums[position(values[grid.name])] += score
        total = sums.sum()
        probabilities[grid.name] = sums / total if total > 0 else np.full(len(grid), 1 / len(grid))
    return probabilities


def _positions_of(grid: ValueGrid):
    """``position(value)`` for one grid: exact values by a dict built once per call (the
    allocation looks up every record's value), others through ``grid.index``."""
    exact = {(type(value), value): i for i, value in reversed(list(enumerate(grid.values)))}

    def position(value) -> int:
        found = exact.get((type(value), value))
        return found if found is not None else grid.index(value)

    return position


def value_counts(
    grids: Sequence[ValueGrid], entries: Iterable[tuple[Mapping[str, Value], float]]
) -> dict[str, np.ndarray]:
    """How many entries use each value of each hyperparameter."""
    entries = list(entries)
    counts = {}
    for grid in grids:
        n = np.zeros(len(grid), dtype=int)
        position = _positions_of(grid)
        for values, _ in entries:
            if grid.name in values:
                n[position(values[grid.name])] += 1
        counts[grid.name] = n
    return counts


@dataclass(frozen=True)
class AllocationRule:
    """How records become probabilities and when a value gets fixed.

    Attributes:
        reward: ``"exp"`` (g = exp(-beta u)) or ``"linear"`` (f = 1 - u in rank mode, M - x in
            range mode).
        beta: Steepness of the exponential reward (the paper: 5).
        normalisation: ``"range"``: u = (x - m)/(M - m) with m, M the lowest and highest
            final losses of phase 1 (the paper); ``"rank"``: u = the loss's rank among all
            settled records, in [0, 1].
        prior: Reward mass every value starts with (the paper: 0).
        min_evidence: Records that must use a value before it can be fixed (the paper: 0).
        evidence_of: ``"fixed value"``: ``min_evidence`` records must use the value that is
            fixed; ``"every value"``: every value of the hyperparameter needs as many before
            any is fixed, so no value loses on a record or two (one draw of Adam at a bad
            learning rate) before the others were tried as often.
        thresholds: The probability at which a value gets fixed: ``"paper"`` for
            s_i = 2/|V_i|, ``"midway"`` for (|V_i| + 1)/(2|V_i|), one number in (0, 1] for
            every hyperparameter, or ``{name: number}`` for some (the others: ``"midway"``).
        relax_fixed: When every configuration left with the fixed values has been tried,
            draw the fixed hyperparameters from their probabilities too instead of ending
            exploration (the paper: exploration has no such case; False).
        uniform_share: The share of exploration's draws made uniformly over the whole
            space, fixed values and probabilities ignored, as BOHB's random fraction
            (Falkner et al. 2018): the marginals cannot see that two values only work
            together (Adam with a small learning rate), and a value fixed or starved on a
            few records at a bad partner value then stays out of reach; uniform draws keep
            every configuration reachable (the paper: 0; the default 1/3, BOHB's value).

    Example:
        >>> rule = AllocationRule(thresholds={"lr": 0.9})
        >>> rule.thresholds, rule.to_json()["thresholds"]
        ((('lr', 0.9),), {'lr': 0.9})
    """

    reward: Literal["exp", "linear"] = "exp"
    beta: float = 5.0
    normalisation: Literal["range", "rank"] = "rank"
    prior: float = 1.0
    min_evidence: int = 3
    evidence_of: Literal["fixed value", "every value"] = "fixed value"
    thresholds: Literal["paper", "midway"] | float | Mapping[str, float] = "midway"
    relax_fixed: bool = True
    uniform_share: float = 1 / 3

    def __post_init__(self) -> None:
        make_reward(self.reward, self.beta)  # validates both
        if self.normalisation not in ("range", "rank"):
            raise SearchError(
                f"normalisation must be 'range' or 'rank' (got {self.normalisation!r})"
            )
        if not self.prior >= 0:
            raise SearchError(f"prior must be >= 0 (got {self.prior!r})")
        if not isinstance(self.min_evidence, int) or self.min_evidence < 0:
            raise SearchError(f"min_evidence must be an integer >= 0 (got {self.min_evidence!r})")
        if self.evidence_of not in ("fixed value", "every value"):
            raise SearchError(
                f"evidence_of must be 'fixed value' or 'every value' (got {self.evidence_of!r})"
            )
        object.__setattr__(self, "thresholds", _checked_thresholds(self.thresholds))
        share = self.uniform_share
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share < 1:
            raise SearchError(
                f"uniform_share must be a number in [0, 1) (got {share!r}): the share of "
                "exploration's draws made uniformly, e.g. 1/3; 0 draws every configuration "
                "from the allocation's probabilities"
            )

    @classmethod
    def paper(cls, reward: Literal["exp", "linear"] = "exp", beta: float = 5.0) -> AllocationRule:
        """Algorithm 2.2 exactly as the paper states it."""
        return cls(
            reward,
            beta,
            normalisation="range",
            prior=0.0,
            min_evidence=0,
            thresholds="paper",
            uniform_share=0.0,
        )

    @classmethod
    def evidence(
        cls, reward: Literal["exp", "linear"] = "exp", beta: float = 5.0
    ) -> AllocationRule:
        """The default: rank-normalised reward, a prior of 1 per value, 3 records to fix, a
        third of exploration drawn uniformly."""
        return cls(reward, beta)

    def default_threshold(self, n_values: int) -> float:
        """The threshold of a hyperparameter of ``n_values`` values that no number names."""
        if self.thresholds == "paper":
            return 2 / n_values
        return (n_values + 1) / (2 * n_values)

    def threshold_of(self, grids: Sequence[ValueGrid]) -> dict[str, float]:
        """The fixing threshold of every hyperparameter of ``grids`` (checks named ones)."""
        thresholds = self.thresholds
        if isinstance(thresholds, str):
            return resolve_thresholds(grids, None, self)
        overrides = dict(thresholds) if isinstance(thresholds, tuple) else thresholds
        return resolve_thresholds(grids, overrides, self)

    def scores(self, losses, low: float, high: float) -> np.ndarray:
        """The performance score of each loss."""
        losses = np.asarray(losses, dtype=float)
        if self.normalisation == "range":
            return make_reward(self.reward, self.beta)(losses, low, high)
        u = rank_quantiles(losses)
        return np.exp(-self.beta * u) if self.reward == "exp" else 1.0 - u

    def probabilities(
        self,
        grids: Sequence[ValueGrid],
        entries: Sequence[tuple[Mapping[str, Value], float]],
        low: float,
        high: float,
    ) -> dict[str, np.ndarray]:
        """Algorithm 2.2 with this rule's scores and prior."""
        scores = self.scores([loss for _, loss in entries], low, high)
        # allocate() applies a reward to losses; the scores are already computed here.
        scored = [(values, score) for (values, _), score in zip(entries, scores, strict=True)]
        return allocate(grids, scored, lambda s, _low, _high: s, low, high, prior=self.prior)

    def to_json(self) -> dict:
        state = dataclasses.asdict(self)
        if isinstance(self.thresholds, tuple):
            state["thresholds"] = dict(self.thresholds)
        return state


def _checked_thresholds(thresholds):
    """AllocationRule's ``thresholds``, checked; a mapping becomes sorted (name, value) pairs
    so the rule stays hashable."""

    def number(name: str, value) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
            raise SearchError(
                f"threshold for {name} must be a number in (0, 1] (got {value!r}): a value gets "
                "fixed when its probability reaches it, and a probability never exceeds 1"
            )
        return float(value)

    if isinstance(thresholds, str):
        if thresholds not in ("paper", "midway"):
            raise SearchError(
                f"thresholds must be 'paper', 'midway', a number in (0, 1] or {{name: number}} "
                f"(got {thresholds!r})"
            )
        return thresholds
    if isinstance(thresholds, Mapping | tuple):
        pairs = dict(thresholds)
        return tuple(sorted((str(k), number(repr(k), v)) for k, v in pairs.items()))
    return number("every hyperparameter", thresholds)


def resolve_thresholds(
    grids: Sequence[ValueGrid],
    thresholds: float | Mapping[str, float] | None,
    rule: AllocationRule | None = None,
) -> dict[str, float]:
    """The fixing threshold s_i of every hyperparameter.

    ``None`` gives the rule's default (the paper's s_i = 2/|V_i| without a rule); a float
    applies to every hyperparameter; a mapping overrides the named ones and leaves the others
    at the default.
    """
    default = rule.default_threshold if rule is not None else (lambda n: 2 / n)
    names = {grid.name for grid in grids}
    overrides: Mapping[str, float] = {}
    if isinstance(thresholds, Mapping):
        unknown = sorted(set(thresholds) - names)
        if unknown:
            raise SearchError(
                f"thresholds name hyperparameters that are not in the search space: {unknown}; "
                f"known: {sorted(names)}"
            )
        overrides = thresholds
    elif thresholds is not None:
        overrides = {name: float(thresholds) for name in names}
    for name, value in overrides.items():
        if not 0 < value <= 1:
            raise SearchError(
                f"threshold for {name!r} must be in (0, 1] (got {value}); a probability "
                "can never exceed 1, so a larger threshold would never fix a value"
            )
    return {grid.name: float(overrides.get(grid.name, default(len(grid)))) for grid in grids}


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
    counts: Mapping[str, np.ndarray] | None = None,
    min_evidence: int = 0,
    evidence_of: str = "fixed value",
) -> dict[str, FixedValue]:
    """The values that reach their threshold now, for hyperparameters not fixed yet.

    A hyperparameter with a single value is fixed from the start (its probability is always
    1, and 2/|V| = 2 could never be reached). With ``min_evidence``, a value also needs that
    many records using it (``counts``) before it can be fixed, or, with ``evidence_of="every
    value"``, every value of its hyperparameter does.
    """
    result = {}
    for grid in grids:
        if grid.name in fixed:
            continue
        p = probabilities[grid.name]
        best = int(np.argmax(p))
        if len(grid) > 1 and min_evidence:
            if counts is None:
                continue
            used = counts[grid.name]
            if (used[best] if evidence_of == "fixed value" else used.min()) < min_evidence:
                continue
        # The tolerance keeps 0.5 computed as 0.49999999999999994 from missing s_i = 0.5.
        if len(grid) == 1 or p[best] >= thresholds[grid.name] - THRESHOLD_TOLERANCE:
            result[grid.name] = FixedValue(grid.values[best], iteration)
    return result

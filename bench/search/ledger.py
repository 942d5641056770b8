"""The training steps one search used, and what it found: every method's common accounting."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field


class StepLedger:
    """The training steps a method used, and its best real final loss as they accumulate.

    Args:
        limit: the budget B in optimizer steps; spending past it is an error (a method
            adapter that overspends is a bug of the benchmark, not a result).
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0
        self.best = math.inf
        self.finals = 0
        #: ``(cumulative steps, best real final loss so far)`` after each full training.
        self.trace: list[tuple[int, float]] = []

    @property
    def left(self) -> int:
        return self.limit - self.used

    def spend(self, steps: int) -> None:
        self.used += steps
        if self.used > self.limit:
            raise RuntimeError(
                f"a method used {self.used} steps, more than its budget of {self.limit}"
            )

    def real_final(self, loss: float) -> None:
        """Records the real final loss of a network just trained to ``full_steps``."""
        if math.isfinite(loss):
            self.finals += 1
            self.best = min(self.best, loss)
            self.trace.append((self.used, self.best))


@dataclass
class Outcome:
    """One method's search on one problem, budget level and seed.

    Attributes:
        level: the budget in full-training equivalents; ``budget`` is the same in steps.
        best: the best real final loss found (inf if no network was trained fully).
        steps: optimizer steps used (at most ``budget``).
        finals: networks trained to full_steps.
        trace: (cumulative steps, best so far) after each full training.
        fixed_iterations, fixed_values: PredictiveOracle only: when and to what each
            hyperparameter got fixed.
        diagnostics: method-specific counts (trials, pruned, exploration end...).
    """

    method: str
    level: float
    seed: int
    best: float
    steps: int
    budget: int
    finals: int
    trace: list[tuple[int, float]]
    seconds: float
    fixed_iterations: dict[str, int] = field(default_factory=dict)
    fixed_values: dict = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)


def steps_to_reach(trace: Sequence[tuple[int, float]], target: float) -> int | None:
    """The cumulative steps at which the best-so-far first got to ``target`` or below."""
    return next((steps for steps, best in trace if best <= target), None)

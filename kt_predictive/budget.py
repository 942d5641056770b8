"""Training budgets in optimizer steps, and the loss statistics the method reads from them.

A trial's learning curve is the training loss of every optimizer step. The predictor reads
the mean of every window of ``window`` steps up to ``early_steps``; a trial's final quality is
the mean over its last ``final_window`` steps (the paper: 1000-step windows up to 6000, the
last 500 of 40000).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kt_predictive.errors import SearchError


@dataclass(frozen=True)
class TrainingSteps:
    """How long trials train, in optimizer steps (batches), and how their loss is summarised.

    Attributes:
        full_steps: Steps of a fully trained network (the paper: 40000).
        early_steps: Steps of an exploration trial (the paper: 6000).
        window: Length of each early window whose mean loss feeds the predictor (1000).
        final_window: Length of the final window whose mean loss is the trial's score (500).
    """

    full_steps: int = 40000
    early_steps: int = 6000
    window: int = 1000
    final_window: int = 500

    @classmethod
    def paper(cls) -> TrainingSteps:
        """The paper's 40000 / 6000 / 1000 / 500 steps (the defaults)."""
        return cls(full_steps=40000, early_steps=6000, window=1000, final_window=500)

    def __post_init__(self) -> None:
        for name in ("full_steps", "early_steps", "window", "final_window"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or isinstance(value, bool) or value <= 0:
                raise SearchError(
                    f"{name} must be a positive integer number of steps (got {value!r})"
                )
        if self.early_steps >= self.full_steps:
            raise SearchError(
                f"early_steps ({self.early_steps}) must be smaller than full_steps "
                f"({self.full_steps}): exploration trials stop early to save training"
            )
        if self.early_steps % self.window:
            raise SearchError(
                f"window ({self.window}) must divide early_steps ({self.early_steps}) so the "
                "early curve is a whole number of windows; e.g. early_steps=6000, window=1000"
            )
        if self.final_window > self.full_steps:
            raise SearchError(
                f"final_window ({self.final_window}) cannot exceed full_steps "
                f"({self.full_steps}); it is the last part of a full training"
            )

    @property
    def n_windows(self) -> int:
        """Number of early windows (the predictor's loss features)."""
        return self.early_steps // self.window

    def is_window_end(self, step: int) -> bool:
        """Whether an early window ends at ``step``."""
        return step <= self.early_steps and step % self.window == 0

    def window_ends(self) -> list[int]:
        """The steps at which each early window ends: window, 2·window, …, early_steps."""
        return list(range(self.window, self.early_steps + 1, self.window))


def window_mean(losses: np.ndarray, end: int, length: int) -> float:
    """Mean of the per-step losses of steps ``end - length + 1 .. end`` (1-based steps)."""
    if end > len(losses) or end < length:
        raise SearchError(
            f"window ending at step {end} of length {length} is not in a curve of {len(losses)} "
            "steps"
        )
    return float(np.mean(np.asarray(losses[end - length : end], dtype=np.float64)))


def early_means(losses: np.ndarray, budget: TrainingSteps) -> list[float]:
    """The mean loss of every complete early window of ``losses``."""
    return [
        window_mean(losses, end, budget.window)
        for end in budget.window_ends()
        if end <= len(losses)
    ]


def final_mean(losses: np.ndarray, budget: TrainingSteps) -> float:
    """The trial's score: the mean loss over the last ``final_window`` of ``full_steps``."""
    return window_mean(losses, budget.full_steps, budget.final_window)

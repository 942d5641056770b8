"""Step budgets and the window statistics the method reads from a loss curve."""

import numpy as np
import pytest

from kt_predictive.budget import TrainingSteps, early_means, final_mean, window_mean


def test_paper_budget_windows():
    budget = TrainingSteps()
    assert (budget.full_steps, budget.early_steps, budget.window, budget.final_window) == (
        40000,
        6000,
        1000,
        500,
    )
    assert budget.window_ends() == [1000, 2000, 3000, 4000, 5000, 6000]
    assert budget.n_windows == 6


def test_means_of_a_known_sequence():
    losses = np.arange(1, 41, dtype=np.float64)  # step k has loss k
    budget = TrainingSteps(full_steps=40, early_steps=12, window=4, final_window=5)
    # Windows 1-4, 5-8, 9-12: means 2.5, 6.5, 10.5. Last five steps 36..40: mean 38.
    assert early_means(losses, budget) == [2.5, 6.5, 10.5]
    assert final_mean(losses, budget) == 38.0
    assert early_means(losses[:9], budget) == [2.5, 6.5]  # only complete windows
    assert window_mean(losses, 3, 3) == 2.0
    with pytest.raises(ValueError):
        window_mean(losses[:10], 12, 4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"early_steps": 40000}, "smaller than full_steps"),
        ({"early_steps": 6500}, "must divide early_steps"),
        ({"final_window": 50000}, "cannot exceed full_steps"),
        ({"window": 0}, "positive integer"),
        ({"full_steps": 10.5}, "positive integer"),
    ],
)
def test_budgets_that_do_not_fit_together(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainingSteps(**kwargs)

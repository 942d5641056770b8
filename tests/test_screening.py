"""Screening (successive halving inside exploration) and the search budget: the arithmetic
by hand, and the oracle's decisions driven by hand without training."""

import math

import keras_tuner
import pytest
from keras_tuner.engine.trial import TrialStatus
from test_oracle_protocol import BUDGET, finish, make_oracle, run

from kt_predictive import SearchError, TrainingSteps
from kt_predictive.decisions import END_BUDGET
from kt_predictive.records import training_steps
from kt_predictive.schedule import PhaseSizes, size_phases
from kt_predictive.screening import (
    expected_trial_steps,
    promoted,
    rung_estimate,
    rung_offset,
    screening_rungs,
)

from tiny_problem import flat_oracle, flat_paper

pytestmark = pytest.mark.jax

AAE = TrainingSteps(full_steps=400, early_steps=60, window=10, final_window=40)


def test_rungs_are_the_window_times_powers_of_eta_below_the_early_budget():
    assert screening_rungs(AAE, 3) == [10, 30]
    assert screening_rungs(AAE, 2) == [10, 20, 40]
    assert screening_rungs(AAE, 6) == [10]
    assert screening_rungs(AAE, None) == []
    assert screening_rungs(TrainingSteps(24, 8, 4, 4), 2) == [4]


def test_expected_steps_of_an_explored_trial_by_hand():
    # eta 3: all pay 10 steps, a third the 20 from 10 to 30, a ninth the 30 from 30 to 60.
    assert expected_trial_steps(AAE, 3) == pytest.approx(10 + 20 / 3 + 30 / 9)
    # eta 2: 10 + 10/2 + 20/4 + 20/8.
    assert expected_trial_steps(AAE, 2) == pytest.approx(22.5)
    assert expected_trial_steps(AAE, None) == 60


def test_promotion_keeps_the_best_share_of_the_rung():
    reference = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    # With eta 3, fewer than 9/3 = 3 values may be lower: 0.1, 0.2 and 0.3 go on.
    assert [promoted(v, reference, 3) for v in reference] == [True] * 3 + [False] * 6
    # The first trial at a rung has nothing to beat; ties do not count as lower.
    assert promoted(0.7, [0.7], 3)
    assert promoted(0.5, [0.5, 0.5, 0.5, 0.9], 2)
    # Non-finite values neither pass nor count.
    assert not promoted(math.inf, [math.inf, 0.3], 2)
    assert promoted(0.3, [0.3, math.nan, 0.9], 2)


def test_rung_estimate_adds_the_median_change_of_full_curves():
    curves = [([1.0, 0.7], 0.5), ([0.9, 0.6], 0.3), ([0.8, None], 0.2)]
    # Window 0: final - early = -0.5, -0.6, -0.6: median -0.6.
    assert rung_offset(curves, 0) == pytest.approx(-0.6)
    # Window 1: the third curve has no second window: median of -0.2 and -0.3.
    assert rung_offset(curves, 1) == pytest.approx(-0.25)
    assert rung_estimate(0.75, curves, 1) == pytest.approx(0.5)
    assert rung_offset([], 0) == 0.0


def test_size_phases_with_screening_by_hand():
    # AAE, 10 full trainings, eta 3: e = 0.15, an explored trial costs 20/400 = 0.05 and a
    # ninth of them reaches early_steps. top_k = round(0.5 * 10 / 0.85) = 6 leaves
    # 10 - 3 - 6 * 0.85 = 1.9, 38 iterations, 38/9 < 6 reaching it; top_k = 5 leaves 2.75,
    # 55 iterations, 55/9 >= 5.
    sizes = size_phases(10, AAE, reduction_factor=3)
    assert sizes == PhaseSizes(initial_trials=3, max_iterations=55, top_k=5)
    assert sizes.cost(AAE, 3) == pytest.approx(3 + 55 * 0.05 + 5 * 0.85)
    # Without screening, as before.
    assert size_phases(10, AAE) == PhaseSizes(initial_trials=3, max_iterations=12, top_k=6)


@pytest.mark.parametrize("factor", [1, 0, 2.5, True, "3"])
def test_a_bad_reduction_factor_is_one_clear_error(factor):
    with pytest.raises(SearchError, match="reduction_factor must be an integer >= 2"):
        flat_oracle(reduction_factor=factor, **BUDGET, initial_trials=3)


def explore_trial(oracle):
    """Runs phase 1 if needed and returns the next explored trial (not run)."""
    while True:
        trial = oracle.create_trial("tuner0")
        assert trial.status == TrialStatus.RUNNING
        if oracle.phase == "explore":
            return trial
        run(oracle, trial)


def test_a_trial_behind_at_a_rung_is_screened_out_and_never_a_candidate(tmp_path):
    oracle = make_oracle(tmp_path, reduction_factor=2)
    released = []
    oracle.release_checkpoints = released.extend
    worse = explore_trial(oracle)
    # Far above every phase-1 network's first window: not among the best half at step 4.
    response = oracle.update_trial(worse.trial_id, {"loss": 50.0}, step=4)
    assert response.status == TrialStatus.STOPPED
    oracle.end_trial(response)
    record = oracle._decisions.records[worse.trial_id]
    assert (record.status, record.screened_at, record.steps, record.predicted) == (
        "complete",
        4,
        4,
        None,
    )
    assert record.screened_out and worse.trial_id in released
    # The allocation counts it at its window mean plus the phase-1 curves' median change.
    curves = [(r.early, r.real_final) for r in oracle.records() if r.is_real]
    loss = dict((tuple(sorted(v.items())), x) for v, x in oracle._decisions.entries())
    assert loss[tuple(sorted(record.values.items()))] == pytest.approx(
        rung_estimate(50.0, curves, 0)
    )

    better = oracle.create_trial("tuner0")
    response = oracle.update_trial(better.trial_id, {"loss": 0.0}, step=4)
    assert response.status == TrialStatus.RUNNING
    # A report of the same rung again (a resumed trial) keeps the decision it got.
    response = oracle.update_trial(better.trial_id, {"loss": 50.0}, step=4)
    assert response.status == TrialStatus.RUNNING
    response = oracle.update_trial(better.trial_id, {"loss": 0.01}, step=8)
    assert response.status == TrialStatus.STOPPED  # the early budget
    oracle.end_trial(response)
    kept = oracle._decisions.records[better.trial_id]
    assert kept.screened_at is None and kept.predicted is not None
    assert [r.trial_id for r in oracle._decisions.ranked_explored()] == [better.trial_id]


def budget_oracle(tmp_path, initial_screen=None):
    """make_oracle's space sized by search_budget=10 (3 / 12 / 6 trials), screening at eta 2
    (phase 1 not screened unless ``initial_screen`` says so)."""
    return make_oracle(
        tmp_path,
        initial_trials=None,
        max_iterations=None,
        top_k=None,
        search_budget=10,
        reduction_factor=2,
        initial_screen=initial_screen,
    )


def test_a_search_budget_is_never_exceeded_and_is_used(tmp_path):
    oracle = budget_oracle(tmp_path)
    assert (oracle.initial_trials, oracle.max_iterations, oracle.top_k) == (3, 12, 6)
    finish(oracle)
    records = oracle.records()
    limit = 10 * BUDGET["full_steps"]
    assert training_steps(records) <= limit
    # Budget left that could pay for one more continuation (16 steps) means every
    # candidate was continued (beyond top_k if need be).
    if training_steps(records) + BUDGET["full_steps"] - BUDGET["early_steps"] <= limit:
        candidates = oracle._decisions.ranked_explored()
        assert all(oracle._decisions.records.continuation_of(r.trial_id) for r in candidates)
    assert any(r.screened_out for r in records)
    assert oracle.exploration_end is not None


def test_exploration_ends_when_only_the_continuations_budget_is_left(tmp_path):
    # Every explored trial passes its rung (it is the best): each costs early_steps, twice
    # what the sizes expected, so the budget ends exploration before max_iterations.
    oracle = budget_oracle(tmp_path)
    while oracle.phase != "finalize":
        trial = oracle.create_trial("tuner0")
        if trial.status != TrialStatus.RUNNING:
            break
        if oracle.phase != "explore":  # phase 1, or the first continuation
            run(oracle, trial)
            continue
        for step in (4, 8):
            response = oracle.update_trial(trial.trial_id, {"loss": 1e-6 / step}, step=step)
        oracle.end_trial(response)
    assert oracle.exploration_end == END_BUDGET
    explored = [r for r in oracle.records() if r.role == "explore"]
    assert len(explored) < oracle.max_iterations
    finish(oracle)
    assert training_steps(oracle.records()) <= 10 * BUDGET["full_steps"]


def test_the_paper_preset_trains_every_explored_trial_to_the_early_budget():
    oracle = flat_paper(initial_trials=3, max_iterations=2, top_k=1, **BUDGET)
    assert oracle._decisions.reduction_factor is None and oracle._decisions.rungs == []
    assert oracle._decisions.budget_steps is None


def test_auto_screens_only_searches_sized_by_a_budget_below_twenty_trainings():
    aae = dict(full_steps=400, early_steps=60, window=10, final_window=40)
    small = flat_oracle(search_budget=10, **aae)
    assert small._decisions.reduction_factor == 3 and small._decisions.rungs == [10, 30]
    # Phase 1 is screened too (test_size_phases_with_a_screened_phase_1_by_hand).
    sizes = (small.initial_trials, small.max_iterations, small.top_k, small.initial_screen)
    assert sizes == (3, 71, 3, 27)
    large = flat_oracle(search_budget=30, **aae)
    assert large._decisions.reduction_factor is None and large._decisions.rungs == []
    # Phase 1 is screened without rungs: 3 configurations per network kept.
    assert (large.initial_trials, large.initial_screen) == (6, 18)
    counted = flat_oracle(initial_trials=3, max_iterations=5, top_k=1, **aae)
    assert counted._decisions.reduction_factor is None and counted.initial_screen == 0
    forced = flat_oracle(search_budget=30, reduction_factor=3, **aae)
    assert forced._decisions.rungs == [10, 30]


def test_with_screening_the_budget_not_max_iterations_ends_exploration(tmp_path):
    # Every explored trial is screened out at its rung: ending at max_iterations (the count
    # the sizes expected) would leave the continuations' budget unused with no candidate.
    hp = keras_tuner.HyperParameters()
    hp.Choice("a", list(range(10)))
    hp.Choice("b", list(range(10)))
    oracle = flat_oracle(
        hyperparameters=hp,
        search_budget=10,
        reduction_factor=2,
        initial_screen=None,
        tuning_trials=1,
        report_splits=0,
        seed=3,
        **BUDGET,
    )
    oracle.open(str(tmp_path), "budget")
    worst = 50.0
    while True:
        trial = oracle.create_trial("tuner0")
        if trial.status != TrialStatus.RUNNING:
            break
        if oracle.phase == "explore":
            # Worse than every mean recorded at the rung before (ties would not count).
            worst += 1.0
            response = oracle.update_trial(trial.trial_id, {"loss": worst}, step=4)
            assert response.status == TrialStatus.STOPPED
            oracle.end_trial(response)
        else:  # phase 1: trained fully
            final = (
                0.1 * trial.hyperparameters.values["a"] + 0.01 * trial.hyperparameters.values["b"]
            )
            for step in (4, 8):
                oracle.update_trial(trial.trial_id, {"loss": final + 1.0 / step}, step=step)
            oracle.update_trial(trial.trial_id, {"loss": final}, step=BUDGET["full_steps"])
            trial.status = TrialStatus.COMPLETED
            oracle.end_trial(trial)
    explored = [r for r in oracle.records() if r.role == "explore"]
    assert oracle.exploration_end == END_BUDGET
    assert len(explored) > oracle.max_iterations and all(r.screened_out for r in explored)
    # What is left cannot pay for one more explored trial that reaches early_steps (8) and
    # its continuation (16).
    assert training_steps(oracle.records()) > 10 * BUDGET["full_steps"] - 8 - 16


@pytest.mark.parametrize("budget", [True, -1, 0, "10"])
def test_a_bad_search_budget_is_one_clear_error(budget):
    with pytest.raises(SearchError, match="search_budget must be a positive number"):
        flat_oracle(search_budget=budget, **BUDGET)

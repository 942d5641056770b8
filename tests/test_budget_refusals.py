"""Budgets held and refusals that make sense (issue 26, items 7-11, 16, 19): the oracle driven
by hand on the tiny budget, without training."""

import keras_tuner
import pytest
from keras_tuner.engine.trial import TrialStatus
from test_initial_screen import screened_oracle
from test_oracle_protocol import BUDGET, finish, make_oracle, run

from kt_predictive import FatalSearchError, SearchError, TrainingSteps
from kt_predictive.records import training_steps
from kt_predictive.schedule import size_phases

from tiny_problem import flat_oracle


def test_reports_for_a_settled_trial_are_ignored_and_it_settles_once(tmp_path):
    oracle = make_oracle(tmp_path)
    trial = oracle.create_trial("tuner0")
    run(oracle, trial)
    record = oracle._decisions.records[trial.trial_id]
    final = record.real_final
    # A worker that wakes up after its trial settled elsewhere reports and ends it again.
    late = oracle.update_trial(trial.trial_id, {"loss": 0.001}, step=BUDGET["full_steps"])
    assert late.status == TrialStatus.STOPPED
    trial.status = TrialStatus.COMPLETED
    oracle.end_trial(trial)
    assert record.real_final == final and oracle.end_order.count(trial.trial_id) == 1


def test_a_stray_report_past_the_early_budget_of_a_settled_screened_trial_is_harmless(tmp_path):
    oracle = screened_oracle(tmp_path)
    trial = oracle.create_trial("tuner0")
    run(oracle, trial)  # screened: stopped at the early budget (8)
    oracle.update_trial(trial.trial_id, {"loss": 0.5}, step=12)
    assert oracle._decisions.records[trial.trial_id].steps == 8
    finish(oracle)
    assert oracle.phase == "done"
    again = screened_oracle(tmp_path)
    again.reload()
    assert again.create_trial("tuner0").status == TrialStatus.STOPPED


def budget_sized(tmp_path, search_budget=10, **kwargs):
    """make_oracle's 12-configuration space sized by ``search_budget``."""
    counts = dict(initial_trials=None, max_iterations=None, top_k=None)
    return make_oracle(tmp_path, search_budget=search_budget, **{**counts, **kwargs})


def test_equal_phase_1_finals_are_enough_for_the_rank_rule(tmp_path):
    # Accuracy saturating at 1.0: every phase-1 network ends with the same final loss; the
    # default (rank) allocation never uses m and M, so phase 2 goes on.
    oracle = budget_sized(tmp_path, initial_screen=False)
    while oracle.phase == "initial":
        trial = oracle.create_trial("tuner0")
        for step in (4, 8):
            value = 1.0 / step + trial.hyperparameters.values["a"]
            oracle.update_trial(trial.trial_id, {"loss": value}, step=step)
        oracle.update_trial(trial.trial_id, {"loss": 0.0}, step=BUDGET["full_steps"])
        trial.status = TrialStatus.COMPLETED
        oracle.end_trial(trial)
    assert oracle.phase == "explore" and oracle.loss_bounds == (0.0, 0.0)
    finish(oracle)
    assert oracle.phase == "done"


def test_too_few_phase_1_networks_advise_what_search_budget_takes(tmp_path):
    # Two of the three phase-1 networks diverge after their early windows: one final loss
    # is too few for the predictor; the advice names search_budget, not initial_trials.
    oracle = budget_sized(tmp_path, initial_screen=False)
    with pytest.raises(FatalSearchError, match="Raise search_budget") as error:
        for k in range(3):
            run(oracle, oracle.create_trial("tuner0"), diverge_at=16 if k else None)
    assert "initial_trials" not in str(error.value)


def test_a_space_too_small_for_a_budget_sized_phase_1_advises_search_budget():
    hp = keras_tuner.HyperParameters()
    hp.Choice("a", [1, 2])
    hp.Choice("b", [1, 2])
    oracle = flat_oracle(search_budget=30, **BUDGET)  # phase 1: 6 networks
    with pytest.raises(FatalSearchError, match="lower search_budget") as error:
        oracle.update_space(hp)
    assert "initial_trials" not in str(error.value).split(";")[-1]


def test_a_budget_that_cannot_be_sized_names_budgets_that_can():
    steps = TrainingSteps(400, 164, 2, 40)
    # Whole-trial rounding: 18 cannot be sized though 17 can; "too small, needs at least 21"
    # would contradict itself.
    with pytest.raises(SearchError, match="give 17 or 21 instead"):
        size_phases(18, steps, reduction_factor=3, initial_screen=True)
    for budget in (17, 21):
        size_phases(budget, steps, reduction_factor=3, initial_screen=True)
    # Screens that cost more than any budget they are sized from: no budget is named, the
    # settings that make one possible are.
    steep = TrainingSteps(400, 280, 10, 20)
    with pytest.raises(SearchError, match=r"no search_budget .*\(initial_screen=False\)"):
        size_phases(5, steep, reduction_factor=3, initial_screen=True)
    size_phases(5, steep, reduction_factor=3, initial_screen=False)


def improving_search(tmp_path, search_budget, steps, **kwargs):
    """A budget-sized oracle on a 100-configuration space, driven by hand: every new trial
    beats every one before it at every window, so each passes every rung. Returns it done."""
    hp = keras_tuner.HyperParameters()
    hp.Choice("a", list(range(10)))
    hp.Choice("b", list(range(10)))
    oracle = flat_oracle(
        hyperparameters=hp,
        search_budget=search_budget,
        tuning_trials=1,
        report_splits=0,
        seed=2,
        **vars(steps),
        **kwargs,
    )
    oracle.open(str(tmp_path), "improving")
    return drive(oracle, steps, lambda values, step, k: 10.0 - 0.01 * k + 1.0 / step)


def drive(oracle, steps, loss):
    """Runs the oracle's search to the end by hand: trial k of ``values`` reports
    ``loss(values, step, k)`` at each window end past its parent's steps and at
    ``full_steps``, until told to stop. Returns the oracle."""
    records = oracle._decisions.records
    for k in range(1000):
        trial = oracle.create_trial("tuner0")
        if trial.status == TrialStatus.STOPPED:
            return oracle
        assert trial.status == TrialStatus.RUNNING
        parent = trial.hyperparameters.values.get("tuner/trial_id")
        start = records[parent].steps if parent else 0
        ends = [s for s in steps.window_ends() if s > start] + [steps.full_steps]
        for step in ends:
            value = loss(records[trial.trial_id].values, step, k)
            if oracle.update_trial(trial.trial_id, {"loss": value}, step=step).status == "STOPPED":
                break
        trial.status = TrialStatus.COMPLETED
        oracle.end_trial(trial)
    raise AssertionError("the search never ended")


def test_a_screened_phase_1_is_held_to_the_search_budget(tmp_path):
    # At 5 full trainings phase 1 screens 27 configurations expecting most to stop at a rung
    # (10 or 30 steps); here every one reaches early_steps (60), twice what was expected.
    steps = TrainingSteps(400, 60, 10, 40)
    oracle = improving_search(tmp_path, 5, steps)
    assert oracle.initial_screen == 27
    records = oracle.records()
    assert training_steps(records) <= 5 * steps.full_steps
    assert len([r for r in records if r.role == "initial"]) < 27
    assert len(oracle._decisions.records.phase1_networks()) == oracle.initial_trials


def test_a_space_smaller_than_the_phase_1_screen_continues_its_candidates(tmp_path):
    # 4 configurations, search_budget 10 screens 9 in phase 1 and trains 3 fully. The
    # configuration that starts worst finishes best: phase 1 must continue it too, with the
    # budget exploration (nothing left to explore) and phase 4 cannot use.
    hp = keras_tuner.HyperParameters()
    hp.Choice("a", [0, 1])
    hp.Choice("b", [0, 1])
    oracle = flat_oracle(
        hyperparameters=hp, search_budget=10, tuning_trials=1, report_splits=0, seed=2, **BUDGET
    )
    oracle.open(str(tmp_path), "small")
    assert (oracle.initial_trials, oracle.initial_screen) == (3, 9)

    def loss(values, step, k):
        slow = values["a"] == 1 and values["b"] == 1
        final = 0.1 if slow else 0.5 + 0.1 * values["a"] + 0.05 * values["b"]
        return final if step == BUDGET["full_steps"] else final + (5.0 if slow else 1.0) / step

    drive(oracle, TrainingSteps(**BUDGET), loss)
    networks = oracle._decisions.records.phase1_networks()
    assert len(networks) == 4
    best = oracle._decisions.records[oracle.get_best_trials(1)[0].trial_id]
    assert best.real_final == pytest.approx(0.1)
    assert training_steps(oracle.records()) <= 10 * BUDGET["full_steps"]


def test_raising_top_k_of_a_finished_search_continues_the_next_candidates(tmp_path):
    oracle = make_oracle(tmp_path)  # 3 explored, top_k 2
    finish(oracle)
    records = oracle._decisions.records
    continued = [
        r for r in records.by_role("continuation") if records[r.parent_id].role == "explore"
    ]
    assert len(continued) == 2
    bigger = make_oracle(tmp_path, top_k=4)
    bigger.reload()
    assert bigger.phase == "finalize"
    finish(bigger)
    records = bigger._decisions.records
    explored = records.by_role("explore")
    # The third candidate's early checkpoint was kept when the search ended: it is continued.
    assert all(records.continuation_of(r.trial_id) is not None for r in explored)


def test_raising_max_iterations_continues_a_new_best_predicted_candidate(tmp_path):
    def loss(values, step, k, shift=0.0):
        base = 0.1 * values["a"] + values["c"] + shift
        return base if step == BUDGET["full_steps"] else base + (1.0 + values["a"]) / step

    steps = TrainingSteps(**BUDGET)
    drive(make_oracle(tmp_path, top_k=1), steps, loss)
    bigger = make_oracle(tmp_path, top_k=1, max_iterations=6)
    bigger.reload()
    assert bigger.phase == "explore"
    # The extension's first explored trial is far better than any before, the others worse.
    drive(bigger, steps, lambda values, step, k: loss(values, step, k, -1.0 if k == 0 else 1.0))
    decisions = bigger._decisions
    best = decisions.ranked_explored()[0]
    assert best.iteration == 4  # explored by the extension
    assert decisions.records.continuation_of(best.trial_id) is not None


def test_a_continuation_retrained_from_step_0_is_refused_with_where_it_starts(tmp_path):
    oracle = make_oracle(tmp_path)
    while True:
        trial = oracle.create_trial("tuner0")
        if oracle.phase == "finalize":
            break
        run(oracle, trial)
    values = trial.hyperparameters.values
    parent = oracle._decisions.records[values["tuner/trial_id"]]
    # The protocol says where a continuation starts: after its parent's steps.
    assert values["tuner/initial_step"] == parent.steps == BUDGET["early_steps"]
    # A loop that cannot resume retrains it from step 0: what it trains would not be what
    # the budget counts, so its first report is refused with one clear error.
    with pytest.raises(FatalSearchError, match=r"continues trial .* after its step 8 "):
        oracle.update_trial(trial.trial_id, {"loss": 1.0}, step=4)
    record = oracle._decisions.records[trial.trial_id]
    assert record.steps == 0 and record.early == parent.early
    run(oracle, trial)  # reporting from step 12 on is accepted
    assert record.is_real

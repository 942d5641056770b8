"""Budgets held and refusals that make sense (issue 26, items 7-11, 16, 19): the oracle driven
by hand on the tiny budget, without training."""

import pytest
from keras_tuner.engine.trial import TrialStatus
from test_initial_screen import screened_oracle
from test_oracle_protocol import BUDGET, finish, make_oracle, run


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

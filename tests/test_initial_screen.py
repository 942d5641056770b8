"""A screened phase 1: uniform configurations screened to the early budget, the best of them
trained fully. The sizes by hand, and the oracle's decisions driven by hand without training."""

import pytest
from keras_tuner.engine.trial import TrialStatus
from test_oracle_protocol import BUDGET, finish, make_oracle, run
from test_screening import AAE

from kt_predictive import SearchError
from kt_predictive.decisions import SearchDecisions
from kt_predictive.records import training_steps
from kt_predictive.schedule import PhaseSizes, size_phases

from tiny_problem import build_model, flat_oracle, flat_search, regression_data

pytestmark = pytest.mark.jax


def test_size_phases_with_a_screened_phase_1_by_hand():
    # 10 full trainings, e = 60/400 = 0.15, eta 3: rungs 10 and 30 (r = 2); an explored
    # trial costs 10 + 20/3 + 30/9 = 20 steps = 0.05 of a full training.
    # Phase 1 keeps 3 networks of 3·3² = 27 screened: 27·0.05 + 3·0.85 = 3.9.
    # Continuations: round(0.5·10/0.85) = 6, of which phase 1's 3: top_k = 3 (2.55).
    # Exploration: floor((10 - 3.9 - 2.55)/0.05) = 71 (71/9 ≈ 7.9 reach early_steps >= 3).
    sizes = size_phases(10, AAE, reduction_factor=3, initial_screen=True)
    assert sizes == PhaseSizes(initial_trials=3, max_iterations=71, top_k=3, initial_screen=27)
    assert sizes.cost(AAE, 3) == pytest.approx(3.9 + 71 * 0.05 + 2.55)
    assert sizes.cost(AAE, 3) <= 10
    # Without rungs phase 1 screens 3 configurations per network it keeps, to early_steps.
    plain = size_phases(10, AAE, initial_screen=True)
    assert plain.initial_screen == 9
    explored = plain.max_iterations * 0.15
    assert plain.cost(AAE) == pytest.approx(9 * 0.15 + 3 * 0.85 + explored + 2.55)


def test_size_phases_with_the_screened_phase_1_within_its_share_by_hand():
    # 100 full trainings, no rungs, e = 0.15: a kept network costs 3 screened (3·0.15) and
    # its continuation (0.85) = 1.3, so a fifth of the budget keeps round(20/1.3) = 15 of 45.
    # Phase 1: 45·0.15 + 15·0.85 = 19.5. Continuations: round(50/0.85) = 59, none of them
    # phase 1's. Exploration: floor((100 - 19.5 - 59·0.85)/0.15) = floor(30.35/0.15) = 202.
    sizes = size_phases(100, AAE, initial_screen=True, screen_within_initial_share=True)
    assert sizes == PhaseSizes(initial_trials=15, max_iterations=202, top_k=59, initial_screen=45)
    assert sizes.cost(AAE) == pytest.approx(19.5 + 202 * 0.15 + 59 * 0.85)
    # Paid from the continuations' half instead, phase 1 keeps 20 of 60 and top_k is 39.
    assert size_phases(100, AAE, initial_screen=True).top_k == 59 - 20
    # The oracle and PredictiveSearch take both settings and size themselves the same way.
    oracle = flat_oracle(
        search_budget=100,
        full_steps=400,
        early_steps=60,
        window=10,
        final_window=40,
        reduction_factor=3,
        initial_screen=True,
        screen_within_initial_share=True,
        initial_screen_halvings=1,
    )
    # One halving with eta 3: a kept network costs 3·0.05 + 0.85 = 1, so 20 of 60 (cost 20);
    # top_k = 59 leaves floor((100 - 20 - 50.15)/0.05) = 597 explored (66 reach early_steps).
    assert (oracle.initial_screen, oracle.initial_trials, oracle.max_iterations, oracle.top_k) == (
        60,
        20,
        597,
        59,
    )


def test_initial_screen_halvings_by_hand():
    # 10 full trainings, eta 3, three halvings: 3·27 = 81 screened, 81·0.05 + 3·0.85 = 6.6.
    # top_k = 6 - 3 = 3 leaves floor((10 - 6.6 - 2.55)/0.05) = 17 explored, of which 17/9
    # reach early_steps, fewer than 3; top_k = 2 leaves floor(1.7/0.05) = 34 (3.8 reach it).
    sizes = size_phases(10, AAE, reduction_factor=3, initial_screen=True, initial_screen_halvings=3)
    assert sizes == PhaseSizes(initial_trials=3, max_iterations=34, top_k=2, initial_screen=81)
    with pytest.raises(SearchError, match="initial_screen_halvings must be an integer >= 1"):
        size_phases(10, AAE, reduction_factor=3, initial_screen=True, initial_screen_halvings=0)


def screened_oracle(tmp_path, **kwargs):
    """make_oracle (12 configurations) whose phase 1 screens 6 and trains the best 2 fully."""
    settings = dict(initial_trials=2, initial_screen=6, max_iterations=3, top_k=1)
    return make_oracle(tmp_path, **{**settings, **kwargs})


def test_phase_1_trains_fully_the_best_of_its_screen(tmp_path):
    oracle = screened_oracle(tmp_path)
    released = []
    oracle.release_checkpoints = released.extend
    trials = [oracle.create_trial(f"tuner{i}") for i in range(6)]
    assert all(t.status == TrialStatus.RUNNING for t in trials)
    # Which to train fully is known once every screened trial has settled: until then, wait.
    assert oracle.create_trial("tuner6").status == TrialStatus.IDLE
    for trial in trials:
        run(oracle, trial)
    screened = [r for r in oracle.records() if r.role == "initial"]
    # Each trained to the early budget only (8 steps) and has no final loss yet.
    assert all(r.steps == 8 and r.real_final is None and r.status == "complete" for r in screened)
    best = sorted(screened, key=lambda r: r.early[-1])[:2]
    continued = []
    for _ in range(2):
        trial = oracle.create_trial("tuner0")
        assert oracle.phase == "initial"
        continued.append(trial.hyperparameters.values["tuner/trial_id"])
        run(oracle, trial)
    assert continued == [r.trial_id for r in best]
    # Phase 2: m and M and the predictor come from the two networks trained fully; the
    # other four are predicted, and their early checkpoints are released.
    assert oracle.phase == "explore"
    records = oracle._decisions.records
    networks = records.phase1_networks()
    assert [r.parent_id for r in networks] == continued
    assert oracle._decisions.predictor_trials == [r.trial_id for r in networks]
    assert oracle.loss_bounds == (
        min(r.real_final for r in networks),
        max(r.real_final for r in networks),
    )
    others = [r for r in records.by_role("initial") if r.trial_id not in continued]
    assert all(r.predicted is not None for r in others)
    assert sorted(released) == sorted([*continued, *(r.trial_id for r in others)])
    # Every screened configuration counts in the allocation: the continued ones with their
    # real final loss, the others with their prediction.
    entries = dict((tuple(sorted(v.items())), x) for v, x in oracle._decisions.entries())
    assert len(entries) == 6
    for record in [*networks, *others]:
        values = records[record.parent_id].values if record.parent_id else record.values
        assert entries[tuple(sorted(values.items()))] == record.loss()
    finish(oracle)
    # Phase 4 continues top_k = 1 explored configuration; phase 1's two do not count there.
    phase4 = [r for r in records.by_role("continuation") if records[r.parent_id].role == "explore"]
    assert len(phase4) == 1 and phase4[0].is_real
    # The paper's winner is a phase-4 candidate, never one of phase 1's networks (it once
    # returned the best real network of any phase, continuations of phase 1 included).
    assert oracle.best_finalized_trial().trial_id == phase4[0].trial_id


def test_a_screened_phase_1_screens_at_the_rungs(tmp_path):
    oracle = screened_oracle(tmp_path, reduction_factor=2)
    first = oracle.create_trial("tuner0")
    assert oracle.update_trial(first.trial_id, {"loss": 1.0}, step=4).status == TrialStatus.RUNNING
    response = oracle.update_trial(first.trial_id, {"loss": 0.9}, step=8)
    assert response.status == TrialStatus.STOPPED  # the early budget
    oracle.end_trial(response)
    second = oracle.create_trial("tuner0")
    # Not among the best half of the two means at step 4: screened out there.
    response = oracle.update_trial(second.trial_id, {"loss": 2.0}, step=4)
    assert response.status == TrialStatus.STOPPED
    oracle.end_trial(response)
    record = oracle._decisions.records[second.trial_id]
    assert record.screened_at == 4 and record.status == "complete" and record.steps == 4


def test_a_resumed_search_continues_the_same_phase_1_networks(tmp_path):
    oracle = screened_oracle(tmp_path)
    for _ in range(6):
        run(oracle, oracle.create_trial("tuner0"))
    first = oracle.create_trial("tuner0")
    run(oracle, first)
    again = screened_oracle(tmp_path)
    again.reload()
    second = again.create_trial("tuner0")
    chosen = sorted((r for r in again.records() if r.role == "initial"), key=lambda r: r.early[-1])[
        :2
    ]
    parents = [t.hyperparameters.values["tuner/trial_id"] for t in (first, second)]
    assert parents == [r.trial_id for r in chosen]
    run(again, second)
    assert again.phase == "explore"
    finish(again)
    assert again.phase == "done"


@pytest.mark.parametrize(("reduction_factor", "initial_screen"), [(2, "auto"), (None, True)])
def test_a_budget_sized_search_with_a_screened_phase_1_keeps_to_its_budget(
    tmp_path, reduction_factor, initial_screen
):
    oracle = make_oracle(
        tmp_path,
        initial_trials=None,
        max_iterations=None,
        top_k=None,
        search_budget=10,
        reduction_factor=reduction_factor,
        initial_screen=initial_screen,
    )
    # One rung (4) at eta 2, or none: phase 1 screens 3·2 or 3·3 configurations, keeps 3.
    assert (oracle.initial_trials, oracle.initial_screen) == (3, 3 * (reduction_factor or 3))
    finish(oracle)
    records = oracle._decisions.records
    assert training_steps(oracle.records()) <= 10 * BUDGET["full_steps"]
    assert len(records.phase1_networks()) == 3
    assert oracle.phase == "done"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(initial_trials=3, max_iterations=2, top_k=1, initial_screen=2), "at least"),
        (dict(initial_trials=3, max_iterations=2, top_k=1, initial_screen="yes"), "a number"),
        (dict(search_budget=10, initial_screen=20), "not both"),
        (dict(initial_trials=3, max_iterations=2, top_k=1, initial_screen=True), "sizes"),
        (
            dict(initial_trials=3, max_iterations=2, top_k=1, screen_within_initial_share=True),
            "size a screened phase 1 from search_budget",
        ),
        (
            dict(search_budget=10, initial_screen=False, initial_screen_halvings=2),
            "size a screened phase 1 from search_budget",
        ),
    ],
)
def test_a_bad_initial_screen_is_one_clear_error(kwargs, message):
    with pytest.raises(SearchError, match=message):
        flat_oracle(**kwargs, **BUDGET)


def test_a_search_saved_before_screened_phase_1s_continues():
    current = {
        "full_steps": 24,
        "early_steps": 8,
        "window": 4,
        "final_window": 4,
        "initial_trials": 4,
        "initial_screen": 0,
        "allocation": {},
        "objective": "loss",
    }
    saved = {k: v for k, v in current.items() if k != "initial_screen"}
    assert SearchDecisions.changed_settings({"settings": saved, "grids": {}}, current) == []
    screened = {**current, "initial_screen": 8}
    changed = SearchDecisions.changed_settings({"settings": dict(saved), "grids": {}}, screened)
    assert changed == ["initial_screen: saved 0, now 8"]


def test_a_real_search_trains_its_screened_phase_1_networks_from_their_checkpoints(tmp_path):
    tuner = flat_search(
        build_model,
        search_budget=10,  # below 20: screening (eta 3, one rung at 4) and a screened phase 1
        tuning_trials=1,
        report_splits=0,
        seed=5,
        directory=tmp_path,
        project_name="screened",
        **BUDGET,
    )
    oracle = tuner.oracle
    assert (oracle.initial_trials, oracle.initial_screen) == (3, 9)
    x, y = regression_data()
    tuner.search(x, y, batch_size=32, verbose=0)
    assert oracle.phase == "done"
    records = oracle._decisions.records
    networks = records.phase1_networks()
    assert len(networks) == 3
    for network in networks:
        parent = records[network.parent_id]
        # Resumed from the screened trial's early checkpoint: its windows are the parent's
        # and it trained only the steps after them.
        assert parent.role == "initial" and parent.steps == 8 and network.steps == 24
        assert network.early == pytest.approx(parent.early, rel=1e-6)
    assert training_steps(oracle.records()) <= 10 * BUDGET["full_steps"]
    best = oracle.get_best_trials(1)[0]
    assert records[best.trial_id].is_real


def test_when_few_reach_the_early_budget_the_best_screened_out_are_trained_fully(tmp_path):
    # Each phase-1 trial does worse at the rung (4) than every one before it: with eta 2 only
    # the first goes on to early_steps (8). Phase 1 must still train initial_trials = 2
    # networks: the first, and the best of those screened out at the rung, from step 4.
    oracle = screened_oracle(tmp_path, reduction_factor=2, initial_screen=4)
    for k in range(4):
        trial = oracle.create_trial("tuner0")
        response = oracle.update_trial(trial.trial_id, {"loss": 1.0 + k}, step=4)
        if k == 0:
            response = oracle.update_trial(trial.trial_id, {"loss": 0.9}, step=8)
        assert response.status == TrialStatus.STOPPED
        oracle.end_trial(response)
    screened = [r for r in oracle.records() if r.role == "initial"]
    assert [r.steps for r in screened] == [8, 4, 4, 4]
    parents = []
    for i in range(2):
        trial = oracle.create_trial("tuner0")
        parent = oracle._decisions.records[trial.hyperparameters.values["tuner/trial_id"]]
        parents.append(parent.trial_id)
        # The continuation trains on from its parent's checkpoint, reporting the windows the
        # parent did not reach.
        for step in range(parent.steps + 4, BUDGET["full_steps"] + 1, 4):
            oracle.update_trial(trial.trial_id, {"loss": (0.5 + i) / step}, step=step)
        trial.status = TrialStatus.COMPLETED
        oracle.end_trial(trial)
    assert parents == [screened[0].trial_id, screened[1].trial_id]
    assert oracle.phase == "explore"
    networks = oracle._decisions.records.phase1_networks()
    assert len(networks) == 2 and all(r.early_complete for r in networks)
    assert oracle._decisions.predictor_trials == [r.trial_id for r in networks]


def test_a_space_smaller_than_the_screen_is_screened_whole(tmp_path):
    # 12 configurations; search_budget 30 sizes phase 1 at the best 6 of 18 (no rungs at 30).
    oracle = make_oracle(
        tmp_path, initial_trials=None, max_iterations=None, top_k=None, search_budget=30
    )
    assert (oracle.initial_trials, oracle.initial_screen) == (6, 18)
    finish(oracle)
    records = oracle._decisions.records
    assert len(records.by_role("initial")) == 12 and oracle._decisions.screen_exhausted
    # Nothing is left to explore: the budget continues every screened one, not just 6.
    assert len(records.phase1_networks()) == 12
    assert oracle.phase == "done"
    # The flag is part of the saved state: a reloaded search knows its screen is complete.
    again = make_oracle(
        tmp_path, initial_trials=None, max_iterations=None, top_k=None, search_budget=30
    )
    again.reload()
    assert again._decisions.screen_exhausted

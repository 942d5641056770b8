"""The settings objects, the oracle's small signature, and changed settings refused on resume."""

import dataclasses
import inspect

import keras_tuner
import pytest

import kt_predictive
from kt_predictive import (
    AllocationRule,
    FatalSearchError,
    HybridPredictor,
    PredictiveOracle,
    PredictiveSearch,
    PredictorSettings,
    Schedule,
    Screening,
    SearchError,
    TrainingSteps,
)
from kt_predictive.settings import plan

pytestmark = pytest.mark.jax

STEPS = TrainingSteps(full_steps=24, early_steps=8, window=4, final_window=4)
SCHEDULE = Schedule(initial_trials=3, max_iterations=3, top_k=1)


def space() -> keras_tuner.HyperParameters:
    hp = keras_tuner.HyperParameters()
    hp.Choice("a", [1, 2, 3])
    hp.Choice("b", ["x", "y"])
    return hp


def test_the_public_api_is_small_and_the_oracle_takes_at_most_12_parameters():
    assert len(kt_predictive.__all__) <= 20
    assert len(inspect.signature(PredictiveOracle).parameters) <= 12
    # PredictiveSearch forwards the oracle's parameters without restating them, and help()
    # shows them.
    search = inspect.signature(PredictiveSearch).parameters
    assert set(inspect.signature(PredictiveOracle).parameters) <= set(search)
    assert "keep_models" in search


def test_each_settings_group_refuses_a_bad_value_with_one_clear_error():
    with pytest.raises(SearchError, match="search_budget must be a positive number"):
        Schedule(search_budget=0)
    with pytest.raises(SearchError, match="give either search_budget"):
        Schedule(search_budget=10, top_k=2)
    with pytest.raises(SearchError, match="initial_trials must be an integer >= 2"):
        Schedule(initial_trials=1)
    with pytest.raises(SearchError, match="final_share must be a number in"):
        Schedule(final_share=1.0)
    with pytest.raises(SearchError, match="reduction_factor"):
        Screening(reduction_factor=1)
    with pytest.raises(SearchError, match="initial_screen must be a number"):
        Screening(initial_screen="some")
    with pytest.raises(SearchError, match="tuning_trials must be an integer >= 1"):
        PredictorSettings(tuning_trials=0)
    with pytest.raises(SearchError, match="predictor must be a scikit-learn regressor"):
        PredictorSettings(predictor="svr")
    with pytest.raises(SearchError, match=r"threshold for 'a' must be a number in \(0, 1\]"):
        AllocationRule(thresholds={"a": 1.5})
    with pytest.raises(SearchError, match="thresholds must be 'paper', 'midway', a number"):
        AllocationRule(thresholds="half")


def test_search_budget_is_the_schedule_shorthand_and_conflicts_with_a_sized_schedule():
    shorthand = PredictiveOracle(search_budget=30, steps=STEPS)
    spelled = PredictiveOracle(steps=STEPS, schedule=Schedule(search_budget=30))
    sizes = ("initial_trials", "max_iterations", "top_k", "initial_screen", "reduction_factor")
    assert [getattr(shorthand, n) for n in sizes] == [getattr(spelled, n) for n in sizes]
    # A schedule that sizes nothing lends its other settings to the shorthand.
    shared = PredictiveOracle(search_budget=30, steps=STEPS, schedule=Schedule(final_share=0.3))
    assert shared.schedule.search_budget == 30 and shared.schedule.final_share == 0.3
    with pytest.raises(SearchError, match="both size the phases"):
        PredictiveOracle(search_budget=30, steps=STEPS, schedule=SCHEDULE)
    with pytest.raises(SearchError, match="steps must be a TrainingSteps"):
        PredictiveOracle(steps=(24, 8, 4, 4))


def test_plan_resolves_auto_in_one_place():
    sized = plan(STEPS, Schedule(search_budget=10))
    assert sized.reduction_factor == 3 and sized.initial_screen > 0
    assert sized.budget_steps == 10 * STEPS.full_steps
    counted = plan(STEPS, SCHEDULE)
    assert (counted.initial_trials, counted.max_iterations, counted.top_k) == (3, 3, 1)
    assert counted.reduction_factor is None and counted.initial_screen == 0
    assert counted.budget_steps is None
    with pytest.raises(SearchError, match="size a screened phase 1 from search_budget"):
        plan(STEPS, SCHEDULE, Screening(_screen_within_initial_share=True))


def test_thresholds_as_a_number_or_a_mapping_reach_the_resolved_thresholds():
    number = PredictiveOracle(
        steps=STEPS, schedule=SCHEDULE, allocation=AllocationRule(thresholds=0.9)
    )
    number.update_space(space())
    assert number._decisions.resolve_thresholds(number.grids) == {"a": 0.9, "b": 0.9}
    mapping = PredictiveOracle(
        steps=STEPS,
        schedule=SCHEDULE,
        allocation=dataclasses.replace(AllocationRule.paper(), thresholds={"a": 0.5}),
    )
    mapping.update_space(space())
    # The others take the midway default: (|V| + 1) / (2 |V|).
    assert mapping._decisions.resolve_thresholds(mapping.grids) == {"a": 0.5, "b": 0.75}
    with pytest.raises(SearchError, match="not in the search space"):
        PredictiveOracle(
            steps=STEPS,
            schedule=SCHEDULE,
            allocation=AllocationRule(thresholds={"z": 0.5}),
            hyperparameters=space(),
        ).update_space(space())


def test_an_old_argument_name_says_where_it_went(tmp_path):
    with pytest.raises(SearchError, match=r"full_steps -> steps=TrainingSteps\(full_steps=...\)"):
        PredictiveSearch(lambda hp: None, full_steps=40, directory=tmp_path)


def open_search(folder, **changes) -> PredictiveOracle:
    settings = dict(
        steps=STEPS,
        schedule=SCHEDULE,
        screening=Screening.paper(),
        allocation=AllocationRule.evidence(),
        predictor=PredictorSettings(tuning_trials=1, report_splits=0),
        hyperparameters=space(),
        seed=3,
    )
    oracle = PredictiveOracle(**{**settings, **changes})
    return oracle.open(str(folder), "resume")


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"screening": Screening(reduction_factor=2, initial_screen=None)}, "reduction_factor"),
        ({"allocation": AllocationRule(thresholds=0.9)}, "allocation"),
        ({"seed": 4}, "seed: saved 3, now 4"),
        (
            {"predictor": PredictorSettings(refit_predictor=False, tuning_trials=1)},
            "refit_predictor: saved True, now False",
        ),
        (
            {"predictor": PredictorSettings(predictor=HybridPredictor(target="final"))},
            "predictor: saved None",
        ),
    ],
)
def test_a_resume_with_changed_settings_is_refused_naming_each(tmp_path, changes, named):
    oracle = open_search(tmp_path)
    assert oracle.create_trial("tuner0").status == "RUNNING"
    # The same settings continue the search.
    assert len(open_search(tmp_path).records()) == 1
    with pytest.raises(FatalSearchError, match="searched with other settings") as refused:
        open_search(tmp_path, **changes)
    message = str(refused.value)
    assert named in message and "new project_name or overwrite=True" in message
    # The tuning effort and the report may change: they do not decide which trials run.
    open_search(tmp_path, predictor=PredictorSettings(tuning_trials=5, report_splits=5))

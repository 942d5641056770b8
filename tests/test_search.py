"""Whole searches on a real Keras model, in process."""

import json
import math

import keras
import keras_tuner
import numpy as np
import pytest
from keras_tuner import errors

from kt_predictive import PredictiveOracle, PredictiveSearch, PredictiveTuner
from kt_predictive.checkpoint import TRAINING_STATE_FILE

from tiny_problem import SEARCH, build_model, grouped, regression_data

# Also run by `make test`'s JAX leg (KERAS_BACKEND=jax): backend-independent code.
pytestmark = pytest.mark.jax


@pytest.fixture
def finished(tiny_search):
    """The session's finished tiny search (conftest.py), shared with test_report and
    test_robustness."""
    return tiny_search


def test_all_four_phases_run(finished):
    tuner, directory = finished
    oracle = tuner.oracle
    assert oracle.phase == "done"
    records = oracle.records()
    initial = [r for r in records if r.role == "initial"]
    explored = [r for r in records if r.role == "explore"]
    continued = [r for r in records if r.role == "continuation"]
    assert len(initial) == SEARCH["initial_trials"]
    assert all(r.seconds > 0 for r in records)
    assert 1 <= len(explored) <= SEARCH["max_iterations"]
    assert oracle.exploration_end is not None
    # Phase 1: trained to the full budget, real final mean, all early windows.
    for r in initial:
        assert r.is_real and r.steps == SEARCH["full_steps"] and r.predicted is None
        assert r.early_complete and len(r.early) == 2
    # Phase 3: stopped at the early budget with a predicted final loss only, or screened out
    # at the rung (window 4) with neither.
    for r in explored:
        if r.screened_out:
            assert r.steps == r.screened_at == 4 and r.predicted is None and not r.is_real
        else:
            assert r.is_predicted_only and r.steps == SEARCH["early_steps"]
        # A finished search keeps the early checkpoints of its uncontinued phase-4 targets
        # only (raising top_k continues them).
        kept = r.trial_id in oracle._decisions.checkpoints_needed()
        state = directory / "tiny" / f"trial_{r.trial_id}" / TRAINING_STATE_FILE
        assert state.exists() == kept
    # Phase 4: new trials that point at explored parents and train them to the full budget.
    candidates = [r for r in explored if r.is_predicted_only]
    assert len(continued) == min(SEARCH["top_k"], len(candidates))
    parents = {r.trial_id: r for r in explored}
    for r in continued:
        parent = parents[r.parent_id]
        assert r.is_real and r.steps == SEARCH["full_steps"]
        assert r.values == parent.values and r.early == parent.early
        trial = oracle.get_trial(r.trial_id)
        assert trial.hyperparameters.values["tuner/trial_id"] == r.parent_id
        # The curve continued from the parent's checkpoint: only the final mean was new (the
        # parent's windows are not reported again).
        assert [h.step for h in trial.metrics.get_history("loss")] == [SEARCH["full_steps"]]
    assert len({r.parent_id for r in continued}) == len(continued)
    # Explored trials say their score is a prediction.
    for r in explored:
        assert oracle.get_trial(r.trial_id).metrics.exists("predicted_final")
    assert (
        oracle.best_finalized_trial().trial_id
        == min(continued, key=lambda r: r.real_final).trial_id
    )


def test_probabilities_and_best_by_real_loss(finished):
    tuner, _ = finished
    oracle = tuner.oracle
    for values in oracle.probabilities().values():
        assert math.isclose(sum(values.values()), 1.0)
    assert oracle.probability_history()[0]["iteration"] == 0
    real = [r for r in oracle.records() if r.is_real]
    best = min(real, key=lambda r: r.real_final)
    assert tuner.get_best_hyperparameters()[0].values == best.values
    assert tuner.oracle.get_best_trials()[0].score == best.real_final
    model = tuner.get_best_models()[0]
    x, _ = regression_data()
    assert model.predict(x[:2], verbose=0).shape == (2, 1)
    # A fully trained network's file holds its weights, not Adam's moments (3x the bytes).
    import h5py

    best_dir = tuner.get_trial_dir(tuner.oracle.get_best_trials()[0].trial_id)
    with h5py.File(f"{best_dir}/checkpoint.weights.h5") as weights:
        names = []
        weights.visit(names.append)
    assert names and not any("optimizer" in name for name in names)
    report = oracle.predictor_report
    assert set(report) == {"svr", "rf", "hyb"} and report["hyb"]["mae"] > 0


def test_results_summary_says_how_trials_are_scored(finished, capsys):
    tuner, _ = finished
    tuner.results_summary(2)
    out = capsys.readouterr().out
    window = tuner.steps.final_window
    assert out.startswith(
        f"Scoring: a fully trained trial's score is the mean of 'loss' over its final window "
        f"(the last {window} optimizer steps), not its best epoch"
    )
    # keras-tuner's summary follows, best trial first, with its real final loss as the score.
    best = tuner.oracle.get_best_trials(1)[0]
    assert "Results summary" in out and f"Score: {best.score}" in out


def test_reload_continues_without_rerunning(finished):
    tuner, directory = finished
    before = json.loads((directory / "tiny" / "oracle.json").read_text())
    again = PredictiveSearch(
        build_model, directory=directory, project_name="tiny", **grouped(SEARCH)
    )
    assert again.oracle.records() == tuner.oracle.records()
    assert again.oracle.probabilities() == tuner.oracle.probabilities()
    assert again.oracle.fixed_values == tuner.oracle.fixed_values
    x, y = regression_data()
    again.search(x, y, batch_size=32, verbose=0)  # finished: nothing to run
    after = json.loads((directory / "tiny" / "oracle.json").read_text())
    assert after["predictive"] == before["predictive"]
    assert again.oracle.records() == tuner.oracle.records()


def test_state_round_trip(finished):
    tuner, directory = finished
    state = json.loads(json.dumps(tuner.oracle.get_state()))  # through plain JSON
    oracle = PredictiveOracle(hyperparameters=tuner.oracle.get_space(), **grouped(SEARCH))
    oracle.open(str(directory), "tiny")
    oracle.set_state(state)
    assert oracle.get_state()["predictive"] == state["predictive"]
    assert oracle.records() == tuner.oracle.records()
    # The random stream continues where it was saved.
    expected = np.random.default_rng()
    expected.bit_generator.state = state["predictive"]["rng"]
    assert oracle._decisions.rng.random() == expected.random()


def test_changed_settings_refuse_to_continue(finished):
    _, directory = finished
    settings = grouped({**SEARCH, "early_steps": 12})
    with pytest.raises(errors.FatalValueError, match=r"early_steps: saved 8, now 12"):
        PredictiveSearch(build_model, directory=directory, project_name="tiny", **settings)


def test_diverging_trials_are_failed_with_the_worst_loss(tmp_path):
    def build(hp):
        model = keras.Sequential(
            [
                keras.Input((8,)),
                keras.layers.Dense(hp.Choice("units", [4, 8])),
                keras.layers.Dense(1),
            ]
        )
        model.compile(
            optimizer=keras.optimizers.SGD(hp.Choice("lr", [1e-3, 1e-2, 1e9])), loss="mse"
        )
        return model

    tuner = PredictiveSearch(
        build,
        directory=tmp_path,
        project_name="nan",
        **grouped({**SEARCH, "initial_trials": 6, "max_iterations": 3}),
    )
    x, y = regression_data()
    tuner.search(x, y, batch_size=32, verbose=0)
    oracle = tuner.oracle
    assert oracle.phase == "done"
    failed = [r for r in oracle.records() if r.failed]
    assert failed and all(r.values["lr"] == 1e9 for r in failed)
    for r in failed:
        assert (
            r.real_final is None and r.diverged_at is not None and r.diverged_at <= SEARCH["window"]
        )
    # Failed trials never train the predictor.
    assert not {r.trial_id for r in failed} & set(oracle._decisions.predictor_trials)
    assert all(
        np.isfinite(p) for values in oracle.probabilities().values() for p in values.values()
    )
    # The diverging learning rate is the least likely one.
    assert min(oracle.probabilities()["lr"], key=oracle.probabilities()["lr"].get) == 1e9
    assert tuner.get_best_hyperparameters()[0].values["lr"] != 1e9


def test_float_without_grid_fails_at_construction(tmp_path):
    def build(hp):
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
        model.compile(
            optimizer=keras.optimizers.SGD(hp.Float("lr", 1e-4, 1e-1, sampling="log")), loss="mse"
        )
        return model

    with pytest.raises(errors.FatalValueError, match="without a step"):
        PredictiveSearch(build, directory=tmp_path, **grouped(SEARCH))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"beta": 0.0}, "beta must be > 0"),
        ({"early_steps": 24}, "smaller than full_steps"),
        ({"initial_trials": 1}, "initial_trials"),
    ],
)
def test_bad_oracle_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PredictiveOracle(**grouped({**SEARCH, **kwargs}))


def test_tuner_needs_the_predictive_oracle(tmp_path):
    with pytest.raises(ValueError, match="PredictiveOracle"):
        PredictiveTuner(
            build_model,
            oracle=keras_tuner.oracles.RandomSearchOracle(max_trials=2),
            directory=tmp_path,
        )

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

from tiny_problem import SEARCH, build_model, regression_data


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    directory = tmp_path_factory.mktemp("search")
    tuner = PredictiveSearch(build_model, directory=directory, project_name="tiny", **SEARCH)
    x, y = regression_data()
    tuner.search(x, y, batch_size=32, verbose=0)
    return tuner, directory


def test_all_four_phases_run(finished):
    tuner, directory = finished
    oracle = tuner.oracle
    assert oracle.phase == "done"
    records = oracle.records()
    initial = [r for r in records if r["iteration"] is None]
    explored = [r for r in records if r["iteration"] is not None]
    assert len(initial) == SEARCH["initial_trials"]
    assert all(r["seconds"] > 0 for r in records)
    assert 1 <= len(explored) <= SEARCH["max_iterations"]
    # Phase 1: trained to the full budget, real final mean, all early windows.
    for r in initial:
        assert r["source"] == "real" and r["steps"] == SEARCH["full_steps"]
        assert None not in r["early"] and len(r["early"]) == 2
    # Phase 3: stopped at the early budget with a predicted final loss, except the top_k,
    # which phase 4 resumed from their checkpoints to the full budget.
    continued = [r for r in explored if r["phase"] == "finalize"]
    assert len(continued) == min(SEARCH["top_k"], len(explored))
    for r in continued:
        assert r["source"] == "real" and r["steps"] == SEARCH["full_steps"]
        assert r["predicted"] is not None
    for r in explored:
        if r not in continued:
            assert r["source"] == "predicted" and r["steps"] == SEARCH["early_steps"]
            assert not (directory / "tiny" / f"trial_{r['trial_id']}" / TRAINING_STATE_FILE).exists()
    # The continued trials were the best predicted ones.
    predicted = sorted(r["predicted"] for r in explored)
    assert sorted(r["predicted"] for r in continued) == predicted[: len(continued)]
    # Their early curve is the one measured in phase 3 (continued, not retrained).
    trial = oracle.get_trial(continued[0]["trial_id"])
    history = trial.metrics.get_history("loss")
    assert [h.step for h in history] == [4, 8, SEARCH["full_steps"]]
    assert [h.value[0] for h in history[:2]] == pytest.approx(continued[0]["early"])


def test_probabilities_and_best_by_real_loss(finished):
    tuner, _ = finished
    oracle = tuner.oracle
    for values in oracle.probabilities().values():
        assert math.isclose(sum(values.values()), 1.0)
    assert oracle.probability_history()[0]["iteration"] == 0
    real = [r for r in oracle.records() if r["source"] == "real" and r["status"] == "complete"]
    best = min(real, key=lambda r: r["final"])
    assert tuner.get_best_hyperparameters()[0].values == best["values"]
    assert tuner.oracle.get_best_trials()[0].score == best["final"]
    model = tuner.get_best_models()[0]
    x, _ = regression_data()
    assert model.predict(x[:2], verbose=0).shape == (2, 1)
    report = oracle.predictor_report
    assert set(report) == {"svr", "rf", "hyb"} and report["hyb"]["mae"] > 0


def test_reload_continues_without_rerunning(finished):
    tuner, directory = finished
    before = json.loads((directory / "tiny" / "oracle.json").read_text())
    again = PredictiveSearch(build_model, directory=directory, project_name="tiny", **SEARCH)
    assert again.oracle.records() == tuner.oracle.records()
    assert again.oracle.probabilities() == tuner.oracle.probabilities()
    assert again.oracle.fixed_values == tuner.oracle.fixed_values
    x, y = regression_data()
    again.search(x, y, batch_size=32, verbose=0)  # finished: nothing to run
    after = json.loads((directory / "tiny" / "oracle.json").read_text())
    assert after["predictive"]["records"] == before["predictive"]["records"]


def test_state_round_trip(finished):
    tuner, directory = finished
    state = json.loads(json.dumps(tuner.oracle.get_state()))  # through plain JSON
    oracle = PredictiveOracle(hyperparameters=tuner.oracle.get_space(), **SEARCH)
    oracle._set_project_dir(str(directory), "copy")
    oracle.set_state(state)
    assert oracle.get_state()["predictive"] == state["predictive"]
    assert oracle.records() == tuner.oracle.records()
    # The random stream continues where it was saved.
    expected = np.random.default_rng()
    expected.bit_generator.state = state["predictive"]["rng"]
    assert oracle._rng.random() == expected.random()


def test_changed_settings_refuse_to_continue(finished):
    _, directory = finished
    settings = {**SEARCH, "early_steps": 12}
    with pytest.raises(errors.FatalValueError, match=r"early_steps: saved 8, now 12"):
        PredictiveSearch(build_model, directory=directory, project_name="tiny", **settings)


def test_diverging_trials_are_failed_with_the_worst_loss(tmp_path):
    def build(hp):
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(hp.Choice("units", [4, 8])), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(hp.Choice("lr", [1e-3, 1e-2, 1e9])), loss="mse")
        return model

    tuner = PredictiveSearch(
        build, directory=tmp_path, project_name="nan", **{**SEARCH, "initial_trials": 6, "max_iterations": 3}
    )
    x, y = regression_data()
    tuner.search(x, y, batch_size=32, verbose=0)
    oracle = tuner.oracle
    assert oracle.phase == "done"
    _, high = oracle.loss_bounds
    failed = [r for r in oracle.records() if r["status"] == "failed"]
    assert failed and all(r["values"]["lr"] == 1e9 for r in failed)
    for r in failed:
        assert r["final"] == high and r["diverged_at"] is not None and r["diverged_at"] <= SEARCH["window"]
    assert all(np.isfinite(p) for values in oracle.probabilities().values() for p in values.values())
    # The diverging learning rate is the least likely one.
    assert min(oracle.probabilities()["lr"], key=oracle.probabilities()["lr"].get) == 1e9
    assert tuner.get_best_hyperparameters()[0].values["lr"] != 1e9


def test_float_without_grid_fails_at_construction(tmp_path):
    def build(hp):
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(hp.Float("lr", 1e-4, 1e-1, sampling="log")), loss="mse")
        return model

    with pytest.raises(errors.FatalValueError, match="without a step"):
        PredictiveSearch(build, directory=tmp_path, **SEARCH)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"beta": 0.0}, "beta must be > 0"),
        ({"early_steps": 24}, "smaller than full_steps"),
        ({"objective": "val_loss"}, "validation metric"),
        ({"initial_trials": 1}, "initial_trials"),
    ],
)
def test_bad_oracle_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PredictiveOracle(**{**SEARCH, **kwargs})


def test_tuner_needs_the_predictive_oracle(tmp_path):
    with pytest.raises(ValueError, match="PredictiveOracle"):
        PredictiveTuner(build_model, oracle=keras_tuner.oracles.RandomSearchOracle(max_trials=2), directory=tmp_path)

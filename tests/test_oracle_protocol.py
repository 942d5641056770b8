"""The oracle's trial protocol driven by hand, without training: the defects a review found
(heartbeats, STOPPED trials, failed trials and the predictor, continuations, extension) and
the state's guards (old versions, a changed space)."""

import ast
import math
import re
import subprocess
import sys
from pathlib import Path

import keras_tuner
import numpy as np
import pytest
from keras_tuner import errors
from keras_tuner.engine.trial import TrialStatus

from kt_predictive import PredictiveOracle, PredictiveSearch
from kt_predictive.checkpoint import training_state_path
from kt_predictive.progress import Position, progress_line
from kt_predictive.records import read_search
from kt_predictive.report import SearchSummary, report_notes
from kt_predictive.storage import read_json, write_json

from tiny_problem import build_model, flat_oracle, flat_search

BUDGET = dict(full_steps=24, early_steps=8, window=4, final_window=4)


def small_search(hypermodel, **overrides) -> PredictiveSearch:
    """A PredictiveSearch of a few trials on the tiny budget; overrides change any argument."""
    settings = dict(initial_trials=3, max_iterations=1, top_k=1, tuning_trials=1, report_splits=0)
    return flat_search(hypermodel, **{**settings, **BUDGET, **overrides})


def space() -> keras_tuner.HyperParameters:
    hp = keras_tuner.HyperParameters()
    hp.Choice("a", [1, 2, 3])
    hp.Choice("b", ["x", "y"])
    hp.Choice("c", [0.1, 0.01])
    return hp


def make_oracle(tmp_path, **kwargs) -> PredictiveOracle:
    """An oracle on the tiny budget; every explored trial trains to early_steps unless
    ``reduction_factor`` is given (screening has tests of its own: test_screening.py)."""
    settings = dict(
        initial_trials=4,
        max_iterations=3,
        top_k=2,
        reduction_factor=None,
        tuning_trials=1,
        report_splits=0,
        seed=3,
    )
    oracle = flat_oracle(hyperparameters=space(), **{**BUDGET, **settings, **kwargs})
    oracle.open(str(tmp_path), "hand")
    return oracle


def loss_of(values) -> float:
    """A made-up final loss that depends on the configuration."""
    return 0.1 * values["a"] + (0.05 if values["b"] == "x" else 0.0) + values["c"]


def run(oracle, trial, *, diverge_at=None, until=None) -> None:
    """Reports a trial's windows (and final mean) the way PredictiveTuner does; ends it."""
    configuration = {
        k: v for k, v in trial.hyperparameters.values.items() if not k.startswith("tuner/")
    }
    base = loss_of(configuration)
    start = 4 if "tuner/trial_id" not in trial.hyperparameters.values else BUDGET["early_steps"] + 4
    for step in range(start, BUDGET["full_steps"] + 1, 4):
        if until is not None and step > until:
            return
        if diverge_at is not None and step >= diverge_at:
            oracle.update_trial(trial.trial_id, {"loss": math.inf}, step=step)
            oracle.end_trial(_completed(trial))
            return
        # How far the early windows sit above the final loss depends on the configuration,
        # so the predictor's improvement target is not a constant.
        value = base + (1.0 + configuration["a"]) / step
        if step == BUDGET["full_steps"]:
            oracle.update_trial(trial.trial_id, {"loss": base}, step=step)
            break
        response = oracle.update_trial(trial.trial_id, {"loss": value}, step=step)
        if response.status == TrialStatus.STOPPED:
            oracle.end_trial(response)  # ending with the STOPPED object must not hang
            return
    oracle.end_trial(_completed(trial))


def _completed(trial):
    trial.status = TrialStatus.COMPLETED
    return trial


def finish(oracle, limit=100, **run_kwargs):
    for _ in range(limit):
        trial = oracle.create_trial("tuner0")
        if trial.status == TrialStatus.STOPPED:
            return
        assert trial.status == TrialStatus.RUNNING, (
            f"oracle idle with nothing running ({oracle.phase})"
        )
        run(oracle, trial, **run_kwargs)
    raise AssertionError("the search never ended")


def test_a_search_driven_by_hand_ends_and_stopped_trials_conclude(tmp_path):
    oracle = make_oracle(tmp_path)
    finish(oracle)
    records = oracle.records()
    assert oracle.phase == "done"
    explored = [r for r in records if r.role == "explore"]
    assert explored and all(r.status == "complete" and r.predicted is not None for r in explored)
    continued = [r for r in records if r.role == "continuation"]
    assert len(continued) == 2 and all(r.is_real for r in continued)


def test_open_resumes_a_search_saved_in_its_folder_and_overwrite_discards_it(tmp_path):
    oracle = make_oracle(tmp_path)
    finish(oracle)
    settings = dict(initial_trials=4, max_iterations=3, top_k=2, reduction_factor=None)
    settings.update(tuning_trials=1, report_splits=0, seed=3, **BUDGET)
    again = flat_oracle(hyperparameters=space(), **settings)
    assert again.open(str(tmp_path), "hand") is again
    assert again.phase == "done" and again.records() == oracle.records()
    assert again.create_trial("tuner0").status == TrialStatus.STOPPED
    fresh = flat_oracle(hyperparameters=space(), **settings)
    fresh.open(str(tmp_path), "hand", overwrite=True)
    assert fresh.records() == [] and fresh.create_trial("tuner0").status == TrialStatus.RUNNING


def test_heartbeats_keep_a_long_trial_alive_and_out_of_its_history(tmp_path):
    oracle = make_oracle(tmp_path, worker_timeout=0.5)
    trial = oracle.create_trial("tuner0")
    # A report between windows (a heartbeat) counts as news but is not a metric value.
    oracle.update_trial(trial.trial_id, {"loss": 1.0}, step=3)
    history = (
        oracle.get_trial(trial.trial_id).metrics.get_history("loss")
        if oracle.get_trial(trial.trial_id).metrics.exists("loss")
        else []
    )
    assert history == []
    assert oracle.records()[0].steps == 3
    # Silent past the timeout: another worker gets the trial.
    oracle.liveness._trials[trial.trial_id] -= 1.0
    other = oracle.create_trial("tuner1")
    assert other.trial_id == trial.trial_id


def test_a_trial_failing_after_the_early_budget_never_trains_the_predictor(tmp_path):
    oracle = make_oracle(tmp_path)
    trials = [oracle.create_trial("tuner0") for _ in range(1)]
    # The first phase-1 trial reports all its early windows, then diverges at step 16.
    run(oracle, trials[0], diverge_at=16)
    finish(oracle)
    failed = [r for r in oracle.records() if r.failed]
    assert [r.trial_id for r in failed] == [trials[0].trial_id]
    assert failed[0].early_complete and failed[0].real_final is None
    assert trials[0].trial_id not in oracle._decisions.predictor_trials


def test_a_crashing_continuation_has_its_own_retry_budget(tmp_path):
    oracle = make_oracle(tmp_path, max_retries_per_trial=1)
    for _ in range(20):
        trial = oracle.create_trial("tuner0")
        if oracle.phase == "finalize" and trial.status == TrialStatus.RUNNING:
            break
        run(oracle, trial)
    assert "tuner/trial_id" in trial.hyperparameters.values
    parent = trial.hyperparameters.values["tuner/trial_id"]
    trial.status = TrialStatus.INVALID  # a crash: retried once, from its own retry budget
    oracle.end_trial(trial)
    again = oracle.create_trial("tuner0")
    assert again.trial_id == trial.trial_id
    run(oracle, again)
    record = next(r for r in oracle.records() if r.trial_id == trial.trial_id)
    assert record.is_real and record.parent_id == parent
    assert oracle.end_order.count(parent) == 1 and oracle.end_order.count(trial.trial_id) == 1


def test_raising_max_iterations_extends_a_finished_search(tmp_path):
    oracle = make_oracle(tmp_path)
    finish(oracle)
    assert oracle.exploration_end == "max_iterations reached"
    before = len([r for r in oracle.records() if r.role == "explore"])
    bigger = make_oracle(tmp_path, max_iterations=6)
    bigger.reload()
    assert bigger.phase == "explore"
    finish(bigger)
    explored = [r for r in bigger.records() if r.role == "explore"]
    assert len(explored) > before and bigger.phase == "done"


def test_old_state_and_changed_space_are_refused(tmp_path):
    oracle = make_oracle(tmp_path)
    finish(oracle)
    path = tmp_path / "hand" / "oracle.json"
    # A changed space: a new value added to a Choice.
    changed = keras_tuner.HyperParameters()
    changed.Choice("a", [1, 2, 3, 4])
    changed.Choice("b", ["x", "y"])
    changed.Choice("c", [0.1, 0.01])
    other = flat_oracle(
        hyperparameters=changed, initial_trials=4, max_iterations=3, top_k=2, **BUDGET
    )
    with pytest.raises(errors.FatalValueError, match=r"a values \[1, 2, 3\] -> \[1, 2, 3, 4\]"):
        other.open(str(tmp_path), "hand")  # a saved search is reloaded, and refused
    # A state file of the previous layout names its version.
    state = read_json(path, "")
    del state["predictive"]["version"]
    write_json(path, state)
    with pytest.raises(errors.FatalValueError, match="state version 1"):
        make_oracle(tmp_path).reload()


def test_a_continuation_without_its_parent_checkpoint_is_one_clear_error(tmp_path):
    tuner = small_search(
        build_model, directory=tmp_path, project_name="tiny", max_iterations=2, seed=2
    )
    # Run phase 1 and exploration by hand-rolled trials through the real tuner, then delete
    # the candidate's early checkpoint (as a worker without a shared directory would lack it).
    from tiny_problem import regression_data

    x, y = regression_data()
    oracle = tuner.oracle
    while oracle.phase != "finalize":
        trial = oracle.create_trial("tuner0")
        tuner.run_trial(trial, x, y, batch_size=32, verbose=0)
        oracle.end_trial(_completed(trial) if trial.status != TrialStatus.STOPPED else trial)
    trial = oracle.create_trial("tuner0")
    parent = trial.hyperparameters.values["tuner/trial_id"]
    training_state_path(tuner.get_trial_dir(parent)).unlink()
    with pytest.raises(errors.FatalError, match="shared"):
        tuner.run_trial(trial, x, y, batch_size=32, verbose=0)


def test_max_trials_points_to_the_budget_arguments(tmp_path):
    with pytest.raises(ValueError, match="search_budget"):
        flat_search(build_model, directory=tmp_path, max_trials=20)


def test_read_search_gives_typed_records(tmp_path):
    oracle = make_oracle(tmp_path)
    finish(oracle)
    snapshot = read_search(tmp_path / "hand")
    assert snapshot.phase == "done"
    assert list(snapshot.records.values()) == oracle.records()


def _first_trial_record(directory, seed):
    from tiny_problem import regression_data

    tuner = small_search(build_model, directory=directory, project_name="seeded", seed=seed)
    x, y = regression_data()
    trial = tuner.oracle.create_trial("tuner0")
    tuner.run_trial(trial, x, y, batch_size=32, verbose=0)
    return tuner.oracle.records()[0]


def test_the_same_search_seed_gives_the_same_trial(tmp_path):
    first = _first_trial_record(tmp_path / "a", seed=11)
    second = _first_trial_record(tmp_path / "b", seed=11)
    assert first.values == second.values
    assert first.early == pytest.approx(second.early, rel=1e-6)
    assert first.real_final == pytest.approx(second.real_final, rel=1e-6)
    other = _first_trial_record(tmp_path / "c", seed=12)
    assert other.values != first.values or other.early != pytest.approx(first.early, rel=1e-6)


def test_seed_zero_is_a_seed(tmp_path):
    # keras-tuner's Oracle reads seed=0 as "no seed" (`seed or random.randint(...)`), and the
    # aae profiles' default seed is 0: their phase-1 configurations changed from run to run.
    phase_1 = []
    for name in ("a", "b"):
        oracle = make_oracle(tmp_path / name, seed=0)
        assert oracle.seed == 0
        phase_1.append([oracle.create_trial(f"w{i}").hyperparameters.values for i in range(4)])
    assert phase_1[0] == phase_1[1]


def test_an_objective_the_model_does_not_log_stops_the_search_at_once(tmp_path):
    from tiny_problem import regression_data

    tuner = small_search(build_model, objective="mae", directory=tmp_path, project_name="mae")
    x, y = regression_data()
    with pytest.raises(errors.FatalValueError, match="logs no 'mae'"):
        tuner.search(x, y, batch_size=32, verbose=0)
    assert len(tuner.oracle.trials) == 1  # one trial, not keras-tuner's retries and failures


def test_a_callback_that_stops_training_gives_one_story(tmp_path):
    import keras

    from tiny_problem import regression_data

    class StopAt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if self.model.optimizer.iterations.numpy() >= 14:
                self.model.stop_training = True

    tuner = small_search(
        build_model, directory=tmp_path, project_name="stop", max_consecutive_failed_trials=1
    )
    x, y = regression_data()
    with pytest.raises(RuntimeError):
        tuner.search(x, y, batch_size=32, verbose=0, callbacks=[StopAt()])
    (record,) = tuner.oracle.records()
    assert record.failed and record.steps == 14 and "14 of 24 steps" in record.failure
    line = progress_line(record, Position("phase 1", 1, 3), "loss", None, {})
    assert "14 of 24 steps" in line and "14 steps in" in line


def test_a_multi_worker_strategy_is_refused(tmp_path):
    class MultiWorker:
        """What keras-tuner reads of a MultiWorkerMirroredStrategy inside a cluster."""

        class extended:
            should_checkpoint = True

            @staticmethod
            def _in_multi_worker_mode():
                return True

    with pytest.raises(ValueError, match="multi-worker distribution_strategy"):
        flat_search(
            build_model,
            directory=tmp_path,
            distribution_strategy=MultiWorker(),
            initial_trials=3,
            max_iterations=1,
            top_k=1,
            **BUDGET,
        )


def test_an_object_store_directory_is_refused(tmp_path):
    with pytest.raises(ValueError, match="not a local path"):
        flat_search(build_model, directory="gs://bucket/runs", **BUDGET)


def test_real_phase_4_results_refit_the_predictor_and_rerank(tmp_path):
    oracle = make_oracle(tmp_path, max_iterations=4, top_k=2)
    before = {}
    for _ in range(50):
        trial = oracle.create_trial("tuner0")
        if trial.status == TrialStatus.STOPPED:
            break
        if "tuner/trial_id" in trial.hyperparameters.values and not before:
            before = {r.trial_id: r.predicted for r in oracle.records() if r.role == "explore"}
        run(oracle, trial)
    continued = [r for r in oracle.records() if r.role == "continuation"]
    assert {r.trial_id for r in continued} <= set(oracle._decisions.predictor_trials)
    after = {r.trial_id: r.predicted for r in oracle.records() if r.role == "explore"}
    waiting = [t for t in after if t not in {r.parent_id for r in continued}]
    assert waiting and any(after[t] != before[t] for t in waiting)


def test_writing_state_never_changes_the_umask(tmp_path):
    # In a fresh process: the umask is process-wide, and setting it even for a moment lets
    # another thread create files with mode 0666.
    import subprocess
    import sys

    script = (
        "import os\n"
        "def forbidden(mask):\n"
        "    raise AssertionError('umask changed')\n"
        "os.umask = forbidden\n"
        "from kt_predictive.storage import write_json, read_json\n"
        f"write_json({str(tmp_path / 'state.json')!r}, {{'a': 1}})\n"
        f"assert read_json({str(tmp_path / 'state.json')!r}, '') == {{'a': 1}}\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_a_maximised_validation_objective(tmp_path):
    """objective='val_accuracy': measured on the validation data at each window end and at
    the end, maximised; scores are the accuracies as measured."""
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int32")

    def build(hp):
        model = keras.Sequential(
            [
                keras.Input((8,)),
                keras.layers.Dense(hp.Choice("units", [2, 16]), activation="relu"),
                keras.layers.Dense(2, activation="softmax"),
            ]
        )
        model.compile(
            keras.optimizers.Adam(hp.Choice("lr", [1e-3, 3e-2])),
            "sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model

    tuner = small_search(
        build, objective="val_accuracy", directory=tmp_path, project_name="acc", seed=1
    )
    with pytest.raises(errors.FatalValueError, match="validation_data"):
        tuner.search(x, y, batch_size=32, verbose=0)
    tuner = small_search(
        build, objective="val_accuracy", directory=tmp_path, project_name="acc2", seed=1
    )
    tuner.search(x[:192], y[:192], batch_size=32, verbose=0, validation_data=(x[192:], y[192:]))
    best = tuner.oracle.get_best_trials()[0]
    model = tuner.load_model(best)
    measured = model.evaluate(x[192:], y[192:], verbose=0, return_dict=True)["accuracy"]
    # The score is the accuracy itself (not negated) and the best trial has the highest.
    assert best.score == pytest.approx(measured, abs=1e-6)
    real = [r for r in tuner.oracle.records() if r.is_real]
    assert best.score == max(-r.real_final for r in real) and 0.5 < best.score <= 1.0


def test_a_custom_loop_opens_the_oracle_publicly_and_resumes_with_open(tmp_path):
    # Without a folder, create_trial names the public call (it raised an AttributeError on
    # the private _directory before open existed).
    bare = flat_oracle(
        hyperparameters=space(), initial_trials=4, max_iterations=3, top_k=2, **BUDGET
    )
    with pytest.raises(ValueError, match=r"oracle\.open\(directory, project_name\)"):
        bare.create_trial("tuner0")
    oracle = make_oracle(tmp_path)
    first = oracle.create_trial("tuner0")
    run(oracle, first)
    # A second oracle opened on the same folder resumes the saved search.
    again = make_oracle(tmp_path)  # the same settings, opened on the same folder
    assert again.records() == oracle.records()
    assert again.create_trial("tuner0").trial_id != first.trial_id


def test_a_budget_too_small_for_screening_names_a_budget_that_works():
    # The message once said "search_budget=4 ... needs at least 4": the smallest budget
    # without screening, not the one a screened phase 1 needs.
    with pytest.raises(ValueError, match=r"search_budget=4 .* needs at least 5 ") as refused:
        flat_oracle(search_budget=4, full_steps=40, early_steps=10, window=5, final_window=5)
    assert "at least 4 " not in str(refused.value)
    flat_oracle(search_budget=5, full_steps=40, early_steps=10, window=5, final_window=5)


def test_a_prediction_never_goes_below_zero_for_a_non_negative_loss(tmp_path):
    # Every phase-1 network ends 0.3 below its early windows, and the predictor learns that
    # shift; explored trials whose windows are at 0.01 and 0.02 would be predicted at -0.29
    # and -0.28, losses no MSE can take (custom_loop.py once printed "predicted -0.87541").
    # Clipped at 0, both tied and phase 4 could not tell the better one; they stay positive,
    # below the lowest final learnt from (0.2), in the predictor's order.
    from sklearn.base import BaseEstimator, RegressorMixin

    class LastWindowShift(RegressorMixin, BaseEstimator):
        """Predicts the last early window (a row's last feature) plus the mean shift."""

        def fit(self, X, y):
            self.shift_ = float(np.mean(y - X[:, -1]))
            return self

        def predict(self, X):
            return X[:, -1] + self.shift_

    oracle = make_oracle(tmp_path, predictor=LastWindowShift())

    def train(trial, window_loss, final_loss=None):
        for step in (4, 8):
            response = oracle.update_trial(trial.trial_id, {"loss": window_loss}, step=step)
        if final_loss is not None:
            for step in range(12, BUDGET["full_steps"], 4):
                oracle.update_trial(trial.trial_id, {"loss": window_loss}, step=step)
            oracle.update_trial(trial.trial_id, {"loss": final_loss}, step=BUDGET["full_steps"])
        oracle.end_trial(response if response.status == TrialStatus.STOPPED else _completed(trial))

    for i in range(4):  # phase 1: fully trained
        train(oracle.create_trial("tuner0"), 0.5 + 0.1 * i, final_loss=0.2 + 0.1 * i)
    explored = [oracle.create_trial("tuner0"), oracle.create_trial("tuner1")]
    train(explored[0], 0.01)
    train(explored[1], 0.02)
    records = {r.trial_id: r for r in oracle.records()}
    better, worse = (records[trial.trial_id] for trial in explored)
    assert better.role == worse.role == "explore"
    assert 0 < better.predicted < worse.predicted < 0.2
    assert better.predicted == pytest.approx(0.2 * math.exp((-0.29 - 0.2) / 0.2))


def test_a_missing_predictor_report_says_why(tmp_path):
    oracle = make_oracle(tmp_path)  # report_splits=0
    with pytest.warns(UserWarning, match="phase 'initial' and has not fitted it"):
        assert oracle.predictor_report is None
    for _ in range(4):
        run(oracle, oracle.create_trial("tuner0"))
    oracle.create_trial("tuner0")  # phase 2 fits the predictor on the way to exploring
    assert oracle.phase == "explore"
    with pytest.warns(UserWarning, match="report_splits=0 turns the predictor report off"):
        assert oracle.predictor_report is None
    # The report's README.txt says so too (it said nothing; aae's report.md said "Too few
    # phase-1 trials" whatever the reason).
    summary = SearchSummary.from_oracle(oracle)
    assert summary.predictor_report is None
    assert summary.predictor_report_missing.startswith("report_splits=0 turns")
    assert f"No predictor report: {summary.predictor_report_missing}." in report_notes(summary)


def test_heartbeats_follow_the_worker_timeout(tmp_path):
    # worker_timeout=3 alone once kept the 30 s heartbeat: live workers were taken for dead
    # and trials 0000 and 0005 trained twice at once.
    tuner = small_search(build_model, worker_timeout=3, directory=tmp_path, project_name="a")
    assert tuner.heartbeat_seconds == 1.0
    assert small_search(build_model, directory=tmp_path, project_name="b").heartbeat_seconds == 30
    with pytest.raises(ValueError, match=r"heartbeat_seconds=5 is not shorter .* worker_timeout=3"):
        small_search(
            build_model,
            worker_timeout=3,
            heartbeat_seconds=5,
            directory=tmp_path,
            project_name="c",
        )


def test_a_loss_beyond_float32_counts_as_diverged(tmp_path):
    # A finite loss of 1e39 once reached phase 2 and crashed inside scikit-learn's forest
    # ("Input X contains infinity or a value too large for dtype('float32')").
    oracle = make_oracle(tmp_path)
    huge = oracle.create_trial("tuner0")
    response = oracle.update_trial(huge.trial_id, {"loss": 1e39}, step=4)
    assert response.status == TrialStatus.STOPPED
    oracle.end_trial(response)
    for _ in range(4):
        run(oracle, oracle.create_trial("tuner0"))
    explored = oracle.create_trial("tuner0")  # phase 2 fits the predictor: no crash
    assert oracle.phase == "explore" and explored.status == TrialStatus.RUNNING
    (record,) = [r for r in oracle.records() if r.trial_id == huge.trial_id]
    assert record.failed and record.diverged_at == 4


def test_a_diverged_continuation_counts_as_the_worst_loss_in_the_allocation(tmp_path):
    # It once kept counting at its parent's prediction (rank 1 of 50).
    oracle = make_oracle(tmp_path)
    trial = oracle.create_trial("tuner0")
    while "tuner/trial_id" not in trial.hyperparameters.values:  # up to the first continuation
        run(oracle, trial)
        trial = oracle.create_trial("tuner0")
    parent = trial.hyperparameters.values["tuner/trial_id"]
    run(oracle, trial, diverge_at=16)
    decisions = oracle._decisions
    (explored,) = [r for r in oracle.records() if r.trial_id == parent]
    losses = [loss for values, loss in decisions.entries() if values == explored.values]
    assert losses == [math.inf]  # the default's rank normalisation: the worst there is


def test_oracle_verbose_silences_a_custom_loop(tmp_path, capsys):
    # docs/custom_loop.md's `oracle.verbose = 0`: no line per trial, none at a phase change.
    oracle = make_oracle(tmp_path)
    assert oracle.verbose == 1 and "one line per settled trial" in PredictiveOracle.verbose.__doc__
    run(oracle, oracle.create_trial("tuner0"))
    assert capsys.readouterr().out.strip()
    oracle.verbose = 0
    while oracle.phase == "initial":
        run(oracle, oracle.create_trial("tuner0"))
    assert capsys.readouterr().out == ""


def test_the_custom_loop_page_runs_as_written(tmp_path):
    # docs/custom_loop.md's complete loop, run as a user copies it: a screened phase 1
    # (search_budget=10), explored trials and their continuations, to the end.
    page = (Path(__file__).parents[1] / "docs" / "custom_loop.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", page, flags=re.DOTALL)
    script = tmp_path / "loop.py"
    parents = (
        "records = {r.trial_id: r for r in oracle.records()}\n"
        "print(sorted({records[r.parent_id].steps for r in records.values() if r.parent_id}))\n"
    )
    script.write_text(f"{code}\n{parents}")
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    parent_steps = ast.literal_eval(result.stdout.strip().splitlines()[-1])
    # Continuations happened, each from a parent that stopped at a rung or at early_steps (whether
    # a rung-stopped parent ranks high enough to be continued depends on its curve;
    # test_initial_screen's real search covers that case).
    assert parent_steps and max(parent_steps) <= 20
    assert read_search(tmp_path / "runs" / "sgd").phase == "done"


def test_the_custom_loop_example_uses_only_public_api():
    # examples/custom_loop.py once saved its final weights with a private tuner method.
    example = Path(__file__).parents[1] / "examples" / "custom_loop.py"
    private = [
        node.attr
        for node in ast.walk(ast.parse(example.read_text()))
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.endswith("__")
    ]
    assert private == []

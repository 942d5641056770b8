"""Kills a small search at every write point it makes and reruns it (tests/test_kill_points.py).

Run as a script: ``python tests/kill_points.py FOLDER RESULT.json``. The search is the tiny
problem's space and step budget sized by a small ``search_budget`` (screened phase 1,
screened exploration, phase 4), trained by a NumPy loop (full-batch gradient descent on a
linear model; deterministic, resumable from its checkpoints) through ``oracle.open`` and
:class:`~kt_predictive.TrialReporter`, so one process lasts a fraction of a second. This
process only imports; every run is a child forked from it: one uninterrupted run, then, for
each write point k, a child killed with SIGKILL at its k-th write
(``kt_predictive.storage.FAULT_HOOK``) and a child that reruns the search to its end. The
result file lists, for each run, the final records and the steps trained per trial.
"""

import json
import os
import signal
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "numpy")
for _threads in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_threads, "1")

import keras_tuner  # noqa: E402
import numpy as np  # noqa: E402
from keras_tuner.engine.trial import TrialStatus  # noqa: E402

from kt_predictive import (  # noqa: E402
    HybridPredictor,
    PredictiveOracle,
    PredictorSettings,
    TrainingSteps,
    TrialReporter,
    storage,
)
from kt_predictive.checkpoint import training_state_path  # noqa: E402
from kt_predictive.records import PARENT_VALUE, read_search  # noqa: E402

SETTINGS = dict(
    search_budget=5,
    steps=TrainingSteps(full_steps=24, early_steps=8, window=4, final_window=4),
    seed=7,
)
PROJECT = "kill"
TRAINED_LOG = "trained.log"


def space() -> keras_tuner.HyperParameters:
    """tests/tiny_problem.py's space."""
    hp = keras_tuner.HyperParameters()
    hp.Choice("units", [4, 16])
    hp.Choice("opt", ["sgd", "adam"])
    hp.Choice("lr", [1e-3, 1e-2, 1e-1])
    return hp


def _problem(units: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(units)
    x = rng.normal(size=(64, units))
    y = x @ rng.normal(size=units) + 0.1 * rng.normal(size=64)
    return x, y


def _save(path: Path, weights: np.ndarray, moment: np.ndarray, curve: list[float]) -> None:
    arrays = {"weights": weights, "moment": moment, "losses": np.asarray(curve)}
    storage.atomic_write(path, lambda file: np.savez(file, **arrays))


def train(oracle: PredictiveOracle, trial, folder: Path, log) -> None:
    """Trains ``trial`` from its own checkpoint, its parent's, or its start."""
    values = trial.hyperparameters.values
    units, lr, adam = values["units"], values["lr"], values["opt"] == "adam"
    x, y = _problem(units)
    own = training_state_path(folder / f"trial_{trial.trial_id}")
    parent = values.get(PARENT_VALUE)
    start = own if own.exists() else None
    if start is None and parent is not None:
        start = training_state_path(folder / f"trial_{parent}")
    if start is not None:
        with np.load(start) as saved:
            weights, moment = saved["weights"], saved["moment"]
            curve = [float(v) for v in saved["losses"]]
    else:
        weights = np.random.default_rng(int(trial.trial_id)).normal(size=units)
        moment, curve = np.zeros(units), []
    budget = oracle.steps
    reporter = TrialReporter(oracle, trial.trial_id, budget, losses=curve)
    # The reports of the restored curve (a kill may have come right after its checkpoint).
    first = int(values.get("tuner/initial_step", 0))
    for end in budget.window_ends():
        replayed = first < end <= len(curve) and end <= budget.early_steps
        if replayed and reporter.report(end, float(np.mean(curve[end - budget.window : end]))):
            return
    while len(reporter.losses) < budget.full_steps:
        residual = x @ weights - y
        gradient = x.T @ residual / len(y)
        moment = 0.9 * moment + 0.1 * gradient**2
        weights = weights - lr * (gradient / (np.sqrt(moment) + 1e-3) if adam else gradient)
        loss = float(np.mean(residual**2))
        os.write(log, f"{trial.trial_id}\n".encode())
        step = len(reporter.losses) + 1
        if step % budget.window == 0 and step < budget.full_steps:
            _save(own, weights, moment, [*reporter.losses, loss])
        if reporter.step(loss):
            return


def search(folder: Path) -> None:
    """Runs (or resumes) the search in ``folder`` to its end."""
    # HYB with a small forest (3 phase-1 networks are too few to tune it): the predictor
    # is fitted, refitted and refitted again on reload, in milliseconds.
    predictor = PredictorSettings(
        predictor=HybridPredictor(rf_params={"n_estimators": 5}), report_splits=0
    )
    oracle = PredictiveOracle(hyperparameters=space(), predictor=predictor, **SETTINGS)
    project = folder / PROJECT
    oracle.release_checkpoints = lambda ids: [
        storage.remove_file(training_state_path(project / f"trial_{t}")) for t in ids
    ]
    oracle.open(folder, PROJECT)
    log = os.open(folder / TRAINED_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        while True:
            trial = oracle.create_trial("tuner0")
            if trial.status == TrialStatus.STOPPED:
                return
            if trial.status != TrialStatus.RUNNING:
                raise RuntimeError(f"the oracle answered {trial.status} with nothing running")
            train(oracle, trial, project, log)
            trial.status = TrialStatus.COMPLETED
            oracle.end_trial(trial)
    finally:
        os.close(log)


def _child(run) -> int:
    """Runs ``run()`` in a forked child; returns its wait status."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            run()
        except BaseException as error:  # reported to the parent through the exit code
            print(f"{type(error).__name__}: {error}", file=sys.stderr, flush=True)
            code = 3
        os._exit(code)
    return os.waitpid(pid, 0)[1]


def _kill_at(k: int | None, counter: list[int]) -> None:
    def hook(name: str) -> None:
        counter[0] += 1
        if counter[0] == k:
            os.kill(os.getpid(), signal.SIGKILL)

    storage.FAULT_HOOK = hook


def outcome(folder: Path) -> dict:
    """The final records (without timings) and the steps trained per trial in ``folder``."""
    snapshot = read_search(folder / PROJECT)
    records = {}
    for trial_id, record in snapshot.records.items():
        data = record.to_json()
        data.pop("seconds")
        records[trial_id] = data
    trained: dict[str, int] = {}
    for line in (folder / TRAINED_LOG).read_text().split():
        trained[line] = trained.get(line, 0) + 1
    return {"phase": snapshot.phase, "records": records, "trained": trained}


def main(root: Path, result: Path) -> None:
    baseline = root / "baseline"
    counter = [0]
    writes = root / "writes"

    def counted() -> None:
        _kill_at(None, counter)
        try:
            search(baseline)
        finally:
            writes.write_text(str(counter[0]))

    status = _child(counted)
    if status != 0:
        raise SystemExit(f"the uninterrupted search failed (wait status {status})")
    points = int(writes.read_text())
    runs = {"points": points, "baseline": outcome(baseline), "killed": {}}
    for k in range(1, points + 1):
        folder = root / f"k{k}"
        killed = _child(lambda k=k, folder=folder: (_kill_at(k, [0]), search(folder)))
        entry: dict = {"killed_by_signal": os.WIFSIGNALED(killed)}
        status = _child(lambda folder=folder: (_kill_at(None, [0]), search(folder)))
        entry["rerun_status"] = status
        if status == 0:
            entry.update(outcome(folder))
        runs["killed"][k] = entry
    result.write_text(json.dumps(runs))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))

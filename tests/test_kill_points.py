"""A search killed with SIGKILL at every write point it makes resumes to the same search.

tests/kill_points.py runs a small default search (a search_budget: screened phase 1,
screened exploration, phase 4) once uninterrupted, then for every write point k (each
rename of a state file or checkpoint, each deletion) kills a process at its k-th write and
reruns the search to its end. Each rerun must end as the uninterrupted search did (the same
trials, values, windows, final losses, predictions and statuses), stop with no error, and
train no trial twice: a trial trains at most the steps it trained uninterrupted plus those
after its last checkpoint before the kill.
"""

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from keras_tuner.engine.trial import TrialStatus
from test_oracle_protocol import BUDGET, finish, make_oracle, run

SCRIPT = Path(__file__).with_name("kill_points.py")
WINDOW = 4  # kill_points.SETTINGS["steps"].window: steps between two checkpoints


@pytest.fixture(scope="module")
def killed_searches():
    # A memory file system where there is one: hundreds of small searches write there.
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    with tempfile.TemporaryDirectory(dir=base) as root:
        result = Path(root) / "result.json"
        env = {**os.environ, "KERAS_BACKEND": "numpy"}
        completed = subprocess.run(
            [sys.executable, str(SCRIPT), root, str(result)],
            env=env,
            capture_output=True,
            text=True,
            timeout=1200,
        )
        assert completed.returncode == 0, completed.stderr[-3000:]
        yield json.loads(result.read_text())


@pytest.mark.slow  # hundreds of small search processes
def test_a_kill_at_every_write_point_resumes_to_the_uninterrupted_search(killed_searches):
    baseline = killed_searches["baseline"]
    points = killed_searches["points"]
    assert baseline["phase"] == "done"
    roles = {r["role"] for r in baseline["records"].values()}
    assert roles == {"initial", "explore", "continuation"}  # every phase is killed
    assert points > 150, points
    failures = []
    for k, killed in killed_searches["killed"].items():
        if not killed["killed_by_signal"]:
            failures.append(f"write {k}: the first process was not killed")
        elif killed["rerun_status"] != 0:
            failures.append(f"write {k}: the rerun failed (status {killed['rerun_status']})")
        elif killed["records"] != baseline["records"] or killed["phase"] != "done":
            changed = sorted(
                t
                for t in set(killed["records"]) | set(baseline["records"])
                if killed["records"].get(t) != baseline["records"].get(t)
            )
            failures.append(f"write {k}: the search differs in trials {changed}")
        else:
            twice = {
                t: n
                for t, n in killed["trained"].items()
                if n > baseline["trained"].get(t, 0) + WINDOW
            }
            if twice:
                failures.append(f"write {k}: trials trained again: {twice}")
    assert not failures, f"{len(failures)} of {points} kill points:\n" + "\n".join(failures)


# ---------------------------------------------------------------- each fault by hand, in process
# A kill is simulated by raising at one write (os.replace of a state file, the rename that
# makes it visible): the oracle object is dropped and a new one opens the folder, as a rerun
# would.


class Killed(BaseException):
    """The process died at this write."""


@contextlib.contextmanager
def killed_at(kill: Callable[[str], bool]):
    """Raises Killed at the first rename whose target path ``kill`` selects (there may be
    none: a write order that never reaches the state ``kill`` looks for)."""
    real = os.replace

    def replace(source, target):
        if kill(os.fspath(target)):
            raise Killed(os.fspath(target))
        return real(source, target)

    os.replace = replace
    try:
        yield
    except Killed:
        pass
    finally:
        os.replace = real


def reopen(tmp_path, **kwargs):
    """A new process's oracle on the same folder (make_oracle reloads it)."""
    return make_oracle(tmp_path, **kwargs)


def until_phase(oracle, phase):
    """Runs trials until the oracle's next trial is one of ``phase``; returns it (not run)."""
    while True:
        trial = oracle.create_trial("tuner0")
        assert trial.status == TrialStatus.RUNNING
        if oracle.phase == phase:
            return trial
        run(oracle, trial)


def test_a_kill_at_a_continuations_end_never_loses_the_checkpoint_it_resumes(tmp_path):
    # Item 1: the parent's early checkpoint deleted, the continuation's settled record not
    # yet saved (a kill at any write after the deletion): the rerun must find either the
    # continuation settled or the checkpoint.
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()

    def release(trial_ids):
        for trial_id in trial_ids:
            (checkpoints / trial_id).unlink(missing_ok=True)

    oracle = make_oracle(tmp_path)
    oracle.release_checkpoints = release
    continuation = until_phase(oracle, "finalize")
    for record in oracle.records():
        if record.role == "explore":
            (checkpoints / record.trial_id).touch()
    parent = continuation.hyperparameters.values["tuner/trial_id"]
    record = f"trial_{continuation.trial_id}{os.sep}record.json"
    with killed_at(lambda target: target.endswith(record) and not (checkpoints / parent).exists()):
        run(oracle, continuation)
    again = reopen(tmp_path)
    again.release_checkpoints = release
    settled = again._decisions.records[continuation.trial_id].settled
    assert settled or (checkpoints / parent).exists()


def test_a_kill_after_a_full_trainings_final_report_does_not_train_it_again(tmp_path):
    # Item 2: the final mean reached the oracle, end_trial did not.
    oracle = make_oracle(tmp_path)
    trial = oracle.create_trial("tuner0")
    full = BUDGET["full_steps"]
    run(oracle, trial, until=full - 1)  # every window, no end_trial
    oracle.update_trial(trial.trial_id, {"loss": 0.5}, step=full)  # the final mean
    final = oracle._decisions.records[trial.trial_id].real_final
    again = reopen(tmp_path)
    following = again.create_trial("tuner0")
    assert following.trial_id != trial.trial_id  # not given out to train again
    record = again._decisions.records[trial.trial_id]
    assert record.status == "complete" and record.real_final == final == 0.5


def test_a_kill_after_a_screening_decision_keeps_the_trial_screened_out(tmp_path):
    # Item 3: the rung decision was saved, end_trial did not finish: the trial is not
    # trained past its rung, and a replayed report of the rung is told to stop.
    oracle = make_oracle(tmp_path, reduction_factor=2)
    worse = until_phase(oracle, "explore")
    assert oracle.update_trial(worse.trial_id, {"loss": 50.0}, step=4).status == "STOPPED"
    again = reopen(tmp_path, reduction_factor=2)
    assert again.update_trial(worse.trial_id, {"loss": 50.0}, step=4).status == "STOPPED"
    again = reopen(tmp_path, reduction_factor=2)
    following = again.create_trial("tuner0")
    assert following.trial_id != worse.trial_id
    record = again._decisions.records[worse.trial_id]
    assert record.screened_out and record.steps == 4


def test_a_kill_while_an_explored_trials_end_is_saved_keeps_its_allocation(tmp_path):
    # Item 4: the record settled, the oracle.json holding the new probabilities not written.
    reference = make_oracle(tmp_path / "reference")
    explored = until_phase(reference, "explore")
    run(reference, explored)
    expected = reference.probabilities()

    oracle = make_oracle(tmp_path)
    explored = until_phase(oracle, "explore")
    with killed_at(lambda target: target.endswith(f"{os.sep}oracle.json")):
        run(oracle, explored)
    again = reopen(tmp_path)
    assert again._decisions.records[explored.trial_id].settled
    assert again.probabilities() == expected


def test_a_kill_while_a_trial_is_created_leaves_no_trial_running_forever(tmp_path):
    # Item 5: keras-tuner's trial.json of the new trial written, oracle.json not.
    oracle = make_oracle(tmp_path)
    run(oracle, oracle.create_trial("tuner0"))
    with killed_at(lambda target: target.endswith(f"{os.sep}oracle.json")):
        oracle.create_trial("tuner0")
    again = reopen(tmp_path)
    finish(again)
    assert again.phase == "done"
    assert all(t.status != TrialStatus.RUNNING for t in again.trials.values())
    assert sorted(again.trials) == sorted(r.trial_id for r in again.records())

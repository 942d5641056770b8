"""Faults a long search must survive: kills at every kind of moment, corrupt files, dead and
late workers, a full disk. (Kills mid phase-1 trial, mid exploration and mid phase 4, and
live workers whose long silent trainings must not be taken for dead, are in
test_search_processes.py; bad-input errors are tested with each module.)"""

import errno
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from kt_predictive import PredictiveSearch
from kt_predictive.checkpoint import load_training_state, save_training_state
from kt_predictive.storage import CorruptStateError, atomic_write, write_json

from processes import free_port, logged, rerun_and_check_nothing_lost, start, state, wait_until
from tiny_problem import SEARCH, build_model, grouped


def _kill(process) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@pytest.mark.slow  # searches in subprocesses
def test_kill_between_trials(tmp_path):
    log = tmp_path / "trials.log"
    first = start(tmp_path, log, "--pause-after-trial", "3")
    at_kill = wait_until(
        first,
        tmp_path,
        lambda s: (
            sum(r["status"] == "complete" for r in s["records"].values()) >= 3
            and not any(r["status"] == "running" for r in s["records"].values())
        ),
    )
    _kill(first)
    assert state(tmp_path)["records"] == at_kill["records"]
    rerun_and_check_nothing_lost(tmp_path, log, at_kill)


@pytest.mark.slow  # searches in subprocesses
def test_kill_while_the_predictor_is_fitted(tmp_path):
    # Many Optuna trials make the fit between phase 1 and exploration last long enough to
    # kill the process in the middle of it; the search marks where the fit begins. The fit
    # is part of the last phase-1 trial's end (one state transition), so the folder still
    # holds that trial running, with its final report.
    log, mark = tmp_path / "trials.log", tmp_path / "fitting"
    first = start(tmp_path, log, "--tuning-trials", "200", "--mark-fit", str(mark))
    deadline = time.monotonic() + 240
    while not mark.exists():
        assert first.poll() is None, first.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "the predictor's fit never began"
        time.sleep(0.05)
    _kill(first)
    at_kill = state(tmp_path)
    assert at_kill["phase"] == "initial"  # the fit had not finished
    (last,) = [t for t, r in at_kill["records"].items() if r["status"] == "running"]
    assert at_kill["records"][last]["real_final"] is not None
    second = start(tmp_path, log)
    assert second.wait(timeout=300) == 0, second.stderr.read().decode()[-3000:]
    final = state(tmp_path)
    assert final["phase"] == "done" and final["predictor_params"] is not None
    # The trial the kill interrupted had trained fully: it is ended, not trained again.
    rerun = [trial_id for pid, trial_id in logged(log) if pid == second.pid]
    assert last not in rerun and final["records"][last]["status"] == "complete"
    assert final["records"][last]["real_final"] == at_kill["records"][last]["real_final"]
    for trial_id, before in at_kill["records"].items():
        if before["status"] == "complete":
            assert final["records"][trial_id] == before


def test_kill_while_state_is_written(tmp_path):
    """A process killed half-way through writing a state file leaves the previous file."""
    path = tmp_path / "oracle.json"
    write_json(path, {"records": {"0": "kept"}})
    script = (
        "import os, signal, sys\n"
        "from kt_predictive.storage import atomic_write\n"
        "def half_then_die(file):\n"
        '    file.write(b\'{"records": {"0": "half\')\n'
        "    file.flush()\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "atomic_write(sys.argv[1], half_then_die)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, timeout=60
    )
    assert result.returncode == -signal.SIGKILL
    assert json.loads(path.read_text()) == {"records": {"0": "kept"}}
    write_json(path, {"records": {"0": "new"}})  # and the next write works
    assert json.loads(path.read_text())["records"]["0"] == "new"


@pytest.fixture
def finished_search(tiny_search):
    """The folder of the session's finished tiny search (conftest.py); tests copy it."""
    return tiny_search[1]


@pytest.mark.parametrize("name", ["oracle.json", "trial.json", "record.json"])
def test_truncated_state_file_is_one_clear_error(finished_search, tmp_path, name):
    import shutil

    copy = tmp_path / "tiny"
    shutil.copytree(finished_search / "tiny", copy)
    # oracle.json, or the fourth trial's keras-tuner file or record.
    damaged = copy / name if name == "oracle.json" else sorted(copy.glob("trial_*"))[3] / name
    text = damaged.read_text()
    damaged.write_text(text[: len(text) // 2])
    with pytest.raises(CorruptStateError) as error:
        PredictiveSearch(build_model, directory=tmp_path, project_name="tiny", **grouped(SEARCH))
    message = str(error.value)
    assert str(damaged) in message and "overwrite=True" in message
    assert damaged.read_text() == text[: len(text) // 2]  # nothing overwritten or discarded


def test_corrupt_checkpoint_is_one_clear_error(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    path = tmp_path / "training_state.npz"
    save_training_state(path, model, np.zeros(4))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(
        CorruptStateError, match=r"training_state.npz cannot be read.*train this trial again"
    ):
        load_training_state(path, model)


def test_full_disk_is_a_clear_error_and_keeps_the_previous_state(
    finished_search, tmp_path, monkeypatch
):
    import shutil

    shutil.copytree(finished_search / "tiny", tmp_path / "tiny")
    before = (tmp_path / "tiny" / "oracle.json").read_text()
    tuner = PredictiveSearch(
        build_model, directory=tmp_path, project_name="tiny", **grouped(SEARCH)
    )

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(
        OSError, match=r"cannot write .*oracle.json: No space left on device; free disk space"
    ):
        tuner.oracle.save()
    monkeypatch.undo()
    assert (tmp_path / "tiny" / "oracle.json").read_text() == before
    assert not list((tmp_path / "tiny").glob(".oracle.json.*.tmp"))  # no temporary file left


def test_unwritable_directory_fails_before_any_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError, match=r"cannot create .*choose a writable directory"):
        PredictiveSearch(
            build_model, directory=blocker / "runs", project_name="p", **grouped(SEARCH)
        )


def test_atomic_write_removes_its_temporary_file_on_failure(tmp_path):
    def fail(file):
        file.write(b"partial")
        raise RuntimeError("writer failed")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "state.json", fail)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow  # searches in subprocesses
def test_dead_worker_trial_taken_up_and_late_worker_gets_work(tmp_path):
    """A worker killed mid-trial: after worker_timeout its trial goes to another worker and
    resumes there; a worker started late gets trials; the chief and the search finish."""
    log = tmp_path / "trials.log"
    env = {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(free_port())}
    common = ("--worker-timeout", "4", "--step-delay", "0.05")
    chief = start(tmp_path, log, *common, env={**env, "KERASTUNER_TUNER_ID": "chief"})
    doomed = start(tmp_path, log, *common, env={**env, "KERASTUNER_TUNER_ID": "tuner0"})
    survivor = start(tmp_path, log, *common, env={**env, "KERASTUNER_TUNER_ID": "tuner1"})
    late = None
    try:
        # Kill tuner0 in the middle of one of its trials.
        def doomed_is_mid_trial(current):
            mine = (
                {trial_id for pid, trial_id in logged(log) if pid == doomed.pid}
                if log.exists()
                else set()
            )
            return any(
                t in mine and r["status"] == "running" and r["steps"] >= SEARCH["window"]
                for t, r in current["records"].items()
            )

        at_kill = wait_until(doomed, tmp_path, doomed_is_mid_trial)
        _kill(doomed)
        orphan = next(
            t
            for t, r in at_kill["records"].items()
            if r["status"] == "running"
            and t in {trial for pid, trial in logged(log) if pid == doomed.pid}
        )
        late = start(tmp_path, log, *common, env={**env, "KERASTUNER_TUNER_ID": "tuner2"})
        for worker in (survivor, late):
            assert worker.wait(timeout=400) == 0, worker.stderr.read().decode()[-3000:]
        assert chief.wait(timeout=120) == 0, chief.stderr.read().decode()[-3000:]
    finally:
        for process in (chief, doomed, survivor, late):
            if process is not None and process.poll() is None:
                _kill(process)
    final = state(tmp_path)
    assert final["phase"] == "done"
    assert all(r["status"] in ("complete", "failed") for r in final["records"].values())
    runs = logged(log)
    assert any(trial == orphan and pid in (survivor.pid, late.pid) for pid, trial in runs)
    assert any(pid == late.pid for pid, _ in runs)
    # The orphan resumed from its checkpoint: its early windows were measured once.
    assert final["records"][orphan]["early"][0] == at_kill["records"][orphan]["early"][0]


def test_atomic_write_gives_the_mode_of_a_plain_open(tmp_path):
    plain = tmp_path / "plain.json"
    plain.write_text("{}")
    write_json(tmp_path / "atomic.json", {})
    assert (tmp_path / "atomic.json").stat().st_mode == plain.stat().st_mode

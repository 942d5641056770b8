"""Searches across processes: killed with SIGKILL and rerun, and distributed over gRPC."""

import os
import signal

import pytest

from processes import free_port, logged, rerun_and_check_nothing_lost, start, state, wait_until
from tiny_problem import SEARCH

# Whole runs of a minute or more: make test runs them; -m "not slow" leaves them out locally.
pytestmark = pytest.mark.slow


def _mid_initial(current):
    records = list(current["records"].values())
    done = sum(r["status"] == "complete" for r in records)
    return done >= 2 and any(
        r["status"] == "running" and r["steps"] >= SEARCH["window"] for r in records
    )


def _mid_explore(current):
    return current["phase"] == "explore" and any(
        r["status"] == "running" and r["role"] == "explore" and r["steps"] >= SEARCH["window"]
        for r in current["records"].values()
    )


def _mid_finalize(current):
    return current["phase"] == "finalize" and any(
        r["status"] == "running" for r in current["records"].values()
    )


@pytest.mark.parametrize(
    "kill_point",
    [_mid_initial, _mid_explore, _mid_finalize],
    ids=["initial", "explore", "finalize"],
)
def test_sigkill_and_rerun_loses_nothing(tmp_path, kill_point):
    log = tmp_path / "trials.log"
    first = start(tmp_path, log, "--step-delay", "0.08")
    wait_until(first, tmp_path, kill_point)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    at_kill = state(tmp_path)
    assert any(r["status"] == "running" for r in at_kill["records"].values())  # killed mid-trial

    rerun_and_check_nothing_lost(tmp_path, log, at_kill)


def test_chief_and_two_workers_complete_all_phases_and_stay_alive_through_silent_trainings(
    tmp_path,
):
    """A chief and two workers over gRPC finish every phase, each worker training trials.

    Their full trainings are slowed so that the stretch after the early budget (16 steps x
    0.5 s = 8 s, no checkpoint in it) is longer than worker_timeout (5 s): the heartbeats
    sent every second keep both workers alive, so no trial is ever run twice. (Before
    heartbeats, a trial was handed to the second worker while the first still trained it;
    with heartbeats every 100 s this test fails that way.) Only that stretch is slowed: the
    early budget reports a window every 4 steps anyway.
    """
    log = tmp_path / "trials.log"
    env = {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(free_port())}
    common = (
        "--worker-timeout",
        "5",
        "--step-delay",
        "0.5",
        "--delay-after-step",
        str(SEARCH["early_steps"]),
        "--checkpoint-every",
        "24",
        "--heartbeat-seconds",
        "1",
    )
    chief = start(tmp_path, log, *common, env={**env, "KERASTUNER_TUNER_ID": "chief"})
    workers = [
        start(tmp_path, log, *common, env={**env, "KERASTUNER_TUNER_ID": f"tuner{i}"})
        for i in range(2)
    ]
    try:
        for worker in workers:
            assert worker.wait(timeout=600) == 0, worker.stderr.read().decode()[-3000:]
        assert chief.wait(timeout=120) == 0, chief.stderr.read().decode()[-3000:]
    finally:
        for process in [chief, *workers]:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    final = state(tmp_path)
    assert final["phase"] == "done"
    records = list(final["records"].values())
    assert sum(r["role"] == "initial" for r in records) == SEARCH["initial_trials"]
    assert sum(r["role"] == "continuation" for r in records) >= 1
    assert all(r["status"] in ("complete", "failed") for r in records)
    started = logged(log)
    assert {pid for pid, _ in started} == {w.pid for w in workers}
    trials = [trial for _, trial in started]
    assert len(trials) == len(set(trials)), f"trials run twice: {trials}"

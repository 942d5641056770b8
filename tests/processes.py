"""Running tests/tiny_problem.py searches in subprocesses and watching their state files."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from kt_predictive.records import read_search

SCRIPT = Path(__file__).with_name("tiny_problem.py")


def state(directory: Path) -> dict | None:
    """The oracle's saved state of the search in ``directory`` with its records as plain
    dicts under ``"records"``, or None before it exists."""
    try:
        snapshot = read_search(directory / "tiny")
    except FileNotFoundError:
        return None
    return {**snapshot.state, "records": {t: r.to_json() for t, r in snapshot.records.items()}}


def start(directory: Path, log: Path, *extra: str, env: dict | None = None) -> subprocess.Popen:
    """Starts a search process (in its own process group, so it can be killed whole)."""
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), str(directory), "--log", str(log), *extra],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def wait_until(process: subprocess.Popen, directory: Path, condition, timeout: float = 240) -> dict:
    """Polls the state file until ``condition(state)``; fails if the process ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"search ended before the kill point: {process.stderr.read().decode()[-3000:]}"
            )
        current = state(directory)
        if current is not None and condition(current):
            return current
        time.sleep(0.05)
    raise AssertionError("the kill point was never reached")


def logged(log: Path) -> list[tuple[int, str]]:
    """(pid, trial_id) of every trial start written by LoggingSearch."""
    return [
        (int(pid), trial_id)
        for pid, trial_id in (line.split() for line in log.read_text().split("\n") if line)
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rerun_and_check_nothing_lost(directory: Path, log: Path, at_kill: dict) -> dict:
    """Reruns a killed search to the end and checks that it lost and repeated nothing.

    Records complete at the kill keep their values, early curve and final (phase 1) or
    prediction (exploration); trials running at the kill run again, once; a trial complete at
    the kill never runs again (its phase-4 continuation is a trial of its own). Returns the
    final state.
    """
    complete = {t: r for t, r in at_kill["records"].items() if r["status"] == "complete"}
    # Running records whose reports had already ended their run are ended, not run again.
    interrupted = [
        t
        for t, r in at_kill["records"].items()
        if r["status"] == "running"
        and r["real_final"] is None
        and r["diverged_at"] is None
        and r["screened_at"] is None
        and not (r["role"] == "explore" and r["steps"] >= at_kill["settings"]["early_steps"])
    ]
    second = start(directory, log)
    assert second.wait(timeout=300) == 0, second.stderr.read().decode()[-3000:]
    final = state(directory)
    assert final["phase"] == "done"
    for trial_id, before in complete.items():
        after = final["records"][trial_id]
        assert after["values"] == before["values"] and after["early"] == before["early"]
        if before["role"] != "explore":
            assert after == before  # measured results are final
        else:  # refit_predictor may re-rank explored configurations after the kill
            assert after["steps"] == before["steps"] and after["status"] == "complete"
    rerun = [trial_id for pid, trial_id in logged(log) if pid == second.pid]
    assert set(interrupted) <= set(rerun)
    assert not set(rerun) & set(complete)
    assert all(rerun.count(trial_id) == 1 for trial_id in rerun)
    assert all(r["status"] != "running" for r in final["records"].values())
    return final

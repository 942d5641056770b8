"""Running tests/tiny_problem.py searches in subprocesses and watching their state files."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

SCRIPT = Path(__file__).with_name("tiny_problem.py")


def state(directory: Path) -> dict | None:
    """The oracle's own state of the search in ``directory``, or None before it exists."""
    path = directory / "tiny" / "oracle.json"
    return json.loads(path.read_text())["predictive"] if path.exists() else None


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
            raise AssertionError(f"search ended before the kill point: {process.stderr.read().decode()[-3000:]}")
        current = state(directory)
        if current is not None and condition(current):
            return current
        time.sleep(0.05)
    raise AssertionError("the kill point was never reached")


def logged(log: Path) -> list[tuple[int, str]]:
    """(pid, trial_id) of every trial start written by LoggingSearch."""
    return [(int(pid), trial_id) for pid, trial_id in (line.split() for line in log.read_text().split("\n") if line)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rerun_and_check_nothing_lost(directory: Path, log: Path, at_kill: dict) -> dict:
    """Reruns a killed search to the end and checks that it lost and repeated nothing.

    Records complete at the kill keep their values, early curve and final (phase 1) or
    prediction (exploration); trials running at the kill run again; a trial complete at the
    kill runs again only as its phase-4 continuation, once. Returns the final state.
    """
    complete = {t: r for t, r in at_kill["records"].items() if r["status"] == "complete"}
    interrupted = [t for t, r in at_kill["records"].items() if r["status"] == "running"]
    second = start(directory, log)
    assert second.wait(timeout=300) == 0, second.stderr.read().decode()[-3000:]
    final = state(directory)
    assert final["phase"] == "done"
    for trial_id, before in complete.items():
        after = final["records"][trial_id]
        assert after["values"] == before["values"] and after["early"] == before["early"]
        if before["iteration"] is None:
            assert after == before  # phase-1 results are final
        else:
            assert after["predicted"] == before["predicted"]
    rerun = [trial_id for pid, trial_id in logged(log) if pid == second.pid]
    assert set(interrupted) <= set(rerun)
    for trial_id in set(rerun):
        record = final["records"][trial_id]
        continued = record["phase"] == "finalize" and record["iteration"] is not None
        if trial_id in complete:
            assert continued and complete[trial_id]["phase"] == "explore" and rerun.count(trial_id) == 1
        else:
            assert rerun.count(trial_id) <= (2 if continued else 1)
    assert all(r["status"] != "running" for r in final["records"].values())
    return final
